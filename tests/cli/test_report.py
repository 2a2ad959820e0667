"""`ipguard report`: periods, formats, files, and bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ipguard.cli.report import _warn_future, period
from ipguard.errors import InvalidValue
from ipguard.ledger.store import Store
from ipguard.model import FindingKind, Severity
from tests.conftest import Cli
from tests.reports.history import add_run, finding

STRANGER = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.66")


@pytest.fixture
def history(db_url: str) -> str:
    store = Store(db_url)
    add_run(store, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), hosts=2)
    add_run(store, datetime(2026, 11, 1, tzinfo=UTC), hosts=3, found=[STRANGER])
    add_run(store, datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), hosts=4, found=[STRANGER])
    add_run(store, datetime(2026, 12, 1, tzinfo=UTC), hosts=5, site="north")
    store.close()
    return db_url


def test_json_report_covers_whole_days(cli: Cli, history: str) -> None:
    out = cli("report", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "json")
    assert out.exit_code == 0, out.stderr
    document = json.loads(out.stdout)
    assert (document["since"], document["until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert [run["hosts_seen"] for run in document["runs"]] == [3, 4]
    assert document["totals"]["opened"] == 1
    assert document["unregistered_hosts"][0]["ip"] == "198.18.0.66"


@pytest.mark.parametrize(
    ("name", "fmt", "start"),
    [
        ("november.html", None, "<!DOCTYPE html>"),
        ("november.md", None, "# ipguard report 2026-11-01 to 2026-11-30"),
        ("november.csv", None, "\ufeffsection,time,site"),
        ("november.txt", "json", "{"),
    ],
)
def test_output_file_and_format_from_its_suffix(
    cli: Cli, history: str, tmp_path: Path, name: str, fmt: str | None, start: str
) -> None:
    target = tmp_path / name
    args = ["report", "--since", "2026-11-01", "--until", "2026-11-30", "-o", str(target)]
    out = cli(*args, *(["--format", fmt] if fmt else []))
    assert out.exit_code == 0, out.stderr
    assert out.stdout == ""
    assert target.read_text(encoding="utf-8").startswith(start)
    assert f"written to {target}" in out.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ipguard-")] == []


def test_site_filter_and_csv(cli: Cli, history: str) -> None:
    out = cli(
        "report",
        "--since",
        "2026-12-01",
        "--until",
        "2026-12-01",
        "--format",
        "csv",
        "--site",
        "north",
    )
    assert out.stdout.encode("utf-8").startswith(
        b"\xef\xbb\xbf"
    )  # the BOM, as the ledger export writes
    rows = list(csv.DictReader(io.StringIO(out.stdout.removeprefix("\ufeff"))))
    assert [(row["section"], row["site"], row["value"]) for row in rows] == [("run", "north", "5")]
    other = cli(
        "report",
        "--since",
        "2026-12-01",
        "--until",
        "2026-12-01",
        "--format",
        "csv",
        "--site",
        "lab",
    )
    # Still open now, but last seen the day before: not an unregistered host of this period.
    rows = csv.DictReader(io.StringIO(other.stdout.removeprefix("\ufeff")))
    assert [row["section"] for row in rows] == ["open-finding"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "Invalid value for '--format'"),
        ([], "error: give --format html, md, json or csv"),
        (["-o", "report.xlsx"], "error: give --format html, md, json or csv"),
        (["--format", "md", "--since", "2026-13-01"], "error: --since '2026-13-01': not a date"),
        (
            ["--format", "md", "--since", "2026-11-30", "--until", "2026-11-01"],
            "error: --since 2026-11-30 is after --until 2026-11-01",
        ),
        (["--format", "md", "-o", "/nonexistent/dir/r.md"], "error: cannot write"),
    ],
)
def test_bad_input_exits_2(cli: Cli, args: list[str], message: str) -> None:
    out = cli("report", *args)
    assert out.exit_code == 2
    assert message in out.stderr


NOW = datetime(2026, 12, 3, 9, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, ("2026-11-03T09:30:15+00:00", "2026-12-03T09:30:15+00:00")),
        (date(2026, 11, 15), None, ("2026-11-15T00:00:00+00:00", "2026-12-04T00:00:00+00:00")),
        (None, date(2026, 2, 10), ("2026-02-01T00:00:00+00:00", "2026-02-11T00:00:00+00:00")),
        (
            date(2026, 5, 5),
            date(2026, 5, 5),
            ("2026-05-05T00:00:00+00:00", "2026-05-06T00:00:00+00:00"),
        ),
    ],
)
def test_default_period_is_the_last_30_days_up_to_now(
    since: date | None, until: date | None, expected: tuple[str, str]
) -> None:
    start, end = period(since, until, NOW)
    assert (start.isoformat(), end.isoformat()) == expected
    assert start.tzinfo is UTC and end.tzinfo is UTC


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        ("2026-11", ("2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")),
        ("2026-12", ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")),
        ("2028-02", ("2028-02-01T00:00:00+00:00", "2028-03-01T00:00:00+00:00")),
    ],
)
def test_month_is_a_calendar_month(month: str, expected: tuple[str, str]) -> None:
    start, end = period(None, None, NOW, month)
    assert (start.isoformat(), end.isoformat()) == expected


def test_month_boundaries_at_the_boundary_second(cli: Cli, history: str) -> None:
    """Runs at 10-31 23:59:59 and 12-01 00:00:00 are out; 11-01 00:00:00 and 11-30 23:59:59 in."""
    out = cli("report", "--month", "2026-11", "--format", "json")
    assert out.exit_code == 0, out.stderr
    document = json.loads(out.stdout)
    assert (document["since"], document["until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert [run["started_at"] for run in document["runs"]] == [
        "2026-11-01T00:00:00Z",
        "2026-11-30T23:59:59Z",
    ]
    markdown = cli("report", "--month", "2026-11", "--format", "md")
    assert markdown.stdout.startswith("# ipguard report 2026-11-01 to 2026-11-30\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "error: --month '2026-13': not a month (use YYYY-MM)"),
        (["--month", "november"], "error: --month 'november': not a month"),
        (["--month", "2026-11", "--since", "2026-11-01"], "error: give --month or --since/--until"),
    ],
)
def test_bad_month_exits_2(cli: Cli, args: list[str], message: str) -> None:
    out = cli("report", "--format", "json", *args)
    assert out.exit_code == 2
    assert message in out.stderr


def test_report_with_no_dates_right_after_a_scan_includes_it(cli: Cli, tmp_path: Path) -> None:
    from tests.fakes import FakeScanner, result

    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\nsite = "lab"\n')
    stranger = ("198.18.0.66", "02:00:00:00:00:66")
    cli.scanner = FakeScanner([result(stranger)])
    scanned = cli("--config", str(config), "scan", "--quiet", "--format", "json")
    assert scanned.exit_code == 1, scanned.stderr
    run_id = json.loads(scanned.stdout)["run"]["id"]
    out = cli("report", "--format", "json")
    assert out.exit_code == 0, out.stderr
    document = json.loads(out.stdout)
    assert [run["id"] for run in document["runs"]] == [run_id]
    assert document["totals"]["opened"] == 1
    assert [item["ip"] for item in document["open_findings"]] == ["198.18.0.66"]


def test_period_refuses_backwards() -> None:
    with pytest.raises(InvalidValue):
        period(date(2026, 5, 6), date(2026, 5, 5), NOW)


def test_a_month_that_has_not_ended_or_begun_is_said(
    cli: Cli, history: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `0 6 1 * * ipguard report --month "$(date -d 'last month' +%Y-%m)"` on a sensor in
    # China runs at 22:00 UTC on the month's last day: the UTC month had two hours to go, and the
    # report was filed as the whole month without a word.
    now = datetime.now(UTC)
    this_month, next_month = period(None, None, now, now.strftime("%Y-%m"))
    out = cli("report", "--month", now.strftime("%Y-%m"), "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert out.stderr.startswith(
        f"warning: the period ends {next_month:%Y-%m-%d} 00:00 UTC, after now ("
    )
    assert out.stderr.endswith(" UTC): this report covers it only up to now\n")
    assert json.loads(out.stdout)["until"] == f"{next_month:%Y-%m-%d}T00:00:00Z"
    # An ended month, and the default period (which is up to now), say nothing.
    assert cli("report", "--month", "2026-10", "--format", "json").stderr == ""
    assert cli("report", "--format", "json").stderr == ""
    assert cli("report", "--since", f"{this_month:%Y-%m-%d}", "--format", "json").stderr == ""

    # A month that begins within a day (already begun east of UTC) is said; one further ahead,
    # a mistyped year, is refused: it exited 0 with an empty report.
    late_on_the_30th = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    december = period(None, None, late_on_the_30th, "2026-12")
    _warn_future(*december, late_on_the_30th, ended=True)
    assert capsys.readouterr().err.startswith(
        "warning: the period starts 2026-12-01 00:00 UTC, after now (2026-11-30 22:00 UTC)"
    )
    ahead = cli("report", "--month", "2999-03", "--format", "json")
    assert (ahead.exit_code, ahead.stdout) == (2, "")
    assert ahead.stderr.startswith("error: the period starts 2999-03-01 (UTC), after today (")


def test_since_after_today_without_until_says_today(cli: Cli) -> None:
    # It said "--since 2999-01-01 is after --until 2026-…", an --until nobody gave.
    out = cli("report", "--format", "json", "--since", "2999-01-01")
    today = datetime.now(UTC).date()
    assert (out.exit_code, out.stderr) == (
        2,
        f"error: --since 2999-01-01 is after today ({today}, UTC), where a period without "
        "--until ends\n",
    )
