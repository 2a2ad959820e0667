"""Unattended scans: a crontab entry, or a systemd service and timer, that run `ipguard scan`.

The crontab entry of a site is two lines, the marker comment and the job (`ipguard.crontab`);
installing again replaces them, removing takes out only them. Everything the job needs is spelled
out as an absolute path (the ipguard executable, the configuration, the ledger, the metrics file,
the log) because cron runs it with an almost empty environment: PATH=/usr/bin:/bin, no terminal,
no IPGUARD_* variables.

    */15 * * * * /opt/ipguard/.venv/bin/ipguard --db /var/lib/ipguard/ledger.db \\
        --config /etc/ipguard.toml scan --quiet --metrics-file … >> /var/log/ipguard.log 2>&1
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ipguard.errors import InvalidValue, OperationalError, ToolMissing

UNIT = "ipguard-scan"
NODE_EXPORTER_TEXTFILES = Path("/var/lib/prometheus/node-exporter")  # Debian's collector dir

_EVERY = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")


@dataclass(frozen=True)
class Every:
    """How often to scan, as cron and systemd spell it."""

    text: str
    cron: str  # the five time fields
    calendar: str  # systemd OnCalendar=

    @property
    def seconds(self) -> int:
        """The time between two scans."""
        return int(self.text[:-1]) * {"m": 60, "h": 3600, "d": 86400}[self.text[-1]]


def parse_every(text: str) -> Every:
    """`15m` (minutes dividing 60), `2h` (hours dividing 24) or `1d`."""
    match = _EVERY.match(text.lower())
    if not match:
        raise InvalidValue(f"--every {text!r}: use minutes, hours or a day, like 15m, 2h or 1d")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "m" and count in _divisors(60) and count < 60:
        minutes = "*" if count == 1 else f"*/{count}"
        return Every(f"{count}m", f"{minutes} * * * *", f"*-*-* *:00/{count}:00")
    if unit == "h" and count in _divisors(24) and count < 24:
        hours = "*" if count == 1 else f"*/{count}"
        return Every(f"{count}h", f"0 {hours} * * *", f"*-*-* 00/{count}:00:00")
    if unit == "d" and count == 1:
        return Every("1d", "0 0 * * *", "*-*-* 00:00:00")
    allowed = {
        "m": "minutes must divide an hour: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30",
        "h": "hours must divide a day: 1, 2, 3, 4, 6, 8 or 12",
        "d": "days: only 1d",
    }[unit]
    raise InvalidValue(f"--every {text!r}: {allowed}")


def _divisors(number: int) -> set[int]:
    return {d for d in range(1, number + 1) if number % d == 0}


def ipguard_argv() -> list[str]:
    """How to start this ipguard: the `ipguard` script beside the interpreter, or `python -m`."""
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink
    script = python.with_name("ipguard")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "ipguard"]


def scan_argv(exe: Sequence[str], *, db_url: str, config: Path, metrics_file: Path) -> list[str]:
    """The scan command the schedule runs."""
    return [
        *exe,
        "--db",
        db_url,
        "--config",
        str(config),
        "scan",
        "--quiet",
        "--metrics-file",
        str(metrics_file),
    ]


def _one_line(command: str) -> str:
    """The command, refused if it holds a control character.

    A newline, even quoted, would end a crontab job or a unit's ExecStart= and start a line of its
    own; refusing them also keeps what a dry run prints equal to what is installed.
    """
    if not command.isprintable():
        raise InvalidValue(f"a scheduled command cannot hold control characters: {command!r}")
    return command


def cron_line(
    every: Every, argv: Sequence[str], log_file: Path, *, db_env: str | None = None
) -> str:
    """One crontab job: the scan, its output appended to the log, and what it says on standard
    error (warnings, errors) to cron as well, which mails it (MAILTO): a warning only in a log
    nobody reads, or a scan that cannot start at all, would go unnoticed.

    `db_env` is a ledger URL holding a password: it goes to the scan in IPGUARD_DB, not as an
    argument, since every local user can read every process's arguments (ps, /proc/PID/cmdline)
    and only its owner its environment. Cron's shell, whose own arguments are the whole line,
    `exec`s a shell whose arguments hold no password.

    This is the line the crontab gets and the line a dry run prints, byte for byte.
    """
    log = shlex.quote(str(log_file))
    # Standard error into the pipe, standard output into the log; tee adds the pipe to the log.
    command = f"{shlex.join(argv)} 2>&1 >> {log} | tee -a {log}"
    if db_env is not None:
        command = f"IPGUARD_DB={shlex.quote(db_env)} exec /bin/sh -c {shlex.quote(command)}"
    command = _one_line(command)
    # An unescaped % in a crontab command ends it (the rest becomes standard input).
    return f"{every.cron} {command.replace('%', chr(92) + '%')}"


def _crontab(args: Sequence[str], user: str | None, *, text: str | None = None) -> str:
    binary = shutil.which("crontab", path=f"{os.environ.get('PATH', '')}:/usr/bin:/bin")
    if binary is None:
        raise ToolMissing(
            "crontab is not installed: apt-get install cron, "
            "or use `ipguard cron install --systemd`"
        )
    if user:
        home_of(user)  # refuses a user that does not exist
        if os.geteuid() != 0 and user != me():
            raise InvalidValue(
                f"--user {user}: only root may change another user's crontab; run it with "
                f"sudo, or as {user} without --user"
            )
    argv = [binary, *(["-u", user] if user else []), *args]
    try:
        # Other lines of a crontab may be in any encoding (a Latin-1 comment): kept byte for byte.
        done = subprocess.run(
            argv,
            input=text,
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OperationalError(f"crontab failed: {error}") from None
    if done.returncode != 0:
        if args == ["-l"] and "no crontab" in done.stderr.lower():
            return ""
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise OperationalError(f"crontab {' '.join(args)}: {reason}")
    return done.stdout


def me() -> str:
    """The name of the user this process runs as."""
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def read_crontab(user: str | None = None) -> str:
    """The current crontab (empty when there is none)."""
    return _crontab(["-l"], user)


def write_crontab(text: str, user: str | None = None) -> None:
    """Replace the crontab with `text`."""
    _crontab(["-"], user, text=text)


def _systemd_word(word: str) -> str:
    escaped = word.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%+=:,./-]+", escaped.replace("$$", "")):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


# What a scan needs of root, and nothing more (README: "Running unattended with least privilege").
CAPABILITIES = "CAP_NET_RAW CAP_NET_ADMIN"


def check_unit_name(name: str) -> str:
    """A unit name of ipguard's units (`ipguard-scan-north`): what systemd takes, no template."""
    if not re.fullmatch(r"[A-Za-z0-9:_.-]{1,200}", name) or name.endswith((".service", ".timer")):
        raise InvalidValue(
            f"--unit {name!r}: a unit name is letters, digits and : _ . - (no suffix), "
            "like ipguard-scan-north"
        )
    return name


def unit_config(service: str) -> str | None:
    """The configuration file the ExecStart= of a service written by systemd_units names."""
    for line in service.splitlines():
        if line.startswith("ExecStart="):
            try:
                words = shlex.split(line.removeprefix("ExecStart="))
            except ValueError:  # written by hand into something else
                return None
            for index, word in enumerate(words[:-1]):
                if word == "--config":
                    return words[index + 1].replace("%%", "%").replace("$$", "$")
    return None


def environment_file(db_url: str) -> str:
    """The EnvironmentFile= of a service whose ledger URL holds a password (see systemd_units)."""
    if "'" not in db_url:
        value = f"'{db_url}'"
    else:
        value = '"' + db_url.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
    return _one_line(f"IPGUARD_DB={value}") + "\n"


def systemd_units(
    every: Every,
    argv: Sequence[str],
    *,
    user: str | None,
    unit: str = UNIT,
    env_file: Path | None = None,
) -> dict[str, str]:
    """A oneshot service running the scan and a timer starting it (`unit`.service, .timer).

    `user` is the account a system service runs as, given the raw-socket capabilities only; None
    makes a user unit, which runs as its owner with what the interpreter's file capability gives.
    `env_file` (mode 600) gives the scan IPGUARD_DB when the ledger URL holds a password: in
    ExecStart= every local user could read it, in `systemctl show` and in ps while it runs.
    """
    exec_start = _one_line(" ".join(_systemd_word(word) for word in argv))
    # The file name as it is (systemd takes the rest of the line), but for its specifiers.
    privilege_env = [f"EnvironmentFile={str(env_file).replace('%', '%%')}"] if env_file else []
    privilege = (
        [
            f"User={user}",
            "# Raw sockets for the sweeps and probes; no other privilege of root.",
            f"AmbientCapabilities={CAPABILITIES}",
            f"CapabilityBoundingSet={CAPABILITIES}",
        ]
        if user is not None
        else []
    )
    service = "\n".join(
        [
            "[Unit]",
            "Description=ipguard network scan",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            *privilege,
            *privilege_env,
            f"ExecStart={exec_start}",
            "# Exit 1 means findings at or above fail_on are open: the scan itself worked.",
            "SuccessExitStatus=1",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            f"Description=Run the ipguard network scan every {every.text}",
            "",
            "[Timer]",
            f"OnCalendar={every.calendar}",
            "Persistent=true",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return {f"{unit}.service": service, f"{unit}.timer": timer}


SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SERVICE_USER = "ipguard"  # the README's least-privilege account


def default_unit_dir() -> Path:
    """System units for root, the user's own units otherwise."""
    if os.geteuid() == 0:
        return SYSTEM_UNIT_DIR
    return Path.home() / ".config" / "systemd" / "user"


def default_service_user() -> str:
    """Who a system service runs as: the README's `ipguard` account for root, else yourself."""
    if os.geteuid() == 0:
        return SERVICE_USER
    return me()


def home_of(user: str) -> Path:
    """The home directory of `user`, whose crontab gets the job."""
    import pwd

    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:  # a typo is bad input, not a failing crontab
        raise InvalidValue(f"--user {user!r}: there is no such user on this machine") from None


def data_dir(home: Path | None = None) -> Path:
    """ipguard's data directory: yours, or that of the user whose home is `home`.

    Cron runs a user's job with HOME set and no XDG_* variables, so that user's ipguard keeps its
    data under `home` as the XDG defaults say; root's own directory is not theirs to read.
    """
    if home is None:
        from platformdirs import user_data_dir

        return Path(user_data_dir("ipguard"))
    return home / ".local" / "share" / "ipguard"


def default_metrics_file(home: Path | None = None) -> Path:
    """node_exporter's textfile directory when it exists, else ipguard's data directory."""
    if NODE_EXPORTER_TEXTFILES.is_dir():
        return NODE_EXPORTER_TEXTFILES / "ipguard.prom"
    return data_dir(home) / "ipguard.prom"


def default_log_file(home: Path | None = None) -> Path:
    """ipguard's log directory (yours, or under `home` as for data_dir)."""
    if home is None:
        from platformdirs import user_log_dir

        return Path(user_log_dir("ipguard")) / "scan.log"
    return home / ".local" / "state" / "ipguard" / "log" / "scan.log"


def unreachable(
    user: str | None,
    *,
    runnable: Sequence[Path],
    readable: Sequence[Path],
    writable: Sequence[Path],
) -> list[str]:
    """What `user` (None: this process's user) cannot do of what its job needs: run, read or
    write these paths.

    Asked of the system as that user (its groups included) with test(1), or with access(2) for
    this process, as only the kernel knows for sure (ACLs, a home directory of mode 700, a
    read-only mount). Another user's needs root.
    """
    checks = [("-x", path, "run") for path in runnable]
    checks += [("-r", path, "read") for path in readable]
    checks += [("-w", path, "write") for path in writable]
    if user is None:
        modes = {"-x": os.X_OK, "-r": os.R_OK, "-w": os.W_OK}
        return [
            f"{verb} {path}"
            for flag, path, verb in checks
            if not os.access(
                path, modes[flag], effective_ids=os.access in os.supports_effective_ids
            )
        ]
    import pwd

    entry = pwd.getpwnam(user)
    groups = os.getgrouplist(user, entry.pw_gid)
    test = shutil.which("test", path="/usr/bin:/bin") or "/usr/bin/test"
    refused: list[str] = []
    for flag, path, verb in checks:
        try:
            done = subprocess.run(
                [test, flag, str(path)],
                user=entry.pw_uid,
                group=entry.pw_gid,
                extra_groups=groups,
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise OperationalError(f"cannot check what {user} may use: {error}") from None
        if done.returncode != 0:
            refused.append(f"{verb} {path}")
    return refused
