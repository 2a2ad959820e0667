"""`runs show` and `findings show`: readable sections on the terminal, the same data as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ipguard.ledger import runs
from ipguard.ledger.store import Store
from ipguard.model import FindingKind, Severity
from tests.conftest import Cli
from tests.reports.history import add_run, finding

STARTED = datetime(2026, 11, 30, 11, 19, 30, tzinfo=UTC)
OLD_TIMINGS = {"sweep": 1.143, "services": 42.96, "total": 50.929}
NEW_TIMINGS = {"dhcp": {"start": 0.0, "end": 6.02}, "sweep": {"start": 0.01, "end": 0.52}}
UNCOVERED = [{"range": "10.20.1.0/24", "reason": "no route to 10.20.1.1"}]


def set_counts(db_url: str, run_id: int, **extra: Any) -> None:
    store = Store(db_url)
    with store.session() as session:
        run = runs.get(session, run_id)
        run.counts = {**run.counts, **extra}
        session.add(run)
    store.close()


@pytest.fixture
def two_runs(db_url: str) -> str:
    """Run 1 recorded before phases overlapped (seconds per phase), run 2 with start/end offsets,
    an uncovered range and ignored replies."""
    store = Store(db_url)
    stranger = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.66")
    first = add_run(store, STARTED, hosts=2, found=[stranger])
    second = add_run(store, STARTED.replace(hour=12), hosts=3, found=[stranger])
    store.close()
    set_counts(db_url, first, timings=OLD_TIMINGS)
    set_counts(
        db_url,
        second,
        timings=NEW_TIMINGS,
        uncovered=UNCOVERED,
        ignored_replies={"arp_unsolicited": 12},
    )
    return db_url


def test_runs_show_old_run_in_sections(cli: Cli, two_runs: str) -> None:
    out = cli("runs", "show", "1")
    assert out.exit_code == 0, out.stderr
    text = out.stdout
    titles = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert titles == [
        "run 1 of site lab",
        "settings",
        "phase timings",
        "counts",
        "ignored replies",
        "not covered (nothing there was checked or resolved)",
        "error",
    ]
    assert "  sweep     1.14 s\n" in text and "  services  42.96 s\n" in text
    assert "  hosts seen" in text and "{" not in text  # no dict reprs
    assert "  started    2026-11-30 11:19:30 UTC\n" in text
    assert max(len(line) for line in text.splitlines()) < 100  # no 400-column row


def test_runs_show_overlapping_phases_and_uncovered_ranges(cli: Cli, two_runs: str) -> None:
    text = cli("runs", "show", "2").stdout
    assert "phase timings (start → end, seconds from the run's start)" in text
    # In order of start: dhcp starts with the run, the sweep 10 ms later.
    assert "  dhcp     0.00 →   6.02   6.02 s\n  sweep    0.01 →   0.52   0.51 s\n" in text
    assert "  10.20.1.0/24  no route to 10.20.1.1\n" in text
    assert "  arp unsolicited  12\n" in text


def test_runs_show_json_is_the_same_data(cli: Cli, two_runs: str) -> None:
    old = json.loads(cli("runs", "show", "1", "--format", "json").stdout)
    assert old["timings"]["sweep"] == {"start": None, "end": None, "seconds": 1.143}
    assert old["uncovered"] == [] and old["error"] is None
    assert old["run"]["id"] == 1 and old["run"]["hosts_seen"] == 2
    new = json.loads(cli("runs", "show", "2", "--format", "json").stdout)
    assert new["timings"]["sweep"] == {"start": 0.01, "end": 0.52, "seconds": 0.51}
    assert new["uncovered"] == UNCOVERED
    assert new["ignored_replies"] == {"arp_unsolicited": 12}
    assert "timings" not in new["counts"] and new["counts"]["hosts_seen"] == 3


def test_findings_show_reads_as_sentences_and_json_keeps_the_raw_evidence(
    cli: Cli, two_runs: str
) -> None:
    text = cli("findings", "show", "1").stdout
    assert text.startswith("finding 1: unregistered-host\n")
    assert "  first seen  2026-11-30 11:19:30 UTC (run 1)\n" in text
    assert "  last seen   2026-11-30 12:19:30 UTC (run 2)\n" in text
    sentence = "  answered from 02:66:00:00:00:01 (vendor Lab Vendor)\n"
    assert f"evidence, first seen in run 1\n{sentence}" in text
    assert f"evidence, last seen in run 2\n{sentence}" in text
    assert "=" not in text  # sentences, not key=value pairs
    raw = json.loads(cli("findings", "show", "1", "--format", "json").stdout)
    assert raw["evidence"]["first"]["observations"] == [
        {"ip": "198.18.0.66", "mac": "02:66:00:00:00:01", "vendor": "Lab Vendor"}
    ]
