"""`ipguard cron …`: schedule unattended scans with cron, or print/write systemd units.

`cron install` is two installers behind one command: the crontab entry (the default) and the
systemd service and timer (`--systemd`). Each takes only its own options; an option of the other
is refused, not silently ignored. A dry run prints exactly what would be installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ipguard.cli.context import AppState, state
from ipguard.cli.cronjob import MASKED, Job, make_dirs, make_job, refuse
from ipguard.cli.output import info
from ipguard.errors import InvalidValue

app = typer.Typer(
    help="Schedule unattended scans (crontab or systemd timer).", no_args_is_help=True
)

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
_Unit = Annotated[
    str,
    typer.Option(
        "--unit",
        help="With --systemd: the units' name, NAME.service and NAME.timer (one per site).",
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
    unit: _Unit = "ipguard-scan",  # schedule.UNIT
) -> None:
    """Run `ipguard scan --quiet --metrics-file …` on a schedule (re-installing replaces it)."""
    from ipguard import schedule

    if systemd:
        refuse({"--user": user}, "is for cron: a systemd service runs as --service-user")
        refuse({"--log-file": log_file}, "is for cron: a systemd service logs to the journal")
        refuse({"--unit-dir": unit_dir and not write}, "needs --systemd --write")
        job = make_job(state(ctx), every, metrics_file)
        from ipguard.cli.cron_systemd import install_systemd

        install_systemd(
            job,
            write=write,
            unit_dir=unit_dir,
            service_user=service_user,
            dry_run=dry_run,
            unit=schedule.check_unit_name(unit),
        )
    else:
        named = unit if unit != schedule.UNIT else None  # a crontab entry is named by its site
        refuse(
            {
                "--write": write,
                "--unit-dir": unit_dir,
                "--service-user": service_user,
                "--unit": named,
            },
            "is for --systemd only",
        )
        home = schedule.home_of(user) if user else None
        job = make_job(state(ctx), every, metrics_file, home)
        log = (log_file or schedule.default_log_file(home)).expanduser().absolute()
        if user and home is not None and not home.is_dir():
            _refuse_homeless(user, home, [job.metrics, log, *_ledger_file(job)])
        _install_cron(job, log=log, user=user, dry_run=dry_run)
        if user is None:
            _warn_of_overlaps(state(ctx), job)


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


def _install_cron(job: Job, *, log: Path, user: str | None, dry_run: bool) -> None:
    """The crontab entry of the job's site: printed by a dry run exactly as it is installed."""
    from ipguard import crontab, schedule

    shown = _cron_line(job, job.shown, log)
    if dry_run:
        typer.echo(f"{crontab.marker(job.site)}\n{shown}")
        if job.secret:
            info(MASKED)
        return
    current = schedule.read_crontab(user)
    _refuse_shared_metrics(current, job)
    make_dirs([job.metrics, log, *_ledger_file(job)], user)
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
    for other in crontab.unmarked_jobs(current):
        info(
            f"warning: {whose} crontab also runs an ipguard scan that `cron install` did not "
            f"write (by hand, or its marker line deleted): {other!r}; two scans of one site at "
            "once are one refused by its lock: remove the line you no longer want"
        )


def _warn_of_overlaps(shared: AppState, job: Job) -> None:
    """Warn when the site's last complete scan took the interval or longer: each scan cron starts
    while the previous one still runs is refused by the site's lock (exit 3), mailed every time."""
    from ipguard import spool
    from ipguard.errors import IpguardError
    from ipguard.ledger import runs
    from ipguard.schedule import parse_every

    ledger = spool.sqlite_file(job.argv[job.argv.index("--db") + 1])
    if ledger is not None and not ledger.is_file():
        return  # a new ledger: nothing ran yet (and a dry run must not create it)
    try:
        with shared.store().session(write=False) as session:
            last = runs.last_complete(session, site=job.site, count=1)
    except IpguardError:
        return
    if not last or last[0].finished_at is None:
        return
    took = (last[0].finished_at - last[0].started_at).total_seconds()
    if took < job.when.seconds:
        return
    longer = ("5m", "10m", "15m", "20m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d")
    enough = next((every for every in longer if parse_every(every).seconds > took), "1d")
    info(
        f"warning: the last scan of site {job.site} took {took / 60:.0f} min, every "
        f"{job.when.text} is sooner: each scan started while the one before still runs is "
        f"refused by the site's lock (exit 3, mailed each time); try --every {enough}"
    )


def _cron_line(job: Job, words: list[str], log: Path) -> str:
    """The job line running `words` (the scan as run, or as shown); a ledger URL holding a
    password goes in IPGUARD_DB instead of `--db` (see schedule.cron_line)."""
    from ipguard import schedule

    if not job.secret:
        return schedule.cron_line(job.when, words, log)
    at = words.index("--db")
    argv = [*words[:at], *words[at + 2 :]]
    return schedule.cron_line(job.when, argv, log, db_env=words[at + 1])


def _refuse_shared_metrics(current: str, job: Job) -> None:
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


def _ledger_file(job: Job) -> list[Path]:
    """The SQLite ledger the job writes, if it is one (its directory must exist for the job)."""
    from ipguard import spool

    ledger = spool.sqlite_file(job.argv[job.argv.index("--db") + 1])
    return [] if ledger is None else [ledger]


def _ledger_files(ledger: list[Path]) -> list[Path]:
    """The ledger and the WAL files beside it: a root-owned `-wal` stops its user's writes too."""
    return [Path(f"{path}{suffix}") for path in ledger for suffix in ("", "-wal", "-shm")]


def _refuse_unreachable(job: Job, log: Path, user: str | None) -> None:
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
    still = {entry.option("--metrics-file") for entry in crontab.entries(kept)}
    for entry in removed:
        _remove_metrics(entry.option("--metrics-file"), still)


def _remove_metrics(name: str | None, still: set[str | None]) -> None:
    """The metrics file a removed job wrote goes with it (unless another job writes it too):
    left there, node_exporter would export a site nobody scans any more for ever, as it stood
    at its last scan."""
    if name is None or name in still or not Path(name).is_file():
        return
    try:
        Path(name).unlink()
    except OSError as error:
        info(f"warning: cannot remove its metrics file {name}: {error.strerror}")
        return
    info(f"removed its metrics file {name}: nothing exports that site's figures any more")
