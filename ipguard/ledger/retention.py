"""Retention: scan history older than the configured period is removed; the audit trail never is.

What goes, for a cutoff `now - days`:
- scan runs that started strictly before the cutoff, and with them (ON DELETE CASCADE) everything
  they saw: observations, services, DHCP offers, proxy checks, names, routing/AP evidence (kept
  packed, one row per run and kind: see `records`);
- findings resolved strictly before the cutoff.

A watcher still running (its heartbeat newer than the cutoff) keeps its run, however long ago it
started; only what it saw before the cutoff goes.

What stays: the audit trail, every open or acknowledged finding (its evidence is stored on the
finding row itself, so removing the runs that raised it loses nothing), every newer run, and the
sightings (when each (ip, mac) pair was last seen: one row per pair, see `sightings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ipguard.config import MIN_RETENTION_DAYS
from ipguard.errors import InvalidValue
from ipguard.ledger import audit, records
from ipguard.ledger.runs import WATCH
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.model import FindingState, RunStatus

MIN_DAYS = MIN_RETENTION_DAYS  # 「记录备份保持60天」: nobody may keep less


@dataclass
class PruneReport:
    """What a prune removed (or, with dry_run, would remove)."""

    cutoff: datetime
    days: int
    dry_run: bool
    runs: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # records, per kind (`records.KINDS`)
    resolved_findings: int = 0

    def as_json(self) -> dict[str, Any]:
        """The report as plain values (counts, the cutoff as UTC ISO 8601)."""
        return {
            "cutoff": self.cutoff.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "days": self.days,
            "dry_run": self.dry_run,
            "runs": self.runs,
            **self.rows,
            "resolved_findings": self.resolved_findings,
        }


def cutoff_for(days: int, now: datetime) -> datetime:
    """The oldest moment kept: anything that started strictly before it is pruned."""
    if days < MIN_DAYS:
        raise InvalidValue(
            f"refusing to prune records younger than {MIN_DAYS} days (asked for {days}): "
            f"the rules require keeping at least {MIN_DAYS} days"
        )
    try:
        return now - timedelta(days=days)
    except OverflowError:  # older than any date a clock can give: nothing is that old
        return datetime.min.replace(tzinfo=now.tzinfo)


def prune(
    session: Session, *, days: int, now: datetime, actor: str, dry_run: bool = False
) -> PruneReport:
    """Remove scan history older than `days` (at least 60) in the caller's transaction."""
    cutoff = cutoff_for(days, now)
    report = PruneReport(cutoff=cutoff, days=days, dry_run=dry_run)
    live = _live_watchers(session, cutoff)
    old_runs = sa.select(col(ScanRun.id)).where(
        col(ScanRun.started_at) < cutoff, col(ScanRun.id).not_in(live)
    )
    report.runs = _count(session, sa.select(sa.func.count()).select_from(old_runs.subquery()))
    for kind in records.KINDS:
        report.rows[kind] = records.count(session, old_runs, kind)
    # A watcher running since before the cutoff keeps its run; what it saw before goes.
    for kind in records.TIMED:
        report.rows[kind] += records.drop_older(session, live, kind, cutoff, dry_run=dry_run)
    old_findings = (
        col(FindingRow.state) == FindingState.RESOLVED.value,
        col(FindingRow.resolved_at) < cutoff,
    )
    report.resolved_findings = _count(
        session, sa.select(sa.func.count()).select_from(FindingRow).where(*old_findings)
    )
    if dry_run:
        return report
    # What the runs saw goes with them through ON DELETE CASCADE (PRAGMA foreign_keys is on for
    # SQLite connections; PostgreSQL enforces it always).
    session.execute(sa.delete(ScanRun).where(col(ScanRun.id).in_(old_runs)))
    session.execute(sa.delete(FindingRow).where(*old_findings))
    audit.record(
        session,
        actor=actor,
        action="prune",
        entity="scan_run",
        key=f"before {report.as_json()['cutoff']}",
        after=report.as_json(),
        at=now,
    )
    return report


def _live_watchers(session: Session, cutoff: datetime) -> list[int]:
    """Watch runs started before the cutoff whose watcher is still alive (a heartbeat since).

    A watcher runs for months as a service: its run is its lifetime, and removing it (with the
    cutoff passing its start) broke the watcher's every later batch. A watch run whose heartbeat
    stopped before the cutoff died long ago and goes like any old run.
    """
    query = select(ScanRun).where(
        col(ScanRun.started_at) < cutoff,
        ScanRun.kind == WATCH,
        ScanRun.status == RunStatus.RUNNING.value,
    )
    alive = []
    for run in session.exec(query):
        beat = run.counts.get("heartbeat_at")
        last = datetime.fromisoformat(beat) if isinstance(beat, str) else run.started_at
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last >= cutoff and run.id is not None:
            alive.append(run.id)
    return alive


def _count(session: Session, query: Any) -> int:
    return int(session.execute(query).scalar_one())
