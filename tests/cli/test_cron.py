"""`ipguard cron …`: schedules, the real crontab of a throwaway user, and a run as cron runs it."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipguard import crontab, schedule
from ipguard.cli.main import app
from ipguard.errors import InvalidValue
from tests.conftest import Cli
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import small

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\nsite = "lab"\n'
IPGUARD = Path(sys.executable).with_name("ipguard")


@pytest.mark.parametrize(
    ("text", "cron", "calendar"),
    [
        ("15m", "*/15 * * * *", "*-*-* *:00/15:00"),
        ("1m", "* * * * *", "*-*-* *:00/1:00"),
        ("30M", "*/30 * * * *", "*-*-* *:00/30:00"),
        ("1h", "0 * * * *", "*-*-* 00/1:00:00"),
        ("6h", "0 */6 * * *", "*-*-* 00/6:00:00"),
        ("1d", "0 0 * * *", "*-*-* 00:00:00"),
    ],
)
def test_every(text: str, cron: str, calendar: str) -> None:
    every = schedule.parse_every(text)
    assert (every.cron, every.calendar) == (cron, calendar)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("7m", "minutes must divide an hour"),
        ("60m", "minutes must divide an hour"),
        ("0m", "minutes must divide an hour"),
        ("5h", "hours must divide a day"),
        ("24h", "hours must divide a day"),
        ("2d", "only 1d"),
        ("15", "like 15m, 2h or 1d"),
        ("soon", "like 15m, 2h or 1d"),
    ],
)
def test_bad_every(text: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        schedule.parse_every(text)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
@pytest.mark.parametrize("text", ["1m", "15m", "2h", "1d"])
def test_systemd_accepts_the_calendar(text: str) -> None:
    every = schedule.parse_every(text)
    done = subprocess.run(
        ["systemd-analyze", "calendar", every.calendar], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


OTHER = "MAILTO=admin@school.example\n# nightly backup\n30 2 * * * /usr/local/bin/backup\n"


def with_entry(text: str, line: str, site: str = "lab", config: str | None = None) -> str:
    return crontab.with_entry(
        text, line, site=site, config=None if config is None else Path(config)
    )


def without_all(text: str) -> tuple[str, bool]:
    kept, taken = crontab.without(text, lambda _: True)
    return kept, bool(taken)


LAB = crontab.marker("lab")


def test_the_entry_is_replaced_and_removed_alone() -> None:
    first = with_entry(OTHER, "*/15 * * * * /x/ipguard scan")
    assert first == f"{OTHER}{LAB}\n*/15 * * * * /x/ipguard scan\n"
    second = with_entry(first + "0 3 * * * /usr/bin/true\n", "0 * * * * /x/ipguard scan")
    assert second.count(crontab.MARKER) == 1
    assert second == f"{OTHER}0 3 * * * /usr/bin/true\n{LAB}\n0 * * * * /x/ipguard scan\n"
    assert crontab.entry(second) == "0 * * * * /x/ipguard scan"
    kept, found = without_all(second)
    assert found and kept == f"{OTHER}0 3 * * * /usr/bin/true\n"
    assert without_all(kept) == (kept, False)
    assert with_entry("", "x") == f"{LAB}\nx\n"
    # A marker whose job line was deleted by hand: only the marker goes, whatever follows it.
    assert without_all(f"{LAB}\n# note\n") == ("# note\n", True)
    theirs = "0 3 * * * /usr/local/bin/backup.sh --to /srv/ipguard-backup\n"
    assert without_all(f"{LAB}\n{theirs}") == (theirs, True)
    assert crontab.entry(f"{LAB}\n{theirs}") is None
    assert with_entry(f"{LAB}\n{theirs}", "x") == f"{theirs}{LAB}\nx\n"
    # Only a newline ends a line: a form feed or U+2028 in a comment stays as it was.
    odd = "# backup \x0c page\u2028two\x1c\n30 2 * * * /usr/local/bin/backup\n"
    assert without_all(with_entry(odd, "*/15 * * * * /x/ipguard scan")) == (odd, True)
    # A job of ipguard's scan written by hand, or left by deleting the marker, is no entry.
    by_hand = "*/10 * * * * /opt/ipguard/bin/ipguard --config /etc/ipguard.toml scan --quiet"
    assert crontab.unmarked_jobs(f"{OTHER}{by_hand}\n{LAB}\nx ipguard scan\n") == [by_hand]
    assert crontab.unmarked_jobs(second) == []
    # The job as `python -m ipguard` writes it is recognised too.
    python = "*/5 * * * * /usr/bin/python3 -m ipguard --db /l.db scan --quiet >> /l.log 2>&1\n"
    assert without_all(f"{OTHER}{LAB}\n{python}") == (OTHER, True)


def test_each_site_has_its_own_entry() -> None:
    # A sensor scanning two sites (two configuration files): installing the second site's job
    # replaced the first's, whose scans silently stopped.
    north = "*/15 * * * * /x/ipguard --config /etc/ipg/north.toml scan\n"
    south = "*/15 * * * * /x/ipguard --config /etc/ipg/south.toml scan\n"
    both = with_entry(with_entry(OTHER, north.strip(), "north"), south.strip(), "south")
    assert both == f"{OTHER}{crontab.marker('north')}\n{north}{crontab.marker('south')}\n{south}"
    assert [entry.site for entry in crontab.entries(both)] == ["north", "south"]
    again = with_entry(both, "0 * * * * /x/ipguard --config /etc/ipg/north.toml scan", "north")
    assert crontab.entry(again, "north") == "0 * * * * /x/ipguard --config /etc/ipg/north.toml scan"
    assert crontab.entry(again, "south") == south.strip()
    kept, taken = crontab.without(again, lambda entry: entry.site == "south")
    assert [entry.site for entry in taken] == ["south"] and "south" not in kept
    # An entry from before markers named their site is replaced by the job of its configuration
    # only.
    legacy = f"{OTHER}{crontab.MARKER}\n{north}"
    assert with_entry(legacy, "y --config /etc/ipg/north.toml scan", "north", "/etc/ipg/north.toml")
    assert with_entry(legacy, "x", "south", "/etc/ipg/south.toml") == (
        f"{legacy}{crontab.marker('south')}\nx\n"
    )
    assert with_entry(legacy, "x", "north", "/etc/ipg/north.toml") == (
        f"{OTHER}{crontab.marker('north')}\nx\n"
    )


def test_the_line_escapes_percent_and_quotes_paths(tmp_path: Path) -> None:
    argv = ["/opt/ipg/bin/ipguard", "--db", "/var/lib/ipg 1/ledger.db", "scan"]
    line = schedule.cron_line(schedule.parse_every("15m"), argv, Path("/var/log/ipg%d.log"))
    assert line == (
        "*/15 * * * * /opt/ipg/bin/ipguard --db '/var/lib/ipg 1/ledger.db' scan "
        "2>&1 >> /var/log/ipg\\%d.log | tee -a /var/log/ipg\\%d.log"
    )
    assert crontab.cron_command(line).endswith(" >> /var/log/ipg%d.log | tee -a /var/log/ipg%d.log")


def test_systemd_units() -> None:
    argv = ["/opt/ipg/bin/ipguard", "--db", "/srv/my ledger%.db", "scan", "--quiet"]
    units = schedule.systemd_units(schedule.parse_every("15m"), argv, user="ipguard")
    service, timer = units["ipguard-scan.service"], units["ipguard-scan.timer"]
    assert 'ExecStart=/opt/ipg/bin/ipguard --db "/srv/my ledger%%.db" scan --quiet' in service
    assert "Type=oneshot" in service and "SuccessExitStatus=1" in service
    # The README's least privilege: its own account, raw sockets and nothing else of root.
    assert "\nUser=ipguard\n" in service
    assert "\nAmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n" in service
    assert "\nCapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n" in service
    assert "OnCalendar=*-*-* *:00/15:00" in timer and "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer
    # A user unit runs as its owner: it may neither switch users nor grant capabilities.
    own = schedule.systemd_units(schedule.parse_every("15m"), argv, user=None)
    assert "User=" not in own["ipguard-scan.service"]
    assert "Capabilit" not in own["ipguard-scan.service"]
    assert own["ipguard-scan.timer"] == timer


@pytest.mark.parametrize("path", ["/var/log/a\nb.log", "/var/log/a\rb.log", "/srv/\x1b[2J.log"])
def test_a_control_character_cannot_split_the_entry(path: str) -> None:
    every = schedule.parse_every("15m")
    with pytest.raises(InvalidValue, match="cannot hold control characters"):
        schedule.cron_line(every, ["/x/ipguard", "scan"], Path(path))
    with pytest.raises(InvalidValue, match="cannot hold control characters"):
        schedule.systemd_units(every, ["/x/ipguard", "--db", path, "scan"], user="ipguard")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_configured_metrics_file_is_the_one_the_job_writes(cli: Cli, tmp_path: Path) -> None:
    # The job's --metrics-file was the default path whatever [scan] metrics_file said: the file
    # node_exporter was told to read was never written again.
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG.replace("[scan]\n", '[scan]\nmetrics_file = "prom/ipguard.prom"\n'))
    for extra in (["--dry-run"], ["--systemd"]):
        out = cli("--config", str(config), "cron", "install", *extra)
        assert out.exit_code == 0, out.stderr
        assert f"--metrics-file {tmp_path}/prom/ipguard.prom" in out.stdout
    given = cli("--config", str(config), "cron", "install", "--dry-run", "--metrics-file", "x.prom")
    assert f"--metrics-file {tmp_path}/x.prom" in given.stdout


def test_dry_run_shows_absolute_paths(cli: Cli, tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    out = cli(
        "--config",
        "ipguard.toml",  # relative: the entry must not be
        "cron",
        "install",
        "--dry-run",
        "--every",
        "30m",
        "--metrics-file",
        "m/ipguard.prom",
        "--log-file",
        "logs/scan.log",
        db="sqlite:///relative.db",
    )
    assert out.exit_code == 0, out.stderr
    marker, line = out.stdout.splitlines()
    assert marker == crontab.marker("lab")
    words = line.split()
    assert words[:5] == ["*/30", "*", "*", "*", "*"]
    assert words[5] in (str(IPGUARD), sys.executable)
    assert f"sqlite:///{tmp_path}/relative.db" in words
    assert str(config) in words and f"{tmp_path}/m/ipguard.prom" in words
    log = f"{tmp_path}/logs/scan.log"
    assert words[-7:] == ["2>&1", ">>", log, "|", "tee", "-a", log]
    assert "scan --quiet --metrics-file" in line
    assert not (tmp_path / "logs").exists()  # a dry run creates nothing


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_schedule_sooner_than_the_last_scan_took_is_warned_of(cli: Cli, tmp_path: Path) -> None:
    # The /16 with services took 22 minutes; `cron install --every 15m` said nothing, and every
    # second scan was refused by the site's lock (exit 3), for ever.
    from datetime import UTC, datetime, timedelta

    from ipguard.ledger import runs
    from ipguard.ledger.store import Store
    from ipguard.model import RunStatus

    (tmp_path / "ipguard.toml").write_text(CONFIG)
    install = ["--config", "ipguard.toml", "cron", "install", "--dry-run"]
    assert cli(*install).stderr == ""  # no ledger yet: nothing to say (and none made)
    assert not (tmp_path / "ledger.db").exists()
    store = Store(cli.db_url)
    start = datetime.now(UTC) - timedelta(hours=1)
    with store.session() as session:
        for site, took in (("lab", 22), ("north", 50)):
            run = runs.start(
                session, site=site, interface="eth0", subnets=["198.18.0.0/16"], settings={},
                actor="t", sensor="t", version="0", now=start,
            )  # fmt: skip
            assert run.id is not None
            runs.finish(session, run.id, RunStatus.COMPLETE, counts={},
                        now=start + timedelta(minutes=took))  # fmt: skip
    store.close()
    out = cli(*install)
    assert out.exit_code == 0
    assert out.stderr == (
        "warning: the last scan of site lab took 22 min, every 15m is sooner: each scan started "
        "while the one before still runs is refused by the site's lock (exit 3, mailed each "
        "time); try --every 30m\n"
    )
    assert cli(*install, "--every", "30m").stderr == ""


def test_secrets_in_the_ledger_url_are_masked(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    url = "postgresql+psycopg://ipguard:pg-S3cret@127.0.0.1:1/ledger"
    dry_write = ["--systemd", "--write", "--dry-run", "--service-user", "nobody"]
    for extra in (["--dry-run"], ["--systemd"], [*dry_write, "--unit-dir", "units"]):
        out = cli("--config", "ipguard.toml", "cron", "install", *extra, db=url)
        assert out.exit_code == 0, out.stderr
        assert "pg-S3cret" not in out.stdout + out.stderr
        assert "ipguard:***@127.0.0.1:1/ledger" in out.stdout
        assert "the database password is masked" in out.stderr
    assert not (tmp_path / "units").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_systemd_service_names_no_ledger_password(cli: Cli, tmp_path: Path) -> None:
    # The unit's ExecStart= held `--db postgresql+psycopg://ipguard:PASSWORD@…`: the file was
    # mode 600, but every local user reads ExecStart= with `systemctl show` (and in ps while
    # the scan runs). The password now reaches the scan from an EnvironmentFile= of mode 600.
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    url = "postgresql+psycopg://ipguard:pg-S3cret%$@127.0.0.1:1/ledger"
    out = cli(*systemd_write(tmp_path), db=url)
    assert out.exit_code == 0, out.stderr
    units = tmp_path / "units"
    service = (units / "ipguard-scan.service").read_text()
    assert "S3cret" not in service and "--db" not in service
    assert f"\nEnvironmentFile={units}/ipguard-scan.env\n" in service
    assert (units / "ipguard-scan.env").read_text() == f"IPGUARD_DB='{url}'\n"
    modes = {path.name: path.stat().st_mode & 0o777 for path in units.iterdir()}
    assert modes == {"ipguard-scan.service": 0o644, "ipguard-scan.timer": 0o644,
                     "ipguard-scan.env": 0o600}  # fmt: skip
    assert "S3cret" not in out.stdout + out.stderr
    if shutil.which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", "ipguard-scan.service"], cwd=units,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        remarks = [line for line in done.stderr.splitlines() if "Special user nobody" not in line]
        assert (done.returncode, remarks) == (0, []), done.stderr
    printed = cli("--config", "ipguard.toml", "cron", "install", "--systemd", db=url)
    assert "# ipguard-scan.env\nIPGUARD_DB='postgresql+psycopg://ipguard:***@" in printed.stdout
    assert "EnvironmentFile=/etc/systemd/system/ipguard-scan.env" in printed.stdout
    assert "S3cret" not in printed.stdout + printed.stderr


def systemd_write(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--config", "ipguard.toml", "cron", "install", "--systemd", "--write",
        "--unit-dir", str(tmp_path / "units"), "--service-user", "nobody", "--every", "2h",
        "--metrics-file", str(tmp_path / "metrics" / "ipguard.prom"), *extra,
    ]  # fmt: skip


def test_systemd_units_written(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    units = tmp_path / "units"
    out = cli(*systemd_write(tmp_path))
    assert out.exit_code == 0, out.stderr
    assert sorted(path.name for path in units.iterdir()) == [
        "ipguard-scan.service",
        "ipguard-scan.timer",
    ]
    assert "OnCalendar=*-*-* 00/2:00:00" in (units / "ipguard-scan.timer").read_text()
    assert "\nUser=nobody\n" in (units / "ipguard-scan.service").read_text()
    if os.geteuid() == 0:  # root writes system units
        assert "systemctl daemon-reload && systemctl enable --now ipguard-scan.timer" in out.stderr
        assert (tmp_path / "metrics").stat().st_uid == 65534  # nobody writes its metrics there
    else:
        assert "systemctl --user enable --now ipguard-scan.timer" in out.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_units_of_a_second_site_do_not_replace_the_first_sites(
    cli: Cli, tmp_path: Path
) -> None:
    # `ipguard --config south.toml cron install --systemd --write` on the sensor that scans
    # north: south's units were written over north's (both ipguard-scan), and north's scans
    # stopped without a word.
    units = tmp_path / "units"
    for site in ("north", "south", "odd site/€"):
        (tmp_path / f"{site[:5]}.toml").write_text(CONFIG.replace('"lab"', json.dumps(site)))
    install = [*systemd_write(tmp_path)[2:]]
    assert cli("--config", "north.toml", *install).exit_code == 0
    north = (units / "ipguard-scan.service").read_text()
    assert schedule.unit_config(north) == str(tmp_path / "north.toml")
    again = cli("--config", "north.toml", *install, "--every", "1h")  # its own: replaced
    assert again.exit_code == 0, again.stderr
    north = (units / "ipguard-scan.service").read_text()
    for dry in ([], ["--dry-run"]):
        out = cli("--config", "south.toml", *install, *dry)
        assert (out.exit_code, out.stdout) == (2, "")
        assert out.stderr == (
            f"error: {units}/ipguard-scan.service runs the scan of another configuration "
            f"({tmp_path}/north.toml); give the units of site south a name of their own: "
            "--unit ipguard-scan-south\n"
        )
    assert (units / "ipguard-scan.service").read_text() == north
    out = cli("--config", "south.toml", *install, "--unit", "ipguard-scan-south")
    assert out.exit_code == 0, out.stderr
    assert (
        "systemctl daemon-reload && systemctl enable --now ipguard-scan-south.timer" in (out.stderr)
        or os.geteuid() != 0
    )
    assert sorted(path.name for path in units.iterdir()) == [
        "ipguard-scan-south.service", "ipguard-scan-south.timer",
        "ipguard-scan.service", "ipguard-scan.timer",
    ]  # fmt: skip
    assert schedule.unit_config((units / "ipguard-scan-south.service").read_text()) == str(
        tmp_path / "south.toml"
    )
    odd = cli("--config", "odd s.toml", *install)
    assert odd.stderr.endswith(
        "site odd site/€ a name of their own: --unit ipguard-scan-odd-site\n"
    )


def test_units_that_cannot_be_written_are_one_error_line_and_none_is_left(
    cli: Cli, tmp_path: Path
) -> None:
    # A failing write was a FileNotFoundError/PermissionError traceback, after the service had
    # been written without its timer.
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    units = tmp_path / "units"
    (units / "ipguard-scan.timer").mkdir(parents=True)  # in the way of the timer
    out = cli(*systemd_write(tmp_path))
    assert (out.exit_code, out.stderr) == (
        2,
        f"error: cannot write {units}/ipguard-scan.timer: Is a directory\n",
    )
    assert [path.name for path in units.iterdir()] == ["ipguard-scan.timer"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_accepts_the_written_units(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    assert cli(*systemd_write(tmp_path)).exit_code == 0
    units = tmp_path / "units"
    done = subprocess.run(
        ["systemd-analyze", "verify", "ipguard-scan.service", "ipguard-scan.timer"],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Its only remark is on the account the test chose; no unknown or invalid setting.
    assert "Special user nobody" in done.stderr
    remarks = [line for line in done.stderr.splitlines() if "Special user nobody" not in line]
    assert remarks == [], done.stderr


def test_systemd_dry_run_writes_nothing_and_prints_the_files_byte_for_byte(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    units = tmp_path / "units"
    dry = cli(*systemd_write(tmp_path, "--dry-run"))
    assert dry.exit_code == 0, dry.stderr
    assert not units.exists() and not (tmp_path / "metrics").exists()
    assert "dry run: nothing was written" in dry.stderr
    written = cli(*systemd_write(tmp_path))
    assert written.exit_code == 0, written.stderr
    files = [units / "ipguard-scan.service", units / "ipguard-scan.timer"]
    assert dry.stdout == "".join(f"# {path}\n{path.read_text()}" for path in files)
    assert (units / "ipguard-scan.service").read_text().count("\nExecStart=/") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--systemd", "--user", "x"], "error: --user is for cron: a systemd service runs as"),
        (["--systemd", "--log-file", "l"], "error: --log-file is for cron: a systemd service logs"),
        (["--systemd", "--unit-dir", "u"], "error: --unit-dir needs --systemd --write"),
        (["--write"], "error: --write is for --systemd only"),
        (["--unit-dir", "u"], "error: --unit-dir is for --systemd only"),
        (["--service-user", "nobody"], "error: --service-user is for --systemd only"),
        (["--unit", "ipguard-scan-north"], "error: --unit is for --systemd only"),
        (["--systemd", "--unit", "scan@x.service"], "error: --unit 'scan@x.service': a unit"),
    ],
)
def test_options_that_do_not_apply_are_refused(
    cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    out = cli("--config", "ipguard.toml", "cron", "install", *args)
    assert (out.exit_code, out.stdout) == (2, "")
    assert out.stderr.startswith(message), out.stderr
    assert {path.name for path in tmp_path.iterdir()} <= {"ipguard.toml", "ledger.db"}


def test_a_service_user_that_does_not_exist_is_refused(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    args = systemd_write(tmp_path)
    args[args.index("nobody")] = "no-such-user-ipg"
    out = cli(*args)
    if os.geteuid() != 0:
        assert (out.exit_code, out.stderr) == (
            2,
            "error: --service-user needs root: a user unit runs as you\n",
        )
        return
    assert out.exit_code == 2
    assert out.stderr.startswith("error: --service-user 'no-such-user-ipg': no such user")
    assert not (tmp_path / "units").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "7m"], "error: --every '7m': minutes must divide an hour"),
        ([], "error: a scheduled scan needs a configuration file"),
    ],
)
def test_install_refuses(cli: Cli, args: list[str], message: str) -> None:
    out = cli("cron", "install", "--dry-run", *args)
    assert out.exit_code == 2 and out.stderr.startswith(message)


def test_a_broken_configuration_is_refused_now(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text("[scan]\nrate = -1\n")
    out = cli("--config", "ipguard.toml", "cron", "install", "--dry-run")
    assert out.exit_code == 2 and "scan.rate" in out.stderr


@pytest.fixture
def cron_user() -> Iterator[str]:
    """A throwaway system user whose crontab the test may change (needs root and cron)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("crontab"):
        pytest.skip("needs root, useradd and crontab (apt-get install cron)")
    name = f"ipgcron{secrets.token_hex(3)}"
    # Its home (mode 700, as useradd makes one) holds what its job uses: the job runs as it.
    home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", str(home),
         "--shell", "/usr/sbin/nologin", name],
        check=True,
    )  # fmt: skip
    try:
        shutil.chown(home, name, name)
        yield name
    finally:
        subprocess.run(["crontab", "-u", name, "-r"], capture_output=True)
        subprocess.run(["userdel", name], check=True)
        shutil.rmtree(home)


def home_of(user: str) -> Path:
    """The user's home directory, as the system has it."""
    return Path(pwd.getpwnam(user).pw_dir)


def own_ledger(cli: Cli, user: str) -> str:
    """The fixture's ledger, or for SQLite one in the user's home: the job runs as that user."""
    if cli.db_url.startswith("postgresql"):
        return cli.db_url
    return f"sqlite:///{home_of(user) / 'ledger.db'}"


def crontab_of(user: str) -> str:
    done = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def install_args(home: Path, user: str, every: str = "15m") -> list[str]:
    (home / "ipguard.toml").write_text(CONFIG)
    return [
        "--config", str(home / "ipguard.toml"), "cron", "install", "--user", user,
        "--every", every, "--metrics-file", str(home / "metrics" / "ipguard.prom"),
        "--log-file", str(home / "log" / "scan.log"),
    ]  # fmt: skip


def test_install_replace_and_remove_in_a_real_crontab(cli: Cli, cron_user: str) -> None:
    home, db = home_of(cron_user), own_ledger(cli, cron_user)
    subprocess.run(["crontab", "-u", cron_user, "-"], input=OTHER, text=True, check=True)

    out = cli(*install_args(home, cron_user), db=db)
    assert out.exit_code == 0, out.stderr
    installed = crontab_of(cron_user)
    assert installed.startswith(OTHER) and installed.count(crontab.MARKER) == 1
    line = crontab.entry(installed)
    assert line is not None and line.startswith("*/15 * * * * /")
    assert f"in {cron_user}'s crontab for site lab (every 15m)" in out.stderr
    assert (home / "log").is_dir() and (home / "metrics").is_dir()

    assert cli(*install_args(home, cron_user, "1h"), db=db).exit_code == 0
    replaced = crontab_of(cron_user)
    # Its marker deleted by hand: installing again adds an entry beside the job left, and says
    # so (two scans at once, one refused by the lock at every run).
    orphan = replaced.replace(crontab.marker("lab") + "\n", "")
    subprocess.run(["crontab", "-u", cron_user, "-"], input=orphan, text=True, check=True)
    out = cli(*install_args(home, cron_user, "1h"), db=db)
    assert out.exit_code == 0
    left = crontab.entry(replaced) or ""
    assert (
        f"warning: {cron_user}'s crontab also runs an ipguard scan that `cron install` did "
        f"not write (by hand, or its marker line deleted): {left!r}; two scans" in out.stderr
    )
    subprocess.run(["crontab", "-u", cron_user, "-"], input=replaced, text=True, check=True)
    assert replaced.count(crontab.MARKER) == 1 and replaced.startswith(OTHER)
    assert (crontab.entry(replaced) or "").startswith("0 * * * * /")

    out = cli("cron", "remove", "--user", cron_user)
    assert out.exit_code == 0 and "removed ipguard's entry" in out.stderr
    assert crontab_of(cron_user) == OTHER
    out = cli("cron", "remove", "--user", cron_user)
    assert out.exit_code == 0 and "nothing changed" in out.stderr
    assert crontab_of(cron_user) == OTHER


def test_two_sites_on_one_sensor_each_keep_their_scan(cli: Cli, cron_user: str) -> None:
    # `ipguard --config north.toml cron install`, then the same for south.toml: the second
    # replaced the first (one marker for every site), and north was never scanned again; both
    # jobs also wrote one metrics file, each scan replacing the other site's metrics.
    home, db = home_of(cron_user), own_ledger(cli, cron_user)
    subprocess.run(["crontab", "-u", cron_user, "-"], input=OTHER, text=True, check=True)
    args = {}
    for site in ("north", "south"):
        config = home / f"{site}.toml"
        config.write_text(CONFIG.replace('site = "lab"', f'site = "{site}"'))
        args[site] = install_args(home, cron_user)
        args[site][1] = str(config)
    assert cli(*args["north"], db=db).exit_code == 0
    shared = cli(*args["south"], db=db)
    assert shared.exit_code == 2
    assert shared.stderr == (
        f"error: the job of site north already writes {home}/metrics/ipguard.prom, and each scan "
        "replaces the file with its own site's metrics: give site south a file of its own "
        f"(--metrics-file {home}/metrics/ipguard-south.prom)\n"
    )
    south = args["south"]
    south[south.index("--metrics-file") + 1] = str(home / "metrics" / "ipguard-south.prom")
    out = cli(*south, db=db)
    assert out.exit_code == 0, out.stderr
    assert f"installed in {cron_user}'s crontab for site south (every 15m)" in out.stderr
    both = crontab_of(cron_user)
    assert both.startswith(OTHER) and both.count(crontab.MARKER) == 2
    assert f"{home}/north.toml scan" in (crontab.entry(both, "north") or "")
    assert f"{home}/south.toml scan" in (crontab.entry(both, "south") or "")
    assert cli(*args["north"], "--every", "1h", db=db).exit_code == 0  # replaces north's only
    again = crontab_of(cron_user)
    assert (crontab.entry(again, "north") or "").startswith("0 * * * * ")
    assert crontab.entry(again, "south") == crontab.entry(both, "south")

    out = cli("cron", "remove", "--user", cron_user)
    assert out.exit_code == 2 and out.stderr == (
        "error: the crontab holds ipguard's scans of sites north, south: name the one to "
        "remove with --site\n"
    )
    # Each site's scans wrote its metrics file; removing a site's job removes its file, which
    # node_exporter went on exporting for ever, the site as it stood at its last scan.
    prom = {site: home / "metrics" / f"ipguard{suffix}.prom" for site, suffix in
            (("north", ""), ("south", "-south"))}  # fmt: skip
    for path in prom.values():
        path.write_text("ipguard_scan_success 1\n")
    out = cli("cron", "remove", "--user", cron_user, "--site", "north")
    assert out.exit_code == 0 and out.stderr == (
        "removed ipguard's entry (site north) from the crontab\n"
        f"removed its metrics file {prom['north']}: nothing exports that site's figures any more\n"
    )
    assert not prom["north"].exists() and prom["south"].exists()
    assert crontab.entry(crontab_of(cron_user), "north") is None
    assert crontab.entry(crontab_of(cron_user), "south") == crontab.entry(both, "south")
    assert cli("cron", "remove", "--user", cron_user).exit_code == 0  # the only one left
    assert crontab_of(cron_user) == OTHER and not prom["south"].exists()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_ledger_password_is_no_argument_of_the_scheduled_scan(
    cli: Cli, cron_user: str, db_url: str
) -> None:
    # The job ran `ipguard --db postgresql+psycopg://ipguard:PASSWORD@… scan`: every local
    # user could read the password in `ps` (/proc/PID/cmdline) at every scan. Now it reaches the
    # scan in IPGUARD_DB (a process's environment is its owner's to read), and `exec` puts the
    # scan in place of cron's shell, whose own arguments are the whole line.
    home = home_of(cron_user)
    secret = "pg-S3cret%x"  # the server trusts local connections: the password goes unchecked
    url = db_url.replace("://postgres@", f"://postgres:{secret}@")
    out = cli(*install_args(home, cron_user), db=url)
    assert out.exit_code == 0, out.stderr
    assert secret not in out.stderr and "the database password" not in out.stderr
    command = crontab.cron_command(crontab.entry(crontab_of(cron_user)) or "")
    words = shlex.split(command)
    assert words[:4] == [f"IPGUARD_DB={url}", "exec", "/bin/sh", "-c"] and len(words) == 5
    assert secret not in words[4] and "--db" not in shlex.split(words[4])
    # The line works as cron's shell runs it: the ledger it names is the one the command reads
    # (`runs list` in place of the scan, which would probe the network from here).
    log = f"{home}/log/scan.log"
    scan = f" scan --quiet --metrics-file {home}/metrics/ipguard.prom 2>&1 >> {log} | tee -a {log}"
    assert words[4].endswith(scan)
    listing = words[4].removesuffix(scan) + f" runs list --format json 2>&1 >> {log}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C"}
    as_cron = f"IPGUARD_DB={shlex.quote(url)} exec /bin/sh -c {shlex.quote(listing)}"
    done = subprocess.run(
        ["sh", "-c", as_cron], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert Path(log).read_text() == "[]\n"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_crontab_in_another_encoding_is_kept_byte_for_byte(cli: Cli, cron_user: str) -> None:
    # A Latin-1 comment in the user's crontab: install and remove stopped with a
    # UnicodeDecodeError traceback.
    home, db = home_of(cron_user), own_ledger(cli, cron_user)
    theirs = b"# sauvegarde \xe9crite la nuit\n30 2 * * * /usr/local/bin/backup\n"
    subprocess.run(["crontab", "-u", cron_user, "-"], input=theirs, check=True)
    out = cli(*install_args(home, cron_user), db=db)
    assert out.exit_code == 0, out.stderr
    listed = subprocess.run(["crontab", "-u", cron_user, "-l"], capture_output=True, check=True)
    assert listed.stdout.startswith(theirs) and crontab.MARKER.encode() in listed.stdout
    assert cli("cron", "remove", "--user", cron_user).exit_code == 0
    listed = subprocess.run(["crontab", "-u", cron_user, "-l"], capture_output=True, check=True)
    assert listed.stdout == theirs


def test_the_dry_run_line_is_the_installed_line_byte_for_byte(cli: Cli, cron_user: str) -> None:
    """Even with a `%` in a path, which cron would otherwise take for the end of the command."""
    home, db = home_of(cron_user), own_ledger(cli, cron_user)
    args = install_args(home, cron_user)
    args[args.index(str(home / "log" / "scan.log"))] = str(home / "log%d" / "scan.log")
    dry = cli(*args, "--dry-run", db=db)
    assert dry.exit_code == 0, dry.stderr
    assert crontab_of(cron_user) == "" and not (home / "log%d").exists()
    out = cli(*args, db=db)
    assert out.exit_code == 0, out.stderr
    line = crontab.entry(crontab_of(cron_user))
    assert line is not None and "/log\\%d/scan.log" in line
    assert dry.stdout == f"{LAB}\n{line}\n"
    assert crontab.cron_command(line).endswith(
        f">> {home}/log%d/scan.log | tee -a {home}/log%d/scan.log"
    )
    # The confirmation shows the line on a line of its own, not after a literal "\n".
    assert "\\n" not in out.stderr
    told = [line for line in out.stderr.splitlines() if not line.startswith("warning: ")]
    assert told[:2] == [
        f"installed in {cron_user}'s crontab for site lab (every 15m):",
        line,
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the default ledger is SQLite
def test_root_installing_for_a_user_uses_that_users_paths(cli: Cli, cron_user: str) -> None:
    # `sudo ipguard cron install --user ipguard` put root's own ledger, metrics file and log
    # (/root/.local/...) into the ipguard user's job: every run failed, into a log it could not
    # open, and the directories it made were root's.
    home = home_of(cron_user)
    (home / "ipguard.toml").write_text(CONFIG)
    args = ["--config", str(home / "ipguard.toml"), "cron", "install", "--user", cron_user]
    runner = CliRunner()
    env = {"IPGUARD_DB": None, "XDG_DATA_HOME": None, "XDG_STATE_HOME": None}
    done = runner.invoke(app, args, env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    command = crontab.cron_command(crontab.entry(crontab_of(cron_user)) or "")
    data, state = home / ".local" / "share" / "ipguard", home / ".local" / "state" / "ipguard"
    assert f"--db sqlite:///{data}/ledger.db " in command
    assert f"--metrics-file {data}/ipguard.prom" in command
    assert command.endswith(f">> {state}/log/scan.log | tee -a {state}/log/scan.log")
    uid = pwd.getpwnam(cron_user).pw_uid
    for made in (home / ".local", data, state, state / "log"):
        assert made.stat().st_uid == uid, made
    # Whether the user may run this very interpreter is the machine's (a venv whose python links
    # into root's home cannot be run by anyone else): said, the entry installed all the same.
    runnable = subprocess.run(["runuser", "-u", cron_user, "--", "test", "-x", sys.executable])
    warned = f"warning: the job runs as {cron_user}, who cannot run {sys.executable}"
    assert (warned in done.stderr) == (runnable.returncode != 0), done.stderr

    # A configuration the user cannot read (root's own, in a directory of mode 700) is refused:
    # the job could never run.
    private = Path(tempfile.mkdtemp(prefix="ipg-root-only-"))
    try:
        (private / "ipguard.toml").write_text(CONFIG)
        args[1] = str(private / "ipguard.toml")
        refused = runner.invoke(app, args, env=env, catch_exceptions=False)
        assert refused.exit_code == 2
        assert refused.stderr == (
            f"error: --user {cron_user}: the job would run as {cron_user}, who cannot read "
            f"{private}/ipguard.toml; give paths {cron_user} may use (--config, --db, "
            "--metrics-file, --log-file)\n"
        )
        assert str(private) not in crontab_of(cron_user)
    finally:
        shutil.rmtree(private)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_user_without_a_home_gets_no_default_paths(cli: Cli, cron_user: str) -> None:
    # A system user made without a home (`useradd --system`, nobody's /nonexistent): the
    # defaults under its home made that directory, as root, for an account meant to have none.
    home = home_of(cron_user)
    config = home.parent / f"{home.name}.toml"
    config.write_text(CONFIG)
    shutil.rmtree(home)
    try:
        env = {"IPGUARD_DB": None, "XDG_DATA_HOME": None, "XDG_STATE_HOME": None}
        args = ["--config", str(config), "cron", "install", "--user", cron_user]
        refused = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
        assert refused.exit_code == 2
        assert refused.stderr.startswith(
            f"error: --user {cron_user}: its home directory {home} does not exist, and the "
            f"job's {home}/.local/share/ipguard/ipguard.prom, "
        )
        assert not home.exists() and crontab_of(cron_user) == ""
    finally:
        config.unlink()
        home.mkdir(exist_ok=True)  # for the fixture to remove


def test_an_unknown_user_is_an_error(cli: Cli, tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("crontab"):
        pytest.skip("needs root and crontab")
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    out = cli("cron", "remove", "--user", "no-such-user-ipg")
    # A typo in a user name is bad input (issue 12), not a failing crontab.
    assert out.exit_code == 2 and out.stderr.startswith("error: --user 'no-such-user-ipg'")


@requires_lab("nmap", "crontab", "useradd", "setsid")
def test_the_installed_line_scans_the_lab_as_cron_would(
    lab_factory: LabFactory, cron_user: str, tmp_path: Path
) -> None:
    """The command taken from the crontab runs with cron's environment in the lab's scanner."""
    lab = lab_factory(small())
    home = home_of(cron_user)  # the job's files are where its user may use them
    config = lab.write_config(home / "ipguard.toml")
    # A webhook nothing answers at, inside the scanner's namespace: its warning is for cron's mail.
    config.write_text(config.read_text() + '\n[alerts]\nurls = ["json://127.0.0.1:9/hook"]\n')
    ledger = lab.write_ledger_csv(tmp_path / "ledger.csv")
    db = home / "ledger.db"
    metrics = home / "metrics" / "ipguard.prom"
    log = home / "log" / "scan.log"

    def ipguard(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "IPGUARD_ACTOR": "tester"}
        return subprocess.run([str(IPGUARD), "--db", str(db), *args], capture_output=True,
                              text=True, env=env, timeout=120)  # fmt: skip

    assert ipguard("ledger", "import", str(ledger)).returncode == 0
    for made in home.glob("ledger.db*"):  # the ledger is the job's user's to write
        shutil.chown(made, cron_user, cron_user)
    installed = ipguard(
        "--config", str(config), "cron", "install", "--user", cron_user, "--every", "15m",
        "--metrics-file", str(metrics), "--log-file", str(log),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    line = crontab.entry(crontab_of(cron_user))
    assert line is not None
    command = crontab.cron_command(line)

    cron_env = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/root", "LOGNAME=root", "SHELL=/bin/sh"]
    done = subprocess.run(
        ["ip", "netns", "exec", lab.scanner_ns, *cron_env, "setsid", "sh", "-c", command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # What the scan said on standard error reaches cron's mail and the log alike: before, it
    # went to the log only, and the warnings the README says cron mails were never mailed.
    warning = "warning: alert to json://127.0.0.1:9/hook failed; the scan itself is unaffected\n"
    assert (done.stdout, done.stderr) == (warning, ""), log.read_text() if log.exists() else ""
    assert log.read_text() == warning
    text = metrics.read_text()
    assert 'ipguard_scan_success{site="lab"} 1' in text
    assert 'ipguard_run_status{site="lab",status="complete"} 1' in text
    runs = json.loads(ipguard("runs", "list", "--format", "json").stdout)
    assert [(run["status"], run["hosts_seen"]) for run in runs] == [("complete", 3)]
    assert "unregistered-host" in json.dumps(
        json.loads(ipguard("findings", "list", "--format", "json").stdout)
    )


def as_user(user: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ipguard ARGS…` run by `user` itself (not root), from a system interpreter it may run with
    this checkout and its dependencies on the path (this venv's interpreter may link into
    root's home), as `sudo -u ipguard ipguard cron install` in the README."""
    system_python = Path("/usr/bin/python3.11")
    if not system_python.exists() or not shutil.which("runuser"):
        pytest.skip("needs runuser and a system python3.11")
    deps = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    checkout = Path(__file__).resolve().parents[2]
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", "LANG=C",
           f"PYTHONPATH={deps}:{checkout}"]  # fmt: skip
    return subprocess.run(
        ["runuser", "-u", user, "--", *env, str(system_python), "-m", "ipguard", *args],
        capture_output=True,
        text=True,
        cwd=home,
        timeout=120,
    )


def test_a_user_installing_its_own_job_is_refused_paths_it_cannot_write(cron_user: str) -> None:
    # `sudo -u ipguard ipguard cron install --log-file /var/log/ipguard-scan.log`: installed,
    # and at every run cron's shell could not open the log, so the scan never started at all
    # (and whatever cron mailed went to a local mailbox). Only root installing for --user
    # was checked.
    home = home_of(cron_user)
    (home / "ipguard.toml").write_text(CONFIG)
    shutil.chown(home / "ipguard.toml", cron_user, cron_user)
    roots = Path(tempfile.mkdtemp(prefix="ipg-roots-"))  # root's, as /var/log is
    try:
        roots.chmod(0o755)
        base = ["--db", f"sqlite:///{home}/ledger.db", "--config", f"{home}/ipguard.toml",
                "cron", "install"]  # fmt: skip
        done = as_user(cron_user, home, *base, "--log-file", f"{roots}/scan.log")
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"error: the job would run as you ({cron_user}), who cannot write {roots}; give "
            "paths you may use (--config, --db, --metrics-file, --log-file)\n"
        )
        assert crontab_of(cron_user) == ""
        # A log file root made there before (a first run by hand, as root) cannot be appended to.
        (home / "log").mkdir()
        shutil.chown(home / "log", cron_user, cron_user)
        (home / "log" / "scan.log").write_text("")
        done = as_user(cron_user, home, *base, "--log-file", f"{home}/log/scan.log")
        assert done.returncode == 2 and f"cannot write {home}/log/scan.log;" in done.stderr
        assert crontab_of(cron_user) == ""
        shutil.chown(home / "log" / "scan.log", cron_user, cron_user)
        done = as_user(cron_user, home, *base, "--log-file", f"{home}/log/scan.log")
        assert done.returncode == 0, done.stderr
        assert "installed in your crontab for site lab (every 15m)" in done.stderr
        assert crontab.entry(crontab_of(cron_user)) is not None
    finally:
        shutil.rmtree(roots)


def test_a_users_own_timer_says_it_needs_lingering(cron_user: str) -> None:
    # `sudo -u ipguard ipguard cron install --systemd --write` wrote a user timer and said to
    # enable it; but a user's systemd runs only while that user is logged in (a system account
    # never is), so the timer never fired, and nothing said so.
    home = home_of(cron_user)
    (home / "ipguard.toml").write_text(CONFIG)
    shutil.chown(home / "ipguard.toml", cron_user, cron_user)
    done = as_user(
        cron_user, home, "--db", f"sqlite:///{home}/ledger.db", "--config",
        f"{home}/ipguard.toml", "cron", "install", "--systemd", "--write",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (home / ".config" / "systemd" / "user" / "ipguard-scan.timer").is_file()
    assert done.stderr.splitlines()[-1] == (
        f"warning: a user's timer runs only while {cron_user} is logged in: `sudo loginctl "
        f"enable-linger {cron_user}` keeps it running (or, as root, write a system service: "
        "sudo ipguard cron install --systemd --write)"
    )
