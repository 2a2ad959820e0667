"""`ipguard cron …`: schedule unattended scans with cron, or print/write systemd units.

`cron install` is two installers behind one command: the crontab entry (the default) and the
systemd service and timer (`--systemd`). Each takes only its own options; an option of the other
is refused, not silently ignored. A dry run prints exactly what would be installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ipguard.cli.context import AppState, state
from ipguard.cli.output import info
from ipguard.errors import InvalidValue

if TYPE_CHECKING:
    from ipguard.schedule import Every

app = typer.Typer(
    help="Schedule unattended scans (crontab or systemd timer).", no_args_is_help=True
)

_MASKED = "the database password is masked: write it in yourself or use ~/.pgpass"


@dataclass(frozen=True)
class _Job:
    """The scheduled scan: when, and its command as run and as it may be shown."""

    when: Every
    argv: list[str]
    shown: list[str]  # the ledger URL's password masked
    metrics: Path
    site: str  # [scan] site of the configuration: one entry per site
    config: Path

    @property
    def secret(self) -> bool:
        """Whether the command holds a password (then files holding it stay private)."""
        return self.shown != self.argv


def _job(shared: AppState, every: str, metrics_file: Path | None, home: Path | None = None) -> _Job:
    """The scan command with every path absolute: the configuration must exist.

    `home` is the home of the user whose job it is, when that is not you: the defaults (ledger,
    metrics file) are then that user's, as its own ipguard would choose them, not yours.
    """
    from ipguard import schedule
    from ipguard.config import find_config
    from ipguard.ledger.store import absolute_url, display_url, resolve_url

    when = schedule.parse_every(every)
    config = find_config(shared.config)
    if config is None:
        raise InvalidValue(
            "a scheduled scan needs a configuration file: give --config PATH (or IPGUARD_CONFIG)"
        )
    configured = shared.settings().scan.metrics_file  # a broken configuration fails now
    chosen = metrics_file or (
        Path(configured) if configured else schedule.default_metrics_file(home)
    )
    metrics = chosen.expanduser().absolute()
    if home is not None and shared.db is None and "IPGUARD_DB" not in os.environ:
        db_url = f"sqlite:///{schedule.data_dir(home) / 'ledger.db'}"
    else:
        db_url = absolute_url(resolve_url(shared.db))
    argv = schedule.scan_argv(
        schedule.ipguard_argv(),
        db_url=db_url,
        config=config.absolute(),
        metrics_file=metrics,
    )
    shown = [
        display_url(word) if index and argv[index - 1] == "--db" else word
        for index, word in enumerate(argv)
    ]
    return _Job(when, argv, shown, metrics, shared.settings().scan.site, config.absolute())


def _refuse(given: Mapping[str, object], why: str) -> None:
    """A usage error for the first option given that does not apply."""
    for option, value in given.items():
        if value not in (None, False):
            raise InvalidValue(f"{option} {why}")


def _make_dirs(paths: list[Path], owner: str | None) -> None:
    """The directories of `paths`, made when missing: every one made is `owner`'s.

    All of them, not only the last: `~U/.local/state/ipguard/log` made by root with a root-owned
    `.local` in between would still be U's to write but never U's to tidy or move.
    """
    import pwd

    for directory in {path.parent for path in paths}:
        missing = [d for d in (directory, *directory.parents) if not d.exists()]
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if owner:
                entry = pwd.getpwnam(owner)
                for made in missing:
                    os.chown(made, entry.pw_uid, entry.pw_gid)
        except (OSError, KeyError) as error:
            raise InvalidValue(f"cannot create {directory}: {error}") from None


# The options of `cron install`, each declared once (`remove` shares --user).
_Every = Annotated[str, typer.Option(help="How often: Nm (N divides 60), Nh (N divides 24) or 1d.")]
_Systemd = Annotated[
    bool, typer.Option("--systemd", help="Print a systemd service and timer instead of using cron.")
]
_Write = Annotated[
    bool,
    typer.Option(
        "--write",
        help="With --systemd: write the units (to /etc/systemd/system as root, else "
        "~/.config/systemd/user) instead of printing them.",
    ),
]
_UnitDir = Annotated[
    Path | None,
    typer.Option("--unit-dir", help="With --systemd --write: write the units here instead."),
]
_ServiceUser = Annotated[
    str | None,
    typer.Option(
        "--service-user",
        help="With --systemd: the user a system service runs as (default: ipguard as root, "
        "else you).",
    ),
]
_MetricsFile = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        help="Prometheus metrics file the scan rewrites (default: node_exporter's textfile "
        "directory if present, else ipguard's data directory).",
    ),
]
_LogFile = Annotated[
    Path | None,
    typer.Option(
        "--log-file",
        help="File the scan's output is appended to (cron only; default: "
        "~/.local/state/ipguard/log/scan.log of the crontab's user).",
    ),
]
_User = Annotated[
    str | None,
    typer.Option("--user", help="Edit this user's crontab instead of your own (root only)."),
]
_DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show exactly what would be installed; change nothing.")
]


@app.command()
def install(
    ctx: typer.Context,
    every: _Every = "15m",
    systemd: _Systemd = False,
    write: _Write = False,
    unit_dir: _UnitDir = None,
    service_user: _ServiceUser = None,
    metrics_file: _MetricsFile = None,
    log_file: _LogFile = None,
    user: _User = None,
    dry_run: _DryRun = False,
) -> None:
    """Run `ipguard scan --quiet --metrics-file …` on a schedule (re-installing replaces it)."""
    if systemd:
        _refuse({"--user": user}, "is for cron: a systemd service runs as --service-user")
        _refuse({"--log-file": log_file}, "is for cron: a systemd service logs to the journal")
        _refuse({"--unit-dir": unit_dir and not write}, "needs --systemd --write")
        job = _job(state(ctx), every, metrics_file)
        _install_systemd(
            job, write=write, unit_dir=unit_dir, service_user=service_user, dry_run=dry_run
        )
    else:
        _refuse(
            {"--write": write, "--unit-dir": unit_dir, "--service-user": service_user},
            "is for --systemd only",
        )
        from ipguard import schedule

        home = schedule.home_of(user) if user else None
        job = _job(state(ctx), every, metrics_file, home)
        log = (log_file or schedule.default_log_file(home)).expanduser().absolute()
        if user and home is not None and not home.is_dir():
            _refuse_homeless(user, home, [job.metrics, log, *_ledger_file(job)])
        _install_cron(job, log=log, user=user, dry_run=dry_run)


def _refuse_homeless(user: str, home: Path, paths: list[Path]) -> None:
    """Refuse defaults under a home directory that does not exist (system users: /nonexistent):
    ipguard would make it, and a home for an account that was meant to have none."""
    under = [path for path in paths if path.is_relative_to(home)]
    if under:
        raise InvalidValue(
            f"--user {user}: its home directory {home} does not exist, and the job's "
            f"{', '.join(str(path) for path in under)} would be there; give --db, "
            "--metrics-file and --log-file paths that user may use"
        )


def _install_cron(job: _Job, *, log: Path, user: str | None, dry_run: bool) -> None:
    """The crontab entry of the job's site: printed by a dry run exactly as it is installed."""
    from ipguard import crontab, schedule

    shown = _cron_line(job, job.shown, log)
    if dry_run:
        typer.echo(f"{crontab.marker(job.site)}\n{shown}")
        if job.secret:
            info(_MASKED)
        return
    current = schedule.read_crontab(user)
    _refuse_shared_metrics(current, job)
    _make_dirs([job.metrics, log, *_ledger_file(job)], user)
    if user and os.geteuid() == 0:
        _refuse_unreachable(job, log, user)
    elif not user or user == schedule.me():
        _refuse_unreachable(job, log, None)
    line = _cron_line(job, job.argv, log)
    schedule.write_crontab(
        crontab.with_entry(current, line, site=job.site, config=job.config), user
    )
    whose = f"{user}'s" if user else "your"
    info(f"installed in {whose} crontab for site {job.site} (every {job.when.text}):")
    info(shown)
    info(f"output is appended to {log}; metrics go to {job.metrics}")


def _cron_line(job: _Job, words: list[str], log: Path) -> str:
    """The job line running `words` (the scan as run, or as shown); a ledger URL holding a
    password goes in IPGUARD_DB instead of `--db` (see schedule.cron_line)."""
    from ipguard import schedule

    if not job.secret:
        return schedule.cron_line(job.when, words, log)
    at = words.index("--db")
    argv = [*words[:at], *words[at + 2 :]]
    return schedule.cron_line(job.when, argv, log, db_env=words[at + 1])


def _refuse_shared_metrics(current: str, job: _Job) -> None:
    """Refuse a metrics file another site's job already writes: each scan replaces the whole
    file with its own site's metrics, so the dashboard would show each site half the time."""
    from ipguard import crontab

    replaced = crontab.same_job(job.site, job.config)
    for other in crontab.entries(current):
        if not replaced(other) and other.option("--metrics-file") == str(job.metrics):
            own = job.metrics.with_name(f"ipguard-{job.site}.prom")
            raise InvalidValue(
                f"the job of site {other.site or '(unnamed)'} already writes {job.metrics}, and "
                f"each scan replaces the file with its own site's metrics: give site {job.site} "
                f"a file of its own (--metrics-file {own})"
            )


def _ledger_file(job: _Job) -> list[Path]:
    """The SQLite ledger the job writes, if it is one (its directory must exist for the job)."""
    from ipguard import spool

    ledger = spool.sqlite_file(job.argv[job.argv.index("--db") + 1])
    return [] if ledger is None else [ledger]


def _ledger_files(ledger: list[Path]) -> list[Path]:
    """The ledger and the WAL files beside it: a root-owned `-wal` stops its user's writes too."""
    return [Path(f"{path}{suffix}") for path in ledger for suffix in ("", "-wal", "-shm")]


def _refuse_unreachable(job: _Job, log: Path, user: str | None) -> None:
    """Refuse a job whose files `user` (None: you) could not use: every run would fail, into a
    log nobody reads (a log it cannot open, and the shell never starts the scan at all). An
    ipguard `user` cannot run is only warned of: no option here changes it."""
    import sys

    from ipguard import schedule

    config = Path(job.argv[job.argv.index("--config") + 1])
    ledger = _ledger_file(job)
    writable = [*_ledger_files(ledger), log, *{path.parent for path in (job.metrics, log, *ledger)}]
    refused = schedule.unreachable(
        user,
        runnable=[],
        readable=[config],
        writable=[path for path in writable if path.exists()],
    )
    if refused:
        who = (
            f"--user {user}: the job would run as {user}"
            if user
            else (f"the job would run as you ({schedule.me()})")
        )
        may = user or "you"
        raise InvalidValue(
            f"{who}, who cannot "
            + ", ".join(refused)
            + f"; give paths {may} may use (--config, --db, --metrics-file, --log-file)"
        )
    if user is None:
        return  # you are running this ipguard now
    # The script and the interpreter it starts (a venv's python may link into root's home).
    programs = dict.fromkeys([Path(job.argv[0]), Path(sys.executable)])
    unrunnable = schedule.unreachable(user, runnable=list(programs), readable=[], writable=[])
    if unrunnable:
        info(
            f"warning: the job runs as {user}, who cannot {', '.join(unrunnable)}: install "
            f"ipguard where {user} can run it (README: python3 -m venv --copies /opt/ipguard)"
        )


def _install_systemd(
    job: _Job, *, write: bool, unit_dir: Path | None, service_user: str | None, dry_run: bool
) -> None:
    """The service and timer: printed, or written (a dry run prints what it would write)."""
    import pwd

    from ipguard import schedule

    # A user unit (written by anyone but root) runs as its owner: it cannot switch users.
    system = not write or os.geteuid() == 0
    if not system:
        _refuse({"--service-user": service_user}, "needs root: a user unit runs as you")
    account = (service_user or schedule.default_service_user()) if system else None
    if not write:
        for name, text in schedule.systemd_units(job.when, job.shown, user=account).items():
            typer.echo(f"# {name}\n{text}", nl=False)
        info(f"install them in {schedule.SYSTEM_UNIT_DIR} (or use --write)")
        if job.secret:
            info(_MASKED)
        return
    if account is not None:
        try:
            pwd.getpwnam(account)
        except KeyError:
            raise InvalidValue(
                f"--service-user {account!r}: no such user; create it first (README: "
                "useradd --system --create-home --home-dir /var/lib/ipguard ipguard)"
            ) from None
    target = (unit_dir or schedule.default_unit_dir()).expanduser().absolute()
    argv = job.shown if dry_run else job.argv
    units = {
        target / name: text
        for name, text in schedule.systemd_units(job.when, argv, user=account).items()
    }
    if dry_run:
        for path, text in units.items():
            typer.echo(f"# {path}\n{text}", nl=False)
        info("dry run: nothing was written")
        if job.secret:
            info(_MASKED)
        return
    _make_dirs([job.metrics], account)
    _make_dirs(list(units), None)
    _write_all(units, mode=0o600 if job.secret else 0o644)  # a database password stays private
    for path in units:
        info(f"wrote {path}")
    scope = "" if system else "--user "
    info(
        f"enable it with: systemctl {scope}daemon-reload && "
        f"systemctl {scope}enable --now {schedule.UNIT}.timer"
    )


def _write_all(files: Mapping[Path, str], *, mode: int) -> None:
    """Write every file or none: each goes to a temporary file first, renamed once all are written.

    A unit directory that cannot be written (not root, read-only, full) is one error line, and
    never leaves a service without its timer.
    """
    import errno
    import tempfile

    from ipguard.errors import OperationalError

    written: dict[Path, Path] = {}
    path = next(iter(files))
    try:
        for path, text in files.items():
            if path.is_dir():  # found now, not at the rename after the first file's
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            written[path] = Path(name)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(name, mode)
        for path, temporary in written.items():
            temporary.replace(path)
    except OSError as error:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
        if isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            raise InvalidValue(f"cannot write {path}: {error.strerror}") from None
        raise OperationalError(f"cannot write {path}: {error.strerror}") from None


@app.command()
def remove(
    ctx: typer.Context,
    user: _User = None,
    site: Annotated[
        str | None,
        typer.Option(help="The site whose scan to remove (needed when several are scheduled)."),
    ] = None,
) -> None:
    """Remove ipguard's entry from the crontab; every other line stays as it is."""
    from ipguard import crontab, schedule

    current = schedule.read_crontab(user)
    present = crontab.entries(current)
    if site is None and len(present) > 1:
        sites = ", ".join(sorted(entry.site or "(unnamed)" for entry in present))
        raise InvalidValue(
            f"the crontab holds ipguard's scans of sites {sites}: name the one to remove with "
            "--site"
        )
    kept, removed = crontab.without(current, lambda entry: site is None or entry.site == site)
    if not removed:
        whose = f" for site {site}" if site else ""
        info(f"there is no ipguard entry{whose} in the crontab; nothing changed")
        return
    schedule.write_crontab(kept, user)
    whose = f" (site {removed[0].site})" if removed[0].site else ""
    info(f"removed ipguard's entry{whose} from the crontab")
