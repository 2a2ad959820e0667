"""The `ipguard` command: global options, command groups, and how errors become exit codes."""

from __future__ import annotations

import functools
import gc
import importlib
import math
import sys
import traceback
from collections.abc import Callable, Iterator, MutableMapping
from functools import cache
from typing import Annotated, Any

import typer
import typer.main
from typer._click.exceptions import (  # typer 0.28 vendors click; no public alias
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from ipguard import __version__
from ipguard.cli.context import AppState, settle, state
from ipguard.cli.output import error_line, safe
from ipguard.errors import IpguardError

# Every command: its name, the module and attribute of its function (a command) or its
# typer.Typer (a group, with the options add_typer gives it), in the order `--help` lists them.
# A command's module is imported, and its click command built, only when it is run (or listed by
# --help): `ipguard scan` would otherwise import and build all twelve of them before its first
# probe, some 50 ms of CPU.
COMMANDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "scan": ("ipguard.cli.scan", "scan", {}),
    "watch": ("ipguard.cli.watch", "watch", {}),
    "diff": ("ipguard.cli.history", "diff", {}),
    "report": ("ipguard.cli.report", "report", {}),
    "prune": ("ipguard.cli.prune", "prune", {}),
    "ledger": ("ipguard.cli.main", "ledger_app", {"group": True}),
    "pools": ("ipguard.cli.pools", "app", {"group": True}),
    "runs": ("ipguard.cli.history", "runs_app", {"group": True}),
    "findings": ("ipguard.cli.findings", "app", {"group": True}),
    "cron": ("ipguard.cli.cron", "app", {"group": True}),
    "metrics": ("ipguard.cli.metrics", "app", {"group": True, "no_args_is_help": True}),
    "snmp": ("ipguard.cli.snmp", "app", {"group": True}),
}


@cache
def ledger_app() -> typer.Typer:
    """`ledger`: its own commands, and those of ledger_files and migrate (added once)."""
    from ipguard.cli import ledger, ledger_files, migrate

    ledger.app.command("migrate")(migrate.migrate)
    ledger.app.command("import")(ledger_files.import_)
    ledger.app.command("export")(ledger_files.export)
    return ledger.app


def _build(name: str) -> Any:  # typer vendors click; its Command type is private
    """The click command of one entry of COMMANDS, built the way typer builds an eager one."""
    module_name, attribute, options = COMMANDS[name]
    found = getattr(importlib.import_module(module_name), attribute)
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    if not options.get("group"):
        command = typer.main.get_command_from_info(
            CommandInfo(name=name, callback=found),
            pretty_exceptions_short=short,
            rich_markup_mode=markup,
        )
    else:
        extra = {key: value for key, value in options.items() if key != "group"}
        sub_app = found() if attribute == "ledger_app" else found
        command = typer.main.get_group_from_info(
            TyperInfo(sub_app, name=name, **extra),
            pretty_exceptions_short=short,
            rich_markup_mode=markup,
            suggest_commands=app.suggest_commands,
        )
    if name != "scan":  # scan settles once its ledger is imported, after its first probes
        _settle_first(command)
    return command


def _settle_first(command: Any) -> None:
    """Make each command of `command` settle start-up (context.settle) as its own work starts."""
    for sub in getattr(command, "commands", {}).values():
        _settle_first(sub)
    work = command.callback
    if work is None or hasattr(command, "commands"):
        return  # a group's own callback runs before its command's options are even parsed

    def settled(*args: Any, **kwargs: Any) -> Any:
        settle()
        return work(*args, **kwargs)

    command.callback = functools.update_wrapper(settled, work)


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: each built on first use (see COMMANDS)."""

    def __init__(self, built: dict[str, Any], build: Callable[[str], Any]) -> None:
        self._built = dict(built)
        self._build = build

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = self._build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._built.keys())


class IpguardGroup(TyperGroup):
    """The root group: the one place where ipguard's errors turn into a line and an exit code.

    Its commands are built lazily (COMMANDS).
    """

    def __init__(self, *args: Any, commands: dict[str, Any] | None = None, **kwargs: Any) -> None:
        lazy = _LazyCommands(commands or {}, _build)  # click keeps any mapping (typer casts)
        super().__init__(*args, commands=lazy, **kwargs)  # type: ignore[arg-type]

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        """The root's own options parsed; a bad one is one error line and exit 2 (DESIGN)."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as error:
            if isinstance(error, NoArgsIsHelpError):  # `ipguard` alone: the help, as click gives it
                raise
            error_line(usage_line(error))
            raise SystemExit(2) from None

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except UsageError as error:  # a subcommand's arguments, or no such command
            if isinstance(error, NoArgsIsHelpError):  # `ipguard ledger` alone: its help
                raise
            error_line(usage_line(error))
            ctx.exit(2)
        except IpguardError as error:
            if isinstance(ctx.obj, AppState) and ctx.obj.debug:
                traceback.print_exc()
            error_line(str(error))
            for line in error.details:
                typer.echo(f"  {safe(line)}", err=True)
            ctx.exit(error.exit_code)
        except OSError as error:  # the system refused something no code expected to fail
            if isinstance(ctx.obj, AppState) and ctx.obj.debug:
                traceback.print_exc()
            where = f" ({error.filename})" if error.filename else ""
            error_line(f"{error.strerror or error}{where}; --debug shows where it happened")
            ctx.exit(3)
        finally:
            if isinstance(ctx.obj, AppState):
                ctx.obj.close()


def usage_line(error: UsageError) -> str:
    """What click says in three lines (usage, hint, error), as one: the error and where to look."""
    where = error.ctx.command_path if error.ctx is not None else "ipguard"
    return f"{error.format_message()} (see `{where} --help`)"


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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ipguard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Ledger database URL or SQLite file path [env: IPGUARD_DB] (default: "
            "ledger.db in the user data directory, ~/.local/share/ipguard).",
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Configuration file [env: IPGUARD_CONFIG] (default: ./ipguard.toml, else "
            "~/.config/ipguard/ipguard.toml, else the built-in defaults).",
        ),
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
    from ipguard.cli import streams

    gc.disable()  # until the command settles: see context.settle
    streams.guard()  # a failing standard output is an error line (see streams)
    try:
        app(prog_name="ipguard", obj=shared)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
    except streams.OutputFailed as error:  # writing `--help` or `--version`, before any command
        error_line(str(error))
        sys.exit(error.exit_code)
    except SystemExit as done:  # how every command ends (click's standalone mode)
        ending = done
        try:
            sys.stdout.flush()  # what is still buffered may fail too (a small output > /dev/full)
        except streams.OutputFailed as error:
            error_line(str(error))
            ending = SystemExit(error.exit_code)
        _exit_now(ending)
        raise ending from None


def _exit_now(done: SystemExit) -> None:
    """End the process at once once the command is over, unless some thread still works.

    The interpreter's own teardown (clearing every module of SQLAlchemy, SQLite, typer, ...) takes
    0.1-0.3 s after a scan: a quarter of a whole sweep-only scan's time. The ledger is closed by
    then (IpguardGroup.invoke), so what is left to do is the exit handlers and the flush.
    """
    import atexit
    import os
    import threading

    code = 0 if done.code is None else done.code
    if not isinstance(code, int):
        return  # a message to print: the interpreter's usual handling
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        return  # it waits for them, and so must we
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the interpreter reports it as it always does
        return
    atexit._run_exitfuncs()  # what the interpreter runs first at exit (logging, finalizers)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
