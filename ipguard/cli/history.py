"""`ipguard runs …` and `ipguard diff`: the scan history and what changed between runs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipguard.cli.context import site_option, state
from ipguard.cli.output import Format, Shown, emit, emit_json, sections, table

runs_app = typer.Typer(help="Scan runs: when, where, how they ended.", no_args_is_help=True)
RUN_COLUMNS = (
    "id",
    "site",
    "status",
    "started_at",
    "finished_at",
    "hosts_seen",
    "subnets",
    "actor",
)


def _run_row(run: Any) -> dict[str, Any]:
    from ipguard.reports.serialize import run_json

    row = run_json(run)
    row["actor"] = run.actor
    row["subnets"] = (
        ", ".join(run.subnets) if not isinstance(row["subnets"], str) else row["subnets"]
    )
    return row


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    site: Annotated[
        str | None,
        typer.Option(help="Only this site (default: every site).", callback=site_option),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first.", min=1)] = 50,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """List scan runs, newest first."""
    from ipguard.ledger import runs
    from ipguard.ledger.reporting import refuse_unknown_site

    with state(ctx).store().session(write=False) as session:
        refuse_unknown_site(session, site)
        runs_listed = runs.list_runs(session, site=site, limit=limit)
        rows = [_run_row(run) for run in runs_listed]
    if fmt == Format.table:  # a person reads it: times in the administrators' zone, offset shown
        from ipguard.localtime import iso_local

        zone = state(ctx).zone()
        for row, run in zip(rows, runs_listed, strict=True):
            row["started_at"] = iso_local(run.started_at, zone)
            row["finished_at"] = iso_local(run.finished_at, zone)
    emit(fmt, RUN_COLUMNS, rows, title="scan runs")


@runs_app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    fmt: Annotated[Shown, typer.Option("--format", help="table or json.")] = Shown.table,
) -> None:
    """One run in sections: settings, phase timings, counts, ignored replies, uncovered, error."""
    from ipguard.ledger import runs
    from ipguard.reports.runview import run_document, run_sections

    with state(ctx).store().session(write=False) as session:
        document = run_document(runs.get(session, run_id))
    if fmt == Shown.json:
        emit_json(document)
    else:
        sections(run_sections(document, state(ctx).zone()))


def diff(
    ctx: typer.Context,
    run_a: Annotated[
        int | None, typer.Argument(help="Older run (default: the last but one complete run).")
    ] = None,
    run_b: Annotated[
        int | None, typer.Argument(help="Newer run (default: the last complete run).")
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            help="Site whose runs to compare by default (default: that of the newest complete "
            "run).",
            callback=site_option,
        ),
    ] = None,
    fmt: Annotated[Shown, typer.Option("--format", help="table or json.")] = Shown.table,
) -> None:
    """What changed between two runs: hosts, IP and MAC changes, services, names."""
    from ipguard.errors import InvalidValue, NotFound
    from ipguard.ledger import runs
    from ipguard.ledger.reporting import refuse_unknown_site
    from ipguard.reports.diff import diff_results

    with state(ctx).store().session(write=False) as session:
        refuse_unknown_site(session, site)
        if run_a is None or run_b is None:
            # Runs of one site only: with many sensors on one ledger, the newest two runs are
            # often two sites', and every host of each would show as appeared or disappeared.
            if run_a is not None:
                older = runs.get(session, run_a)
                latest = runs.last_complete(session, site=site or older.site, count=1)
                if not latest:
                    raise NotFound("no complete run to compare with")
                newer = latest[0]
            else:
                newest = runs.last_complete(session, site=site, count=1)
                chosen = newest[0].site if newest else site
                latest = runs.last_complete(session, site=chosen, count=2) if newest else []
                if len(latest) < 2:
                    where = f" of site {chosen}" if chosen else ""
                    raise NotFound(
                        f"diff needs two complete runs{where}; scan again or name the runs"
                    )
                newer, older = latest
        else:
            older, newer = runs.get(session, run_a), runs.get(session, run_b)
        if older.id == newer.id:
            raise InvalidValue(f"both runs are {older.id}; name two different runs")
        _warn_uncomparable(older, newer)
        changes = diff_results(
            runs.load_results(session, older),
            runs.load_results(session, newer),
            (older.subnets, newer.subnets),
        )
    if fmt == Shown.json:
        emit_json({"from_run": older.id, "to_run": newer.id, **changes.as_json()})
        return
    rows = []
    for section, items in changes.as_json().items():
        for item in items:
            what = {key: value for key, value in item.items() if key != "ip"}
            rows.append((section.replace("_", " "), item.get("ip", ""), _describe(what)))
    if rows:
        table(
            ("change", "ip", "detail"), rows, title=f"changes from run {older.id} to run {newer.id}"
        )
    else:
        typer.echo(f"no changes from run {older.id} to run {newer.id}")


def _warn_uncomparable(older: Any, newer: Any) -> None:
    """Say when named runs differ in more than time: a part of a scan, or another site's."""
    from ipguard.cli.output import info
    from ipguard.ledger.runs import WATCH
    from ipguard.model import RunStatus

    for run in (older, newer):
        if run.kind == WATCH:
            info(
                f"warning: run {run.id} is a watcher's, not a scan: it heard only the hosts that "
                "spoke while it listened, and the others show as changes"
            )
        elif run.status != RunStatus.COMPLETE.value:
            info(
                f"warning: run {run.id} is {run.status}, not complete: it saw only part of "
                "what it would have, and what it missed shows as changes"
            )
    if older.site != newer.site:
        info(
            f"warning: runs {older.id} and {newer.id} are of different sites "
            f"({older.site}, {newer.site}): their hosts are different networks'"
        )


def _describe(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, list):
            value = ", ".join(value)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)
