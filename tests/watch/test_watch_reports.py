"""Reports and metrics with a watcher: randomized MACs grouped, watch runs not counted as scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ipguard.ledger import reporting, watching
from ipguard.ledger.reporting import PeriodRecords
from ipguard.ledger.scan_tables import FindingRow
from ipguard.ledger.store import Store
from ipguard.reports.sections import build as build_sections
from ipguard.reports.summary import build

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def unregistered(finding_id: int, mac: str, randomized: bool, hours: int) -> FindingRow:
    seen = NOW - timedelta(hours=hours)
    return FindingRow(
        id=finding_id,
        site="lab",
        kind="unregistered-host",
        subject=f"198.18.0.{finding_id}|{mac}|",
        ip=f"198.18.0.{finding_id}",
        mac=mac,
        severity="high",
        state="open",
        summary="",
        detail={"randomized": randomized},
        first_seen_at=seen,
        last_seen_at=seen,
    )


def test_reports_list_randomized_macs_after_real_cards_and_say_so() -> None:
    rows = (
        unregistered(1, "da:a1:19:00:00:01", True, 5),
        unregistered(2, "00:16:3e:00:00:02", False, 4),
        unregistered(3, "3a:00:00:00:00:03", True, 3),
        unregistered(4, "00:16:3e:00:00:04", False, 2),
    )
    summary = build(PeriodRecords((), rows, ()), NOW - timedelta(days=1), NOW, now=NOW)
    assert [(host.finding_id, host.randomized) for host in summary.unregistered] == [
        (2, False),
        (4, False),
        (1, True),
        (3, True),
    ]
    table = build_sections(summary).unregistered
    vendors = [row[4] for row in table.rows]
    assert [getattr(cell, "text", cell) for cell in vendors] == [
        "",
        "",
        "randomized MAC",
        "randomized MAC",
    ]


def test_a_running_watcher_is_neither_a_report_s_run_nor_a_metric_s(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as session:
        watching.start(
            session,
            site="lab",
            now=NOW,
            interface="eth0",
            subnets=["198.18.0.0/24"],
            settings={},
            actor="tester",
            sensor="s",
            version="t",
        )
    with store.session(write=False) as session:
        records = reporting.period_records(session, NOW - timedelta(days=1), NOW + timedelta(1))
        assert records.runs == ()
        assert reporting.site_state(session, "lab", NOW).newest is None
    store.close()
