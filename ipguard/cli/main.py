"""The `ipguard` command: global options, command groups, and how errors become exit codes."""

from __future__ import annotations

import math
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ipguard import __version__
from ipguard.cli import (
    cron,
    findings,
    history,
    ledger,
    ledger_files,
    metrics,
    migrate,
    pools,
    prune,
    report,
    scan,
    snmp,
    watch,
)
from ipguard.cli.context import AppState, state
from ipguard.cli.output import error_line, safe
from ipguard.errors import IpguardError


class IpguardGroup(TyperGroup):
    """The root group: the one place where ipguard's errors turn into a line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except IpguardError as error:
            debug = isinstance(ctx.obj, AppState) and ctx.obj.debug
            if debug:
                traceback.print_exc()
            error_line(str(error))
            for line in error.details:
                typer.echo(f"  {safe(line)}", err=True)
            ctx.exit(error.exit_code)
        finally:
            if isinstance(ctx.obj, AppState):
                ctx.obj.close()


app = typer.Typer(
    cls=IpguardGroup,
    name="ipguard",
    help="Network asset and IP-binding inventory: sweep the network, compare with the ledger, "
    "report what the rules forbid.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ledger.app.command("migrate")(migrate.migrate)
ledger.app.command("import")(ledger_files.import_)
ledger.app.command("export")(ledger_files.export)
app.add_typer(ledger.app, name="ledger")
app.add_typer(pools.app, name="pools")
app.command("scan")(scan.scan)
app.command("watch")(watch.watch)
app.add_typer(history.runs_app, name="runs")
app.command("diff")(history.diff)
app.add_typer(findings.app, name="findings")
app.command("report")(report.report)
app.command("prune")(prune.prune)
app.add_typer(cron.app, name="cron")
app.add_typer(metrics.app, name="metrics", no_args_is_help=True)
app.add_typer(snmp.app, name="snmp")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ipguard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Ledger database URL or SQLite file path [env: IPGUARD_DB]."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Configuration file [env: IPGUARD_CONFIG]."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Name recorded in the audit trail (default: the OS user)."),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            min=0,
            max=86_400,
            help="Seconds to wait for another process's write lock on a SQLite ledger "
            "(default 30).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Global options, shared by every command."""
    shared = state(ctx)
    shared.db, shared.config, shared.actor_name, shared.debug = db, config, actor, debug
    if wait is not None and not math.isfinite(wait):
        raise typer.BadParameter("give a number of seconds", param_hint="--wait")
    shared.wait = wait


def run(shared: AppState | None = None) -> None:
    """Console entry point; `shared` is the state to start from (tests inject a scanner there)."""
    try:
        app(prog_name="ipguard", obj=shared)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
