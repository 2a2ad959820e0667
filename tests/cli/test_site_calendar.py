"""`[policy] timezone` is read from each machine's configuration: the sensors of one site that
judge days in different zones are told so by the scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fakes import FakeScanner, result

SCAN = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\nsite = "north"\n'


def test_a_sensor_judging_the_sites_days_in_another_zone_is_warned(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The site's sensor in Shanghai was replaced by a server whose clock is UTC (the usual for a
    # server), `[policy] timezone` left at "" (this machine's zone): from then on every guest
    # expired at 08:00 instead of midnight, and acknowledgements ended 8 hours late, without a word.
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.setenv("TZ", "UTC")
    cli = Cli(sqlite_url)
    cli.scanner = FakeScanner([result(("198.18.0.10", "02:00:00:00:00:10"))])
    shanghai, machine = tmp_path / "shanghai.toml", tmp_path / "machine.toml"
    shanghai.write_text(SCAN + '[policy]\ntimezone = "Asia/Shanghai"\n')
    machine.write_text(SCAN + '[policy]\ntimezone = ""\n')

    def scan(config: Path) -> str:
        done = cli("--config", str(config), "scan", "--quiet", "--no-services")
        assert done.exit_code == 1, done.stderr  # the unregistered host
        return done.stderr

    assert scan(shanghai) == "" and scan(shanghai) == ""
    report = ["report", "--format", "json"]
    assert cli("--config", str(shanghai), *report).stderr == ""
    filed = cli("--config", str(machine), *report)  # the reporting machine, in UTC
    assert filed.exit_code == 0 and filed.stderr == (
        "warning: this report's days are UTC's, but site north judges them in Asia/Shanghai "
        "(run 2): set the same [policy] timezone on this machine\n"
    )
    warned = scan(machine)
    assert warned.startswith("warning: run 3 judged days in UTC, the site's run 2 (sensor ")
    assert "in Asia/Shanghai" in warned and "same [policy] timezone" in warned
    assert scan(machine) == ""  # said once: the site's last scan is this zone's now
    shown = cli("runs", "show", "4", "--format", "json")
    assert '"timezone": "UTC"' in shown.stdout


@pytest.mark.parametrize(
    ("tz", "since"),
    [
        ("CET-1CEST,M3.5.0,M10.5.0/3", "2026-06-30T22:00:00Z"),  # summer time: UTC+2
        ("EST5EDT,M3.2.0,M11.1.0", "2026-07-01T04:00:00Z"),  # summer time: UTC-4
        ("CET-1CEST", "2026-06-30T23:00:00Z"),  # no rule: the standard offset
        ("CST-8", "2026-06-30T16:00:00Z"),
    ],
)
def test_a_posix_tz_with_a_summer_time_rule_follows_it(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tz: str, since: str
) -> None:
    # busybox, OpenWrt and many container images set TZ as a POSIX string with its rule, and
    # `date` and cron follow the rule: ipguard kept the standard offset all year, so in summer
    # every local time was an hour off and a report's July began at 01:00 on 1 July.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", tz)
    out = Cli(sqlite_url)("report", "--month", "2026-07", "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["since"] == since


def test_the_first_and_last_days_a_calendar_holds(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In Shanghai, 1 January of the year 1 begins before the first instant Python holds, and the
    # day after 9999-12-31 is none: `--changed-since 0001-01-01` ("everything"), a report from
    # then and `findings ack --until 9999-12-31` ("for ever") died on an OverflowError traceback.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    (tmp_path / "ipguard.toml").write_text('[policy]\ntimezone = "Asia/Shanghai"\n')
    cli = Cli(sqlite_url)
    assert cli("ledger", "add", "198.18.0.10", "02:00:00:00:00:10").exit_code == 0
    exported = cli("ledger", "export", "changed.xlsx", "--changed-since", "0001-01-01")
    assert exported.exit_code == 0 and "exported 1 records" in exported.stderr
    report = cli("report", "--since", "0001-01-01", "--until", "0001-01-02", "--format", "json")
    assert report.exit_code == 0, report.stderr
    assert json.loads(report.stdout)["since"] == "0001-01-01T00:00:00Z"
    forever = cli("findings", "ack", "1", "--note", "for ever", "--until", "9999-12-31")
    assert (forever.exit_code, forever.stderr) == (
        2,
        "error: --until '9999-12-31': give a date before 9999\n",
    )
