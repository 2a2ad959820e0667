"""`ipguard report`: the summary of a period (the last 30 days, a month, or given days) as HTML,
Markdown, JSON or CSV."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    since: date | None, until: date | None, now: datetime, month: str | None = None
) -> tuple[datetime, datetime]:
    """The half-open UTC period of a report.

    No dates: the last 30 days up to `now`. `month` ("YYYY-MM"): that calendar month. Dates are
    whole UTC days, both included; `--since` alone runs to today, `--until` alone from the first
    of its month.
    """
    from ipguard.errors import InvalidValue

    if month is not None:
        if since is not None or until is not None:
            raise InvalidValue("give --month or --since/--until, not both")
        return _month(month)
    if since is None and until is None:
        return now - timedelta(days=DEFAULT_DAYS), now
    if since is None:
        assert until is not None
        since = until.replace(day=1)
    elif until is None:
        if since > now.date():  # the user gave no --until: name what the period ends with
            raise InvalidValue(
                f"--since {since} is after today ({now.date()}, UTC), where a period without "
                "--until ends"
            )
        until = now.date()
    if since > until:
        raise InvalidValue(f"--since {since} is after --until {until}")
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    end = datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


def _month(text: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` as the half-open period from its first day to the next month's first."""
    from ipguard.errors import InvalidValue

    try:
        first = datetime.strptime(text.strip(), "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidValue(f"--month {text!r}: not a month (use YYYY-MM)") from None
    if first.year > _LAST_YEAR:
        raise InvalidValue(f"--month {text!r}: give a month before {_LAST_YEAR + 1}")
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first, following


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
    their evidence, unregistered hosts and ledger changes. Dates are UTC days.
    """
    from ipguard.errors import InvalidValue

    if fmt is None:
        guessed = _SUFFIXES.get(output.suffix.lower()) if output else None
        if guessed is None:
            raise InvalidValue("give --format html, md, json or csv (or an -o FILE ending so)")
        fmt = ReportFormat(guessed)
    now = datetime.now(UTC)
    start, end = period(_day(since, "--since"), _day(until, "--until"), now, month)
    _warn_future(start, end, now, ended=month is not None or until is not None)
    if output is not None:
        state(ctx).refuse_own_file(str(output), "-o")

    from ipguard.ledger.reporting import period_records, refuse_unknown_site
    from ipguard.reports.summary import build

    with state(ctx).store().session(write=False) as session:
        refuse_unknown_site(session, site)
        summary = build(period_records(session, start, end, site), start, end, now=now, site=site)
    text = _render(summary, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    _write(output, text)
    info(f"report for {start.date()} to {summary.last_day} written to {output}")


def _warn_future(start: datetime, end: datetime, now: datetime, *, ended: bool) -> None:
    """Say when a period asked for as `ended` (a month, an --until) has not ended, or begun.

    Periods are UTC days: east of UTC, a monthly report made in the small hours of the 1st
    (local time) comes before its month has ended in UTC, and would be filed as complete.
    """
    if not ended or end <= now:
        return
    if start > now + timedelta(days=1):  # beyond any time zone's "today": a mistyped year
        from ipguard.errors import InvalidValue

        raise InvalidValue(
            f"the period starts {start:%Y-%m-%d} (UTC), after today ({now:%Y-%m-%d}): nothing "
            "has happened in it yet"
        )
    what = "starts" if start > now else "ends"
    moment = start if start > now else end
    info(
        f"warning: the period {what} {moment:%Y-%m-%d %H:%M} UTC, after now "
        f"({now:%Y-%m-%d %H:%M} UTC): this report covers it only up to now"
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
