"""Retention: `ipguard prune` on SQLite and PostgreSQL, exactly at the cutoff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.errors import InvalidValue
from ipguard.ledger import records, retention
from ipguard.ledger.scan_tables import ScanRun
from ipguard.ledger.store import Store
from ipguard.model import FindingKind, FindingState, RunStatus, Severity
from tests.conftest import Cli
from tests.reports.history import (
    acknowledge,
    add_run,
    audit_entry,
    finding,
    row,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DAYS = 60
CUTOFF = NOW - timedelta(days=DAYS)
RUN_TABLES = records.KINDS  # what runs saw, counted in records of each kind


def counts(store: Store) -> dict[str, int]:
    kept = "SELECT coalesce(sum(entries), 0) FROM run_records WHERE kind = :kind"
    with store.engine.connect() as connection:
        return {
            **{
                table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ["scan_run", "finding", "audit"]
            },
            **{
                kind: connection.execute(sa.text(kept), {"kind": kind}).scalar_one()
                for kind in RUN_TABLES
            },
        }


def run_starts(store: Store) -> list[datetime]:
    from sqlmodel import select

    from ipguard.ledger.scan_tables import ScanRun

    with store.session(write=False) as session:
        return sorted(run.started_at for run in session.exec(select(ScanRun)))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store(db_url)
    yield opened
    opened.close()


def test_boundary_runs_cascade_and_findings(store: Store) -> None:
    old_open = finding(FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.66")
    resolved_early = finding(FindingKind.MAC_MOVED, Severity.MEDIUM, "198.18.0.67")
    resolved_at_cutoff = finding(FindingKind.MAC_MOVED, Severity.MEDIUM, "198.18.0.68")
    add_run(
        store, CUTOFF - timedelta(days=100), found=[old_open, resolved_early, resolved_at_cutoff]
    )
    acknowledge(
        store,
        row(store, FindingKind.UNREGISTERED_HOST, "198.18.0.66").id,
        CUTOFF - timedelta(days=90),
    )
    # Each complete run resolves what it no longer sees, at its own time.
    before = add_run(store, CUTOFF - timedelta(seconds=1), found=[old_open, resolved_at_cutoff])
    add_run(store, CUTOFF, found=[old_open])
    add_run(store, CUTOFF + timedelta(seconds=1), status=RunStatus.FAILED)
    assert row(store, FindingKind.MAC_MOVED, "198.18.0.67").resolved_at == CUTOFF - timedelta(
        seconds=1
    )
    assert row(store, FindingKind.MAC_MOVED, "198.18.0.68").resolved_at == CUTOFF
    audit_entry(store, CUTOFF - timedelta(days=300), "198.18.0.10", None, {"owner": "李伟"})
    evidence_before = row(store, FindingKind.UNREGISTERED_HOST, "198.18.0.66").evidence
    start = counts(store)
    assert start["scan_run"] == 4 and all(start[table] == 4 for table in RUN_TABLES)

    with store.session(write=False) as session:
        dry = retention.prune(session, days=DAYS, now=NOW, actor="tester", dry_run=True)
    assert counts(store) == start
    with store.session() as session:
        done = retention.prune(session, days=DAYS, now=NOW, actor="tester")
    expected = {name: 2 for name in records.KINDS}
    for report in (dry, done):
        assert (report.runs, report.rows, report.resolved_findings) == (2, expected, 1)
    assert done.as_json()["cutoff"] == "2026-04-02T12:00:00Z"

    # Exactly at the cutoff and after it: kept. One second before: gone, with all it saw.
    assert run_starts(store) == [CUTOFF, CUTOFF + timedelta(seconds=1)]
    after = counts(store)
    assert all(after[table] == 2 for table in RUN_TABLES)
    assert after["finding"] == start["finding"] - 1
    # The audit trail loses nothing and records the prune itself.
    assert after["audit"] == start["audit"] + 1
    kept = row(store, FindingKind.UNREGISTERED_HOST, "198.18.0.66")
    assert kept.state == FindingState.ACKNOWLEDGED.value
    assert kept.evidence == evidence_before and kept.evidence["first"]["observations"]
    assert kept.first_run_id is not None and kept.first_run_id < before  # its run is gone, not it
    assert row(store, FindingKind.MAC_MOVED, "198.18.0.68").state == FindingState.RESOLVED.value
    with store.session() as session:
        again = retention.prune(session, days=DAYS, now=NOW, actor="tester")
    assert (again.runs, again.resolved_findings) == (0, 0)


@pytest.mark.parametrize("days", [0, 1, 59, -5])
def test_less_than_sixty_days_is_refused(days: int) -> None:
    with pytest.raises(InvalidValue, match="at least 60 days"):
        retention.cutoff_for(days, NOW)


def test_prune_command(cli: Cli, db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = Store(db_url)
    add_run(store, now - timedelta(days=400))
    add_run(store, now - timedelta(days=100))
    add_run(store, now - timedelta(days=10))
    store.close()

    refused = cli("prune", "--older-than", "59")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: refusing to prune records younger than 60 days")

    dry = cli("prune", "--older-than", "90", "--dry-run", "--format", "json")
    assert dry.exit_code == 0
    assert json.loads(dry.stdout) | {"cutoff": None} == {
        "cutoff": None,
        "days": 90,
        "dry_run": True,
        "runs": 2,
        "observations": 2,
        "services": 2,
        "dhcp_offers": 2,
        "proxy_checks": 2,
        "names": 2,
        "evidence": 2,
        "resolved_findings": 0,
    }
    # Default: [retention] days from the configuration (365 unless set).
    default = cli("prune")
    assert default.exit_code == 0
    assert default.stdout.startswith("removed 1 scan runs that started before ")
    assert "(1 observations, 1 services, 1 dhcp offers" in default.stdout
    assert "the audit trail is kept" in default.stderr

    config = tmp_path / "ipguard.toml"
    config.write_text("[retention]\ndays = 60\n")
    configured = cli("--config", str(config), "prune")
    assert configured.exit_code == 0 and configured.stdout.startswith("removed 1 scan runs")
    runs = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert len(runs) == 1
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        recorded = connection.execute(
            sa.text("SELECT actor, entity FROM audit WHERE action = 'prune'")
        ).all()
    engine.dispose()
    assert recorded == [("tester", "scan_run"), ("tester", "scan_run")]


def test_sqlite_connections_enforce_foreign_keys(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_a_watcher_running_for_months_keeps_its_run(cli: Cli, db_url: str) -> None:
    # `ipguard watch` runs as a service for months; its lifetime is one run. Once that run had
    # started before the cutoff, `prune` removed it, with everything the watcher had stored, and
    # each later batch of the live watcher referred to a run that no longer existed.
    from ipguard.ledger import watching
    from ipguard.model import Observation

    now = datetime.now(UTC)
    store = Store(db_url)
    details = {"interface": "eth0", "subnets": [], "settings": {}, "actor": "watch",
               "sensor": "s", "version": "0"}  # fmt: skip
    with store.session() as session:
        live, _ = watching.start(session, site="lab", now=now - timedelta(days=100), **details)
        dead, _ = watching.start(session, site="old", now=now - timedelta(days=200), **details)
        assert live.id is not None and dead.id is not None
        for days in (90, 10):
            seen = [
                Observation("198.18.0.9", "02:00:00:00:00:09", now - timedelta(days=days), "arp")
            ]
            watching.store_sightings(session, live.id, seen, [])
        watching.store_sightings(
            session, dead.id, [Observation("198.18.0.8", "02:00:00:00:00:08", now, "arp")], []
        )
        watching.beat(session, live.id, {}, now - timedelta(minutes=1))
        watching.beat(session, dead.id, {}, now - timedelta(days=150))  # died long ago
    out = cli("prune", "--older-than", "60", "--format", "json")
    assert out.exit_code == 0, out.stderr
    pruned = json.loads(out.stdout)
    assert (pruned["runs"], pruned["observations"]) == (1, 2)  # the dead run; 90 days ago
    with store.session() as session:
        runs_left = {run.id: run.status for run in session.exec(sa.select(ScanRun)).scalars()}
        assert runs_left == {live.id: RunStatus.RUNNING.value}
        kept = [
            (run.id, seen["seen_at"].date())
            for run in session.exec(sa.select(ScanRun)).scalars()
            for seen in records.read(session, run.id, "observations")
        ]
        assert kept == [(live.id, (now - timedelta(days=10)).date())]
        # The watcher goes on storing into its run.
        more = [Observation("198.18.0.9", "02:00:00:00:00:09", now, "arp")]
        watching.store_sightings(session, live.id, more, [])
    store.close()
