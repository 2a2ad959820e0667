"""`ipguard report`: the summary of a period (the last 30 days, a month, or given days) as HTML,
Markdown, JSON or CSV."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ipguard.cli.context import site_option, state
from ipguard.cli.output import info

if TYPE_CHECKING:
    from ipguard.reports.summary import Summary


class ReportFormat(StrEnum):
    """Formats of `report`."""

    html = "html"
    md = "md"
    json = "json"
    csv = "csv"


_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".json": "json", ".csv": "csv"}


DEFAULT_DAYS = 30


def period(
    since: date | None,
    until: date | None,
    now: datetime,
    month: str | None = None,
    zone: tzinfo = UTC,
) -> tuple[datetime, datetime]:
    """The half-open UTC period of a report.

    No dates: the last 30 days up to `now`. `month` ("YYYY-MM"): that calendar month. Dates are
    whole days of `zone` (`[policy] timezone`), both included: local midnight to local midnight;
    `--since` alone runs to today, `--until` alone from the first of its month.
    """
    from ipguard.errors import InvalidValue
    from ipguard.localtime import days_span, today, zone_name

    if month is not None:
        if since is not None or until is not None:
            raise InvalidValue("give --month or --since/--until, not both")
        first, last = _month(month)
        return days_span(first, last, zone)
    if since is None and until is None:
        return now - timedelta(days=DEFAULT_DAYS), now
    if since is None:
        assert until is not None
        since = until.replace(day=1)
    elif until is None:
        until = today(now, zone)
        if since > until:  # the user gave no --until: name what the period ends with
            raise InvalidValue(
                f"--since {since} is after today ({until}, {zone_name(zone)}), where a period "
                "without --until ends"
            )
    if since > until:
        raise InvalidValue(f"--since {since} is after --until {until}")
    return days_span(since, until, zone)


def _month(text: str) -> tuple[date, date]:
    """`YYYY-MM` as its first and last days."""
    from ipguard.errors import InvalidValue

    try:
        first = datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise InvalidValue(f"--month {text!r}: not a month (use YYYY-MM)") from None
    if first.year > _LAST_YEAR:
        raise InvalidValue(f"--month {text!r}: give a month before {_LAST_YEAR + 1}")
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first, following - timedelta(days=1)


_LAST_YEAR = 9998


def _day(text: str | None, option: str) -> date | None:
    from ipguard.errors import InvalidValue

    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValue(f"{option} {text!r}: not a date (use YYYY-MM-DD)") from None
    if day.year > _LAST_YEAR:  # the day after 9999-12-31 cannot be computed
        raise InvalidValue(f"{option} {text!r}: give a date before {_LAST_YEAR + 1}")
    return day


def report(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="First day of the period, YYYY-MM-DD (default: 30 days ago)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Last day of the period, included (default: up to now)."),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(help="A calendar month, YYYY-MM (the monthly report from cron)."),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="html, md, json or csv (default: from the -o suffix)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: standard output)."),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(help="Only this site (default: every site).", callback=site_option),
    ] = None,
) -> None:
    """Summary report of a period (default: the last 30 days) as HTML, Markdown, JSON or CSV.

    Hosts seen per run, findings opened/resolved/overdue by kind and severity, open findings with
    their evidence, unregistered hosts and ledger changes. Dates are days of [policy] timezone.
    """
    from ipguard.errors import InvalidValue

    if fmt is None:
        guessed = _SUFFIXES.get(output.suffix.lower()) if output else None
        if guessed is None:
            raise InvalidValue("give --format html, md, json or csv (or an -o FILE ending so)")
        fmt = ReportFormat(guessed)
    now, zone = datetime.now(UTC), state(ctx).zone()
    start, end = period(_day(since, "--since"), _day(until, "--until"), now, month, zone)
    _warn_future(start, end, now, zone=zone, ended=month is not None or until is not None)
    if output is not None:
        state(ctx).refuse_own_file(str(output), "-o")

    from ipguard.ledger.reporting import period_records, refuse_unknown_site
    from ipguard.reports.summary import build

    with state(ctx).store().session(write=False) as session:
        refuse_unknown_site(session, site)
        records = period_records(session, start, end, site)
        summary = build(records, start, end, now=now, site=site, zone=zone)
        _warn_calendar(
            session, sorted({site} if site else {run.site for run in summary.runs}), zone
        )
    text = _render(summary, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    _write(output, text)
    info(f"report for {summary.first_day} to {summary.last_day} written to {output}")


def _warn_future(
    start: datetime, end: datetime, now: datetime, *, ended: bool, zone: tzinfo = UTC
) -> None:
    """Say when a period asked for as `ended` (a month, an --until) has not ended, or begun.

    A monthly report filed as complete before its month's last local day is over would miss it.
    """
    from ipguard.localtime import local_day, shown, zone_name

    if not ended or end <= now:
        return
    if start > now + timedelta(days=1):  # well beyond today: a mistyped year
        from ipguard.errors import InvalidValue

        raise InvalidValue(
            f"the period starts {local_day(start, zone)} ({zone_name(zone)}), after today "
            f"({local_day(now, zone)}): nothing has happened in it yet"
        )
    what = "starts" if start > now else "ends"
    moment = start if start > now else end
    info(
        f"warning: the period {what} {shown(moment, zone)}, after now "
        f"({shown(now, zone)}): this report covers it only up to now"
    )


def _warn_calendar(session: Any, sites: list[str], zone: tzinfo) -> None:
    """Say when a site's scans judge days in another zone than this report's: `[policy] timezone`
    is each machine's, and a report filed from a machine in UTC cut a Shanghai month 8 hours off."""
    from ipguard.ledger.runs import last_calendar
    from ipguard.localtime import zone_name

    for name in sites:
        calendar = last_calendar(session, name)
        if calendar is not None and calendar[2] != zone_name(zone):
            run_id, _sensor, theirs = calendar
            info(
                f"warning: this report's days are {zone_name(zone)}'s, but site {name} "
                f"judges them in {theirs} (run {run_id}): set the same [policy] timezone "
                "on this machine"
            )


def _render(summary: Summary, fmt: ReportFormat) -> str:
    from ipguard.reports import export, html, markdown

    renderers = {
        ReportFormat.html: html.render,
        ReportFormat.md: markdown.render,
        ReportFormat.json: export.render_json,
        ReportFormat.csv: export.render_csv,
    }
    return renderers[fmt](summary)


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing (a temporary file renamed over it; see ipguard.atomic)."""
    from ipguard.atomic import write_text
    from ipguard.errors import InvalidValue

    try:
        write_text(path.expanduser(), text)
    except OSError as error:
        raise InvalidValue(f"cannot write {path}: {error.strerror}") from None
