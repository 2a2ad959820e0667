"""What the periodic report says, read from a real ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ipguard.ledger.reporting import period_records
from ipguard.ledger.store import Store
from ipguard.model import FindingKind, RunStatus, Severity
from ipguard.reports.summary import FindingCount, Summary, build
from tests.reports.history import acknowledge, add_run, audit_entry, finding, resolve, row

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

A = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.66", "02:66:00:00:00:66")
B = finding(FindingKind.UNEXPECTED_SERVICE, Severity.MEDIUM, "198.18.0.10", port="tcp/8080")
C = finding(FindingKind.IP_MAC_MISMATCH, Severity.CRITICAL, "198.18.0.11")
D = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.67", "02:66:00:00:00:67")
E = finding(FindingKind.ROGUE_DHCP, Severity.CRITICAL, "198.18.5.1")


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def november(db_url: str) -> Iterator[Store]:
    """A month of history with findings opened, acknowledged, resolved and left overdue."""
    store = Store(db_url)
    add_run(store, at(31, 23, month=10), hosts=3, found=[A])  # A: opened before the period
    add_run(store, at(2), hosts=4, found=[A, B, C])
    acknowledge(store, row(store, C.kind, C.ip or "").id, at(2, 12))  # within 24 h: not overdue
    audit_entry(
        store,
        at(5),
        "198.18.0.10",
        {"owner": "李伟", "location": "B2-301"},
        {"owner": "李伟", "location": "B2-302"},
    )
    audit_entry(store, at(20, month=10), "198.18.0.99", None, {"owner": "old"})
    audit_entry(store, UNTIL, "198.18.0.98", None, {"owner": "too late"})  # end is excluded
    add_run(store, at(10), hosts=4, status=RunStatus.FAILED)
    add_run(store, at(15), hosts=5, found=[A, C, D])  # B resolved automatically
    resolve(store, row(store, D.kind, D.ip or "").id, at(17))  # after its due time: overdue
    add_run(store, at(20), site="north", hosts=2, found=[E])
    add_run(store, at(2, month=12), hosts=9, found=[A, C])  # after the period
    yield store
    store.close()


def read(store: Store, site: str | None = "lab") -> Summary:
    with store.session(write=False) as session:
        return build(period_records(session, SINCE, UNTIL, site), SINCE, UNTIL, now=NOW, site=site)


def test_runs_in_the_period_and_by_day(november: Store) -> None:
    summary = read(november)
    assert [
        (run.started_at, run.status, run.hosts_seen, run.open_findings) for run in summary.runs
    ] == [
        (at(2), "complete", 4, 3),
        (at(10), "failed", 4, None),
        (at(15), "complete", 5, 3),
    ]
    assert [
        (day.day.day, day.runs, day.complete, day.max_hosts, day.open_findings)
        for day in summary.days
    ] == [(2, 1, 1, 4, 3), (10, 1, 0, 0, None), (15, 1, 1, 5, 3)]
    assert summary.last_day.isoformat() == "2026-11-30"


def test_findings_opened_resolved_and_overdue(november: Store) -> None:
    summary = read(november)
    assert list(summary.counts) == [
        FindingCount("ip-mac-mismatch", "critical", opened=1),
        FindingCount("unregistered-host", "high", opened=1, resolved=1, overdue=2),
        FindingCount("unexpected-service", "medium", opened=1, resolved=1),
    ]
    assert dict(summary.totals) == {
        "runs": 3,
        "runs_complete": 2,
        "runs_failed": 1,
        "max_hosts_seen": 5,
        "opened": 3,
        "resolved": 2,
        "overdue": 2,
        "open_now": 2,
        "ledger_changes": 3,
        "unregistered_hosts": 2,
    }


def test_open_findings_carry_their_evidence(november: Store) -> None:
    summary = read(november)
    assert [(item.kind, item.ip, item.state, item.overdue) for item in summary.open_findings] == [
        ("ip-mac-mismatch", "198.18.0.11", "acknowledged", False),
        ("unregistered-host", "198.18.0.66", "open", True),
    ]
    item = summary.open_findings[1]
    assert item.evidence["first"]["observations"][0]["ip"] == "198.18.0.66"
    assert item.first_seen == at(31, 23, month=10)
    assert summary.open_findings[0].ack_note == "known"


def test_open_findings_are_those_open_at_the_periods_end(november: Store) -> None:
    # The monthly report made on the 2nd of December listed a finding first seen on the 2nd as
    # open in November, and left out one open all November but resolved on the 2nd.
    late = finding(FindingKind.UNEXPECTED_SERVICE, Severity.MEDIUM, "198.18.0.12", port="tcp/23")
    add_run(november, at(2, 20, month=12), hosts=9, found=[A, C, late])
    resolve(november, row(november, A.kind, A.ip or "").id, at(3, 8, month=12))
    acknowledge(november, row(november, late.kind, late.ip or "").id, at(3, 8, month=12))
    summary = read(november)
    assert [(item.kind, item.ip, item.state, item.overdue) for item in summary.open_findings] == [
        ("ip-mac-mismatch", "198.18.0.11", "acknowledged", False),
        ("unregistered-host", "198.18.0.66", "open", True),
    ]
    assert summary.totals["open_now"] == 2
    assert [(host.ip, host.state) for host in summary.unregistered] == [
        ("198.18.0.66", "open"),
        ("198.18.0.67", "resolved"),
    ]
    # Up to now, the report shows what is open now.
    with november.session(write=False) as session:
        records = period_records(session, SINCE, NOW, "lab")
        current = build(records, SINCE, NOW, now=NOW, site="lab")
    assert [(item.ip, item.state) for item in current.open_findings] == [
        ("198.18.0.11", "acknowledged"),
        ("198.18.0.12", "acknowledged"),
    ]


def test_unregistered_hosts_by_first_seen(november: Store) -> None:
    summary = read(november)
    assert [
        (host.ip, host.mac, host.vendor, host.first_seen, host.state)
        for host in summary.unregistered
    ] == [
        ("198.18.0.66", "02:66:00:00:00:66", "Lab Vendor", at(31, 23, month=10), "open"),
        ("198.18.0.67", "02:66:00:00:00:67", "Lab Vendor", at(15), "resolved"),
    ]


def test_ledger_changes_of_the_period_only(november: Store) -> None:
    summary = read(november)
    assert [(change.at, change.action, change.key) for change in summary.ledger_changes] == [
        (at(2, 12), "finding.ack", str(row(november, C.kind, C.ip or "").id)),
        (at(5), "device.edit", "198.18.0.10"),
        (at(17), "finding.resolve", str(row(november, D.kind, D.ip or "").id)),
    ]
    edit = summary.ledger_changes[1]
    assert [(c.field, c.before, c.after) for c in edit.changes] == [
        ("location", "B2-301", "B2-302")
    ]


def test_every_site_or_one(november: Store) -> None:
    everything = read(november, site=None)
    assert len(everything.runs) == 4
    assert {item.site for item in everything.open_findings} == {"lab", "north"}
    assert read(november, site="north").totals["opened"] == 1
    assert read(november, site="nowhere").totals == {
        **{key: 0 for key in everything.totals},
        "ledger_changes": 3,  # the audit trail belongs to no site
    }


def test_an_empty_ledger_gives_an_empty_report(db_url: str) -> None:
    store = Store(db_url)
    summary = read(store)
    store.close()
    assert summary.runs == () and summary.counts == () and summary.days == []
    assert summary.open_findings == () and summary.unregistered == ()
    assert summary.ledger_changes == ()
    assert summary.totals and set(summary.totals.values()) == {0}  # every total there, all zero
    assert summary.last_day.isoformat() == "2026-11-30"
