"""`[policy] timezone`: the days people give and read are the administrators' own.

A school in Shanghai (UTC+8) files the November report for its November: 1 November 00:00 to
1 December 00:00 there, 16:00 UTC on 31 October to 16:00 UTC on 30 November. JSON and CSV keep
UTC instants; what a person reads is local, with the offset shown. Real ledgers (SQLite and
PostgreSQL), history written at chosen instants.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ipguard.ledger.store import Store
from ipguard.model import FindingKind, Severity
from tests.conftest import Cli
from tests.reports.history import add_run, finding

STRANGER = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.66")


def zone_config(tmp_path: Path, zone: str) -> None:
    """The ipguard.toml the CLI finds in its working directory (the test's tmp_path)."""
    (tmp_path / "ipguard.toml").write_text(f'[policy]\ntimezone = "{zone}"\n')


@pytest.fixture
def around_november(db_url: str) -> str:
    """Runs in the last and first seconds of November, as Shanghai and UTC count them."""
    store = Store(db_url)
    for started in (
        datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC),  # 31 Oct 23:59:59 in Shanghai
        datetime(2026, 10, 31, 16, 0, tzinfo=UTC),  # 1 Nov 00:00 in Shanghai
        datetime(2026, 11, 1, 0, 0, tzinfo=UTC),  # 1 Nov 00:00 UTC
        datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC),  # 30 Nov 23:59:59 in Shanghai
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),  # 1 Dec 00:00 in Shanghai
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),  # 30 Nov 23:59:59 UTC
    ):
        add_run(store, started, found=[STRANGER])
    store.close()
    return db_url


@pytest.mark.parametrize(
    ("zone", "since", "until", "starts"),
    [
        (
            "Asia/Shanghai",
            "2026-10-31T16:00:00Z",
            "2026-11-30T16:00:00Z",
            ["2026-10-31T16:00:00Z", "2026-11-01T00:00:00Z", "2026-11-30T15:59:59Z"],
        ),
        (
            "UTC",
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
            [
                "2026-11-01T00:00:00Z",
                "2026-11-30T15:59:59Z",
                "2026-11-30T16:00:00Z",
                "2026-11-30T23:59:59Z",
            ],
        ),
    ],
)
def test_a_report_month_is_the_local_month(
    cli: Cli,
    around_november: str,
    tmp_path: Path,
    zone: str,
    since: str,
    until: str,
    starts: list[str],
) -> None:
    zone_config(tmp_path, zone)
    out = cli("report", "--month", "2026-11", "--format", "json")
    assert out.exit_code == 0, out.stderr
    document = json.loads(out.stdout)
    assert (document["since"], document["until"]) == (since, until)  # JSON stays UTC
    assert [run["started_at"] for run in document["runs"]] == starts


def test_a_local_reports_days_title_and_times(
    cli: Cli, around_november: str, tmp_path: Path
) -> None:
    zone_config(tmp_path, "Asia/Shanghai")
    out = cli("report", "--month", "2026-11", "--format", "md")
    assert out.exit_code == 0, out.stderr
    text = out.stdout
    assert text.startswith("# ipguard report 2026-11-01 to 2026-11-30\n")
    assert "Period 2026-11-01 00:00 +08:00 to 2026-12-01 00:00 +08:00 (end excluded)." in text
    assert "Times are Asia/Shanghai local time." in text
    # Runs per local day: the first hour of November and its last second are November's.
    days = [line for line in text.splitlines() if line.startswith("| 2026-")]
    assert days[0].startswith("| 2026-11-01 | 2 |") and days[1].startswith("| 2026-11-30 | 1 |")
    assert "| day (Asia/Shanghai) |" in text
    html = cli("report", "--month", "2026-11", "--format", "html")
    assert html.exit_code == 0, html.stderr
    assert "ipguard report 2026-11-01 to 2026-11-30" in html.stdout
    assert "times are Asia/Shanghai local time." in html.stdout


def test_a_report_day_across_a_dst_change_is_25_or_23_hours(cli: Cli, tmp_path: Path) -> None:
    zone_config(tmp_path, "America/New_York")
    for day, since, until in (
        ("2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"),  # clocks go back
        ("2026-03-08", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"),  # clocks go forward
    ):
        out = cli("report", "--since", day, "--until", day, "--format", "json")
        assert out.exit_code == 0, out.stderr
        document = json.loads(out.stdout)
        assert (document["since"], document["until"]) == (since, until)


def test_since_without_until_runs_to_the_local_today(cli: Cli, tmp_path: Path) -> None:
    # A zone whose today is never UTC's at the same moment... nearly: UTC-12 and UTC+14.
    for zone, offset in (("Etc/GMT+12", -12), ("Pacific/Kiritimati", 14)):
        zone_config(tmp_path, zone)
        today = (datetime.now(UTC) + timedelta(hours=offset)).date()
        out = cli("report", "--since", str(today), "--format", "json")
        assert out.exit_code == 0, out.stderr
        local_midnight = datetime.combine(today, datetime.min.time(), tzinfo=ZoneInfo(zone))
        expected = local_midnight.astimezone(UTC).isoformat().replace("+00:00", "Z")
        assert json.loads(out.stdout)["since"] == expected
        tomorrow = today + timedelta(days=1)
        later = cli("report", "--since", str(tomorrow), "--format", "json")
        assert later.exit_code == 2
        assert f"after today ({today}, {zone})" in later.stderr


def test_an_acknowledgement_lasts_through_its_local_day(
    cli: Cli, around_november: str, tmp_path: Path
) -> None:
    zone_config(tmp_path, "Asia/Shanghai")
    (item,) = json.loads(cli("findings", "list", "--format", "json").stdout)["findings"]
    ack = cli("findings", "ack", str(item["id"]), "--note", "guest", "--until", "2999-01-01")
    assert ack.exit_code == 0, ack.stderr
    shown = json.loads(cli("findings", "show", str(item["id"]), "--format", "json").stdout)
    # Through 1 January in Shanghai: until its local midnight, 16:00 UTC that day.
    assert shown["ack_until"] == "2999-01-01T16:00:00Z"
    text = cli("findings", "show", str(item["id"])).stdout
    assert "2999-01-02 00:00:00 +08:00" in text
    assert "seen in run 1 (times Asia/Shanghai)\n" in text  # its evidence's times of day


def test_ack_until_today_means_the_local_today(
    cli: Cli, around_november: str, tmp_path: Path
) -> None:
    # UTC-12: its today is UTC's yesterday until noon UTC, then UTC's today.
    zone_config(tmp_path, "Etc/GMT+12")
    today = (datetime.now(UTC) - timedelta(hours=12)).date()
    (item,) = json.loads(cli("findings", "list", "--format", "json").stdout)["findings"]
    late = cli(
        "findings", "ack", str(item["id"]), "--note", "n", "--until", str(today - timedelta(days=1))
    )
    assert (late.exit_code, "that day is over" in late.stderr) == (2, True)
    ack = cli("findings", "ack", str(item["id"]), "--note", "n", "--until", str(today))
    assert ack.exit_code == 0, ack.stderr


def test_people_read_local_times_with_the_offset(
    cli: Cli, around_november: str, tmp_path: Path
) -> None:
    zone_config(tmp_path, "Asia/Shanghai")
    shown = cli("runs", "show", "2")
    assert shown.exit_code == 0, shown.stderr
    assert "2026-11-01 00:00:00 +08:00" in shown.stdout  # started at 16:00 UTC on 31 October
    listed = cli("runs", "list", "--format", "json")
    assert json.loads(listed.stdout)[-2]["started_at"] == "2026-10-31T16:00:00Z"  # JSON: UTC
    table = cli("runs", "list", "--limit", "1")
    assert "2026-12-01T07:59:59+08:00" in table.stdout.replace("\n", "").replace(" ", "").replace(
        "│", ""
    )


def test_changed_since_is_the_local_day(cli: Cli, tmp_path: Path, db_url: str) -> None:
    from openpyxl import load_workbook

    zone_config(tmp_path, "Asia/Shanghai")
    assert cli("ledger", "add", "198.18.0.10", "02:00:00:00:00:10").exit_code == 0
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:  # changed at 01:00 on 1 December in Shanghai
        connection.execute(
            sa.text("UPDATE device SET updated_at = :at"), {"at": datetime(2026, 11, 30, 17, 0)}
        )
    engine.dispose()
    out = tmp_path / "ledger.xlsx"
    assert cli("ledger", "export", str(out), "--changed-since", "2026-12-01").exit_code == 0
    (row,) = load_workbook(out).active.iter_rows(min_row=2)
    assert row[0].font.color is not None and row[0].font.color.rgb == "FFFF0000"


@pytest.mark.parametrize("zone", ["Asia/Shangai", "Mars/Olympus_Mons", "+08:00", "../etc/passwd"])
def test_an_unknown_zone_is_a_config_error(cli: Cli, tmp_path: Path, zone: str) -> None:
    zone_config(tmp_path, zone)
    out = cli("report", "--format", "json")
    assert out.exit_code == 2
    assert out.stderr == (
        f"error: ipguard.toml: policy.timezone = {zone!r}: not a time zone; give an IANA name "
        'such as "Asia/Shanghai", "America/New_York" or "UTC" (or "" for this machine\'s zone)\n'
    )


@pytest.mark.parametrize("setting", ['[policy]\ntimezone = ""\n', ""])
def test_the_default_is_this_machines_zone(
    cli: Cli, around_november: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    (tmp_path / "ipguard.toml").write_text(setting)
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # as `date` and cron read it
    out = cli("report", "--month", "2026-11", "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["since"] == "2026-10-31T16:00:00Z"


@pytest.mark.parametrize("tz", ["CST-8", ":Asia/Shanghai", "/usr/share/zoneinfo/Asia/Shanghai"])
def test_tz_as_the_c_library_reads_it(
    cli: Cli, around_november: str, monkeypatch: pytest.MonkeyPatch, tz: str
) -> None:
    # `CST-8` is how old guides set China's time for cron: UTC+8 (a POSIX string counts west).
    monkeypatch.setenv("TZ", tz)
    out = cli("report", "--month", "2026-11", "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["since"] == "2026-10-31T16:00:00Z"


def test_the_scan_table_gives_local_times_and_its_json_utc(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import FakeScanner, result

    monkeypatch.setenv("COLUMNS", "250")  # one line per row
    (tmp_path / "ipguard.toml").write_text(
        '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\n'
        '[policy]\nhostname_rule = ""\ntimezone = "Asia/Shanghai"\n'
    )
    stranger = ("198.18.0.66", "02:00:00:00:00:66")
    cli.scanner = FakeScanner([result(stranger), result(stranger)])
    first = cli("scan", "--format", "json")
    (item,) = json.loads(first.stdout)["findings"]
    due = datetime.fromisoformat(item["report_due_at"].replace("Z", "+00:00"))
    assert item["report_due_at"].endswith("Z")  # JSON: UTC, as DESIGN.md says
    local = due.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    assert local.endswith("+08:00")
    table = cli("scan")
    assert f" {local} " in table.stdout, table.stdout
    listed = cli("findings", "list")
    assert f" {local} " in listed.stdout, listed.stdout


def test_a_machine_without_zone_data_says_so_and_still_runs_in_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoneinfo

    from ipguard.config import parse_settings
    from ipguard.errors import ConfigError

    zoneinfo.reset_tzpath(to=[str(tmp_path)])  # an empty zone database, no tzdata package
    zoneinfo.ZoneInfo.clear_cache()
    try:
        with pytest.raises(ConfigError) as refused:
            parse_settings({"policy": {"timezone": "Asia/Shanghai"}}, "ipguard.toml")
        assert str(refused.value) == (
            "ipguard.toml: policy.timezone = 'Asia/Shanghai': this machine has no time zone "
            "data; install it (Debian: apt-get install tzdata)"
        )
        assert parse_settings({"policy": {"timezone": "UTC"}}).policy.timezone is UTC
        monkeypatch.delenv("TZ")
        assert parse_settings({}).policy.timezone is not None  # /etc/localtime, read as a file
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
