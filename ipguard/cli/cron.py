"""`ipguard cron …`: schedule unattended scans with cron, or print/write systemd units."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from ipguard.cli.context import AppState, state
from ipguard.cli.output import info, safe

app = typer.Typer(
    help="Schedule unattended scans (crontab or systemd timer).", no_args_is_help=True
)


def _scan_argv(shared: AppState, metrics_file: Path) -> list[str]:
    """The scan command with every path absolute: the configuration must exist."""
    from ipguard.config import find_config
    from ipguard.errors import InvalidValue
    from ipguard.ledger.store import resolve_url
    from ipguard.schedule import absolute_db_url, ipguard_argv, scan_argv

    config = find_config(shared.config)
    if config is None:
        raise InvalidValue(
            "a scheduled scan needs a configuration file: give --config PATH (or IPGUARD_CONFIG)"
        )
    shared.settings()  # a broken configuration fails now, not at 3 a.m.
    return scan_argv(
        ipguard_argv(),
        db_url=absolute_db_url(resolve_url(shared.db)),
        config=config.absolute(),
        metrics_file=metrics_file.expanduser().absolute(),
    )


def _masked(words: list[str]) -> list[str]:
    """The command safe to print: the ledger URL's password masked."""
    from ipguard.ledger.store import display_url

    return [
        display_url(word) if index and words[index - 1] == "--db" else word
        for index, word in enumerate(words)
    ]


def _make_dirs(paths: list[Path], owner: str | None) -> None:
    import os
    import pwd

    from ipguard.errors import InvalidValue

    for directory in {path.parent for path in paths}:
        if directory.is_dir():
            continue
        try:
            directory.mkdir(parents=True)
            if owner:
                entry = pwd.getpwnam(owner)
                os.chown(directory, entry.pw_uid, entry.pw_gid)
        except (OSError, KeyError) as error:
            raise InvalidValue(f"cannot create {directory}: {error}") from None


@app.command()
def install(
    ctx: typer.Context,
    every: Annotated[
        str, typer.Option(help="How often: Nm (N divides 60), Nh (N divides 24) or 1d.")
    ] = "15m",
    systemd: Annotated[
        bool,
        typer.Option("--systemd", help="Print a systemd service and timer instead of using cron."),
    ] = False,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="With --systemd: write the units (to /etc/systemd/system as root, else "
            "~/.config/systemd/user) instead of printing them.",
        ),
    ] = False,
    unit_dir: Annotated[
        Path | None,
        typer.Option("--unit-dir", help="With --systemd --write: write the units here instead."),
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            help="Prometheus metrics file the scan rewrites (default: node_exporter's textfile "
            "directory if present, else ipguard's data directory).",
        ),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="File the scan's output is appended to (cron only)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Edit this user's crontab instead of your own (root only)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the entry that would be installed; change nothing."),
    ] = False,
) -> None:
    """Run `ipguard scan --quiet --metrics-file …` on a schedule (re-installing replaces it)."""
    from ipguard import schedule

    shared = state(ctx)
    when = schedule.parse_every(every)
    metrics = (metrics_file or schedule.default_metrics_file()).expanduser().absolute()
    argv = _scan_argv(shared, metrics)
    secret = _masked(argv) != argv
    if systemd:
        if not write:
            for name, text in schedule.systemd_units(when, _masked(argv)).items():
                typer.echo(f"# {name}\n{text}")
            if secret:
                info("the database password is masked: write it in yourself or use ~/.pgpass")
            return
        units = schedule.systemd_units(when, argv)
        target = unit_dir or schedule.default_unit_dir()
        _make_dirs([target / name for name in units], None)
        for name, text in units.items():
            path = target / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600 if secret else 0o644)  # a database password stays private
            info(f"wrote {path}")
        scope = "" if str(target).startswith("/etc/") else "--user "
        info(
            f"enable it with: systemctl {scope}daemon-reload && "
            f"systemctl {scope}enable --now {schedule.UNIT}.timer"
        )
        return

    log = (log_file or schedule.default_log_file()).expanduser().absolute()
    line = schedule.cron_line(when, argv, log)
    shown = f"{when.cron} {shlex.join(_masked(argv))} >> {shlex.quote(str(log))} 2>&1"
    if dry_run:
        typer.echo(f"{schedule.MARKER}\n{safe(shown)}")
        return
    _make_dirs([metrics, log], user)
    current = schedule.read_crontab(user)
    schedule.write_crontab(schedule.with_entry(current, line), user)
    whose = f"{user}'s" if user else "your"
    info(f"installed in {whose} crontab (every {when.text}):\n{shown}")
    info(f"output is appended to {log}; metrics go to {metrics}")


@app.command()
def remove(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Edit this user's crontab instead of your own (root only)."),
    ] = None,
) -> None:
    """Remove ipguard's entry from the crontab; every other line stays as it is."""
    from ipguard import schedule

    current = schedule.read_crontab(user)
    kept, found = schedule.without_entry(current)
    if not found:
        info("there is no ipguard entry in the crontab; nothing changed")
        return
    schedule.write_crontab(kept, user)
    info("removed ipguard's entry from the crontab")
