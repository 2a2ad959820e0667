"""`ipguard report`: periods, formats, files, and bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ipguard.cli.report import period
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
        ("november.csv", None, "section,time,site"),
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
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
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
    assert [row["section"] for row in csv.DictReader(io.StringIO(other.stdout))] == ["open-finding"]


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


@pytest.mark.parametrize(
    ("since", "until", "today", "expected"),
    [
        (None, None, date(2026, 12, 3), ("2026-11-01", "2026-12-01")),
        (None, None, date(2026, 1, 1), ("2025-12-01", "2026-01-01")),
        (date(2026, 11, 15), None, date(2026, 12, 3), ("2026-11-15", "2026-12-04")),
        (None, date(2026, 2, 10), date(2026, 12, 3), ("2026-02-01", "2026-02-11")),
        (date(2026, 5, 5), date(2026, 5, 5), date(2026, 12, 3), ("2026-05-05", "2026-05-06")),
    ],
)
def test_default_period_is_last_month(
    since: date | None, until: date | None, today: date, expected: tuple[str, str]
) -> None:
    start, end = period(since, until, today)
    assert (start.date().isoformat(), end.date().isoformat()) == expected
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_period_refuses_backwards() -> None:
    with pytest.raises(InvalidValue):
        period(date(2026, 5, 6), date(2026, 5, 5), date(2026, 12, 3))
