"""`ipguard cron install --systemd`: print, or write, the systemd service and timer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import typer

from ipguard.cli.cronjob import MASKED, Job, make_dirs, refuse
from ipguard.cli.output import info
from ipguard.errors import InvalidValue

LINGER = Path("/var/lib/systemd/linger")  # a user's systemd runs without a login when listed


def install_systemd(
    job: Job,
    *,
    write: bool,
    unit_dir: Path | None,
    service_user: str | None,
    dry_run: bool,
    unit: str,
) -> None:
    """The service and timer: printed, or written (a dry run prints what it would write)."""
    import pwd

    from ipguard import schedule

    # A user unit (written by anyone but root) runs as its owner: it cannot switch users.
    system = not write or os.geteuid() == 0
    if not system:
        refuse({"--service-user": service_user}, "needs root: a user unit runs as you")
    account = (service_user or schedule.default_service_user()) if system else None
    if not write:
        shown = _files(job, job.shown, schedule.SYSTEM_UNIT_DIR, account=account, unit=unit)
        for name, text in shown.items():
            typer.echo(f"# {name}\n{text}", nl=False)
        info(f"install them in {schedule.SYSTEM_UNIT_DIR} (or use --write)")
        if job.secret:
            info(MASKED)
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
    _refuse_another_sites(target / f"{unit}.service", job)
    argv = job.shown if dry_run else job.argv
    files = _files(job, argv, target, account=account, unit=unit)
    units = {target / name: text for name, text in files.items()}
    if dry_run:
        for path, text in units.items():
            typer.echo(f"# {path}\n{text}", nl=False)
        info("dry run: nothing was written")
        if job.secret:
            info(MASKED)
        return
    make_dirs([job.metrics], account)
    make_dirs(list(units), None)
    _write_all(units, private=target / f"{unit}.env")  # a database password stays private
    for path in units:
        info(f"wrote {path}")
    scope = "" if system else "--user "
    info(
        f"enable it with: systemctl {scope}daemon-reload && "
        f"systemctl {scope}enable --now {unit}.timer"
    )
    if not system and not (LINGER / schedule.me()).exists():
        info(
            f"warning: a user's timer runs only while {schedule.me()} is logged in: "
            f"`sudo loginctl enable-linger {schedule.me()}` keeps it running (or, as root, "
            "write a system service: sudo ipguard cron install --systemd --write)"
        )


def _files(
    job: Job, words: list[str], directory: Path, *, account: str | None, unit: str
) -> dict[str, str]:
    """The unit files by name, and with a ledger password the environment file holding it (the
    command names no password: ps and `systemctl show` show it to every local user)."""
    from ipguard import schedule

    if not job.secret:
        return schedule.systemd_units(job.when, words, user=account, unit=unit)
    at = words.index("--db")
    argv = [*words[:at], *words[at + 2 :]]
    env = f"{unit}.env"
    files = schedule.systemd_units(
        job.when, argv, user=account, unit=unit, env_file=directory / env
    )
    return {**files, env: schedule.environment_file(words[at + 1])}


def _refuse_another_sites(service: Path, job: Job) -> None:
    """Refuse to write over the service of another configuration: a sensor scanning two sites
    lost the first site's scans to the second's units, which took their name."""
    import re

    from ipguard import schedule

    try:
        named = schedule.unit_config(service.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # none there yet (or unreadable: writing it fails, saying so)
        return
    if named is not None and named != str(job.config):
        own = "ipguard-scan-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", job.site).strip("-") or "2")
        raise InvalidValue(
            f"{service} runs the scan of another configuration ({named}); give the units of "
            f"site {job.site} a name of their own: --unit {own}"
        )


def _write_all(files: Mapping[Path, str], *, private: Path) -> None:
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
            os.chmod(name, 0o600 if path == private else 0o644)
        for path, temporary in written.items():
            temporary.replace(path)
    except OSError as error:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
        if isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            raise InvalidValue(f"cannot write {path}: {error.strerror}") from None
        raise OperationalError(f"cannot write {path}: {error.strerror}") from None
