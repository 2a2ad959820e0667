"""The ledger's answers for reports and metrics: the queries, so that neither needs SQL.

`period_records` reads what a period report is built from; `site_state` what the Prometheus
metrics of a site say. Both return plain frozen values holding the ledger's rows, read inside the
caller's session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ipguard.ledger import audit, findings
from ipguard.ledger.runs import SCAN
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.ledger.tables import AuditEntry, Device
from ipguard.model import FindingState, RunStatus


@dataclass(frozen=True)
class PeriodRecords:
    """What a report of `since <= t < until` (optionally one site) is made of."""

    runs: tuple[ScanRun, ...]  # started in the period, oldest first
    findings: tuple[FindingRow, ...]  # every finding of the site(s), by id
    audit: tuple[AuditEntry, ...]  # the audit trail of the period, oldest first


def period_records(
    session: Session, since: datetime, until: datetime, site: str | None = None
) -> PeriodRecords:
    """Runs, findings and audit entries for a report of the period."""
    # Scans only: a watcher's lifetime is no sweep (its findings are reported all the same).
    runs = select(ScanRun).where(
        col(ScanRun.started_at) >= since, col(ScanRun.started_at) < until, ScanRun.kind == SCAN
    )
    rows = select(FindingRow)
    if site:
        runs = runs.where(ScanRun.site == site)
        rows = rows.where(FindingRow.site == site)
    return PeriodRecords(
        runs=tuple(session.exec(runs.order_by(col(ScanRun.started_at), col(ScanRun.id)))),
        findings=tuple(session.exec(rows.order_by(col(FindingRow.id)))),
        audit=tuple(audit.since(session, since, until)),
    )


@dataclass(frozen=True)
class SiteState:
    """A site as its metrics describe it: its newest runs and the findings that count as open."""

    newest: ScanRun | None = None  # the newest run, whatever its status
    finished: ScanRun | None = None  # the newest run that has ended
    complete: ScanRun | None = None  # the newest complete run
    open_findings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, severity)


def site_state(session: Session, site: str, now: datetime) -> SiteState:
    """Read a site's newest runs and its open, unacknowledged findings."""
    newest = (
        select(ScanRun)
        .where(ScanRun.site == site, ScanRun.kind == SCAN)
        .order_by(col(ScanRun.id).desc())
    )
    finished = newest.where(col(ScanRun.finished_at).is_not(None))
    complete = newest.where(ScanRun.status == RunStatus.COMPLETE.value)
    counted: Counter[tuple[str, str]] = Counter(
        (row.kind, row.severity)
        for row in findings.list_findings(session, site=site, live_only=True)
        if row.state != FindingState.RESOLVED.value and not findings.is_suppressed(row, now)
    )
    return SiteState(
        newest=session.exec(newest.limit(1)).first(),
        finished=session.exec(finished.limit(1)).first(),
        complete=session.exec(complete.limit(1)).first(),
        open_findings=counted,
    )


def known_sites(session: Session) -> list[str]:
    """Every site the ledger knows: of a run, a finding or a site-scoped record, sorted."""
    query = sa.union(
        sa.select(col(ScanRun.site)),
        sa.select(col(FindingRow.site)),
        sa.select(col(Device.site)).where(col(Device.site) != ""),
    )
    return sorted(str(site) for site in session.execute(query).scalars())


def refuse_unknown_site(session: Session, site: str | None) -> None:
    """Refuse a site the ledger has never heard of: a typo would give an empty report or list
    that reads as "nothing happened there"."""
    if not site:
        return
    known = known_sites(session)
    if site in known:
        return
    from ipguard.errors import NotFound

    listed = ", ".join(known) if known else "none yet"
    raise NotFound(
        f"--site {site!r}: the ledger knows no such site (no run, finding or record of it); "
        f"its sites: {listed}"
    )
