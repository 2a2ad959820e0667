"""Findings through their lifecycle: opened by a run, seen again, acknowledged, resolved.

A finding is keyed by (site, kind, subject). Seen again, its `last_seen` moves; absent from a
complete run that could have seen it (`ipguard.ledger.coverage`), it is resolved. A resolved
finding that comes back is a new incident (acknowledged still if its acknowledgement runs on).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ipguard.addresses import ip_sort_key
from ipguard.errors import Conflict, NotFound
from ipguard.ledger import audit
from ipguard.ledger.coverage import Answered, covered
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.model import (
    Finding,
    FindingKind,
    FindingState,
    Phase,
    Severity,
)

REPORT_WITHIN = timedelta(hours=24)


@dataclass
class SyncOutcome:
    """What one run did to the findings of its site."""

    new: list[FindingRow] = field(default_factory=list)
    seen_again: list[FindingRow] = field(default_factory=list)
    escalated: list[FindingRow] = field(default_factory=list)
    resolved: list[FindingRow] = field(default_factory=list)


# What only some sightings measure, kept from the last one that did: a watcher hears a rogue DHCP
# server's offers without sending the DISCOVER a time to offer is counted from.
_MEASURED = ("seconds_to_offer",)


def _detail_kept(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> dict[str, Any]:
    """A seen-again finding's detail: this sighting's, with what it could not measure kept."""
    kept = {key: (before or {})[key] for key in _MEASURED if key in (before or {})}
    return {**kept, **now}


# Findings of what is heard on one link only (a DHCP server, IPv6 router advertisements).
LINK_SCOPED = frozenset({FindingKind.ROGUE_DHCP.value, FindingKind.ROGUE_RA.value})


def _due(severity: Severity, first_seen: datetime) -> datetime | None:
    return first_seen + REPORT_WITHIN if severity >= Severity.HIGH else None


def _link_of(session: Session, run_id: int | None) -> tuple[str, str] | None:
    """The (sensor, interface) a run listened on."""
    run = session.get(ScanRun, run_id) if run_id is not None else None
    return None if run is None else (run.sensor, run.interface)


def _standing_acks(session: Session, site: str, now: datetime) -> dict[tuple[str, str], FindingRow]:
    """Resolved findings whose acknowledgement runs beyond `now`, by (kind, subject).

    An acknowledgement until a date says "I know, leave it be until then": when its finding was
    resolved by a run (the guest laptop went home) and comes back before the date, the new
    incident is acknowledged as well. A finding resolved by hand ends its acknowledgement.
    """
    resolved = select(FindingRow).where(
        FindingRow.site == site, FindingRow.state == FindingState.RESOLVED.value
    )
    standing = resolved.where(col(FindingRow.ack_until) > now)
    subjects = {row.subject for row in session.exec(standing)}
    if not subjects:
        return {}
    latest: dict[tuple[str, str], FindingRow] = {}  # the last incident's acknowledgement counts
    ordered = resolved.where(col(FindingRow.subject).in_(subjects)).order_by(
        col(FindingRow.resolved_at), col(FindingRow.id)
    )
    for row in session.exec(ordered):
        latest[(row.kind, row.subject)] = row
    return {
        key: row
        for key, row in latest.items()
        if row.resolved_by == "auto" and row.ack_until is not None and row.ack_until > now
    }


def _opened(
    site: str,
    finding: Finding,
    proof: dict[str, Any],
    run_id: int,
    now: datetime,
    acknowledged: FindingRow | None,
) -> FindingRow:
    """A new finding's row, acknowledged when an earlier incident's acknowledgement still runs."""
    row = FindingRow(
        site=site,
        kind=finding.kind.value,
        subject=finding.subject,
        ip=finding.ip,
        mac=finding.mac,
        port=finding.port,
        severity=finding.severity.value,
        state=FindingState.OPEN.value,
        summary=finding.summary,
        detail=dict(finding.detail),
        evidence={"first": proof, "last": proof},
        first_seen_at=now,
        first_run_id=run_id,
        last_seen_at=now,
        last_run_id=run_id,
        report_due_at=_due(finding.severity, now),
    )
    if acknowledged is not None:
        row.state = FindingState.ACKNOWLEDGED.value
        row.ack_note, row.ack_by = acknowledged.ack_note, acknowledged.ack_by
        row.ack_at, row.ack_until = acknowledged.ack_at, acknowledged.ack_until
    return row


def _take_turn(session: Session, site: str) -> None:
    """Write a site's findings one writer at a time, until the transaction ends (PostgreSQL).

    A watcher, which takes no scan lock, beside a scan (or two watchers) both found a new finding
    missing and both opened it: the second died on uq_finding_live. SQLite's writers take turns
    already (each holds the file's write lock).
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"ipguard-findings:{site}".encode()).digest()
        turn = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(turn)))


def sync(
    session: Session,
    *,
    site: str,
    run_id: int,
    now: datetime,
    findings: Sequence[Finding],
    subnets: Sequence[str],
    phases: frozenset[Phase],
    evidence: Callable[[Finding], dict[str, Any]],
    partial_hosts: frozenset[str] = frozenset(),
    snmp_polled: frozenset[str] = frozenset(),
    answered: Answered | None = None,
) -> SyncOutcome:
    """Record a complete run's findings: open new ones, update seen ones, resolve vanished ones.

    `snmp_polled` names the SNMP devices this run read completely: a finding raised from a
    device's data alone is resolved only by a run that polled that device. `answered`: the
    hosts the per-host phases looked at (None: every host in the subnets); a finding of those
    phases (or out-of-pool) about another host is not resolved.
    """
    outcome = SyncOutcome()
    _take_turn(session, site)
    query = select(FindingRow).where(
        FindingRow.site == site, FindingRow.state != FindingState.RESOLVED.value
    )
    if not phases:
        # Nothing can be resolved without a phase (a watcher's batch): only the rows this batch
        # touches are needed, not every live finding of the site.
        query = query.where(col(FindingRow.subject).in_({f.subject for f in findings}))
    live = {(row.kind, row.subject): row for row in session.exec(query)}
    acks: dict[tuple[str, str], FindingRow] | None = None  # read once a finding is new
    for finding in findings:
        key = (finding.kind.value, finding.subject)
        row = live.pop(key, None)
        proof = {"run_id": run_id, **evidence(finding)}
        if row is None:
            if acks is None:
                acks = _standing_acks(session, site, now)
            row = _opened(site, finding, proof, run_id, now, acks.get(key))
            outcome.new.append(row)
        else:
            if finding.severity > Severity(row.severity):
                outcome.escalated.append(row)
            row.severity = finding.severity.value
            row.summary, row.detail = finding.summary, _detail_kept(row.detail, finding.detail)
            row.evidence = {"first": row.evidence.get("first", proof), "last": proof}
            row.last_seen_at, row.last_run_id = now, run_id
            row.report_due_at = row.report_due_at or _due(finding.severity, row.first_seen_at)
            if _ack_expired(row, now):
                row.state = FindingState.OPEN.value
            outcome.seen_again.append(row)
        session.add(row)

    networks = [ipaddress.ip_network(subnet) for subnet in subnets]
    link = _link_of(session, run_id)
    for row in live.values():
        # A DHCP server or a router advertisement is heard on the link, whatever its address (a
        # home router's 192.168.1.1), and only there: by a run on the link it was last heard on.
        same_link = None  # unknown: that run was pruned
        if row.kind in LINK_SCOPED:
            where = _link_of(session, row.last_run_id)
            same_link = None if where is None or link is None else where == link
        if covered(row, networks, phases, partial_hosts, snmp_polled, answered, same_link):
            row.state = FindingState.RESOLVED.value
            row.resolved_at, row.resolved_run_id, row.resolved_by = now, run_id, "auto"
            session.add(row)
            outcome.resolved.append(row)
    session.flush()
    return outcome


def _ack_expired(row: FindingRow, now: datetime) -> bool:
    return (
        row.state == FindingState.ACKNOWLEDGED.value
        and row.ack_until is not None
        and row.ack_until <= now
    )


def is_suppressed(row: FindingRow, now: datetime) -> bool:
    """Acknowledged (and the acknowledgement not expired): kept out of exit codes and alerts."""
    return row.state == FindingState.ACKNOWLEDGED.value and not _ack_expired(row, now)


def first_seen(
    session: Session,
    site: str,
    *,
    now: datetime | None = None,
    returning_within: timedelta = timedelta(0),
) -> dict[tuple[str, str], datetime]:
    """When each live finding of a site was first seen, keyed by (kind, subject).

    For unregistered-host it is when the host's stay began (`started`), and a host that left no
    longer than `returning_within` before `now` (its finding resolved since) is still on that
    stay: an unregistered laptop switched off every night is not new every morning, and its
    grace period runs on.
    """
    query = select(FindingRow).where(
        FindingRow.site == site, FindingRow.state != FindingState.RESOLVED.value
    )
    first = {(row.kind, row.subject): started(row) for row in session.exec(query)}
    if now is None or returning_within <= timedelta(0):
        return first
    left = select(FindingRow).where(
        FindingRow.site == site,
        FindingRow.kind == FindingKind.UNREGISTERED_HOST.value,
        FindingRow.state == FindingState.RESOLVED.value,
        col(FindingRow.resolved_at) >= now - returning_within,
    )
    live = set(first)
    for row in session.exec(left.order_by(col(FindingRow.resolved_at))):
        key = (row.kind, row.subject)
        if key not in live:  # the stay of the last incident resolved
            first[key] = started(row)
    return first


def started(row: FindingRow) -> datetime:
    """When the finding's subject was first seen: its own first sighting, or for an
    unregistered host the start of a stay its finding continues (`detail.first_seen`)."""
    begun = row.first_seen_at
    carried = (row.detail or {}).get("first_seen")
    if row.kind != FindingKind.UNREGISTERED_HOST.value or not isinstance(carried, str):
        return begun
    try:
        earlier = datetime.fromisoformat(carried)
    except ValueError:
        return begun
    if earlier.tzinfo is None:
        earlier = earlier.replace(tzinfo=UTC)
    return min(begun, earlier)


def list_findings(
    session: Session,
    *,
    site: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    live_only: bool = False,
    address: str | None = None,
) -> list[FindingRow]:
    """Findings, most severe first, then by address (IPv4 before IPv6, numerically), then oldest
    first; `live_only` leaves out resolved ones, `address` keeps those of one IP or MAC (its
    canonical text). An IPv6 address also keeps the findings whose detail names it: a MAC's
    privacy addresses are folded into its one finding, at its IPv4 or link-local address."""
    query = select(FindingRow)
    if live_only:
        query = query.where(FindingRow.state != FindingState.RESOLVED.value)
    if site:
        query = query.where(FindingRow.site == site)
    if state:
        query = query.where(FindingRow.state == state)
    if kind:
        query = query.where(FindingRow.kind == kind)
    if address:
        matches = [col(FindingRow.ip) == address, col(FindingRow.mac) == address]
        if _is_ipv6(address):  # hex digits and colons: nothing LIKE reads as a wildcard
            matches.append(sa.cast(col(FindingRow.detail), sa.Text).like(f'%"{address}"%'))
        query = query.where(sa.or_(*matches))
    rows = list(session.exec(query.order_by(col(FindingRow.id))))
    return sorted(
        rows,
        key=lambda row: (-Severity(row.severity).rank, ip_sort_key(row.ip), row.mac or ""),
    )


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def get(session: Session, finding_id: int) -> FindingRow:
    """One finding by id."""
    # An id past the database's 64-bit integers names nothing (and the driver would overflow).
    row = session.get(FindingRow, finding_id) if 0 < finding_id < 2**63 else None
    if row is None:
        raise NotFound(f"no finding {finding_id}; `ipguard findings list` shows them")
    return row


def acknowledge(
    session: Session,
    finding_id: int,
    *,
    note: str,
    until: datetime | None,
    actor: str,
    now: datetime,
) -> FindingRow:
    """Acknowledge a live finding: it stays listed but stops failing scans and alerting."""

    def ack(row: FindingRow) -> None:
        row.state = FindingState.ACKNOWLEDGED.value
        row.ack_note, row.ack_by, row.ack_at, row.ack_until = note, actor, now, until
        if until is not None:  # when it ends, the finding is back: in the alerts too
            row.alerted_severity = None

    return _change(session, finding_id, "finding.ack", ack, actor=actor, now=now)


def resolve(session: Session, finding_id: int, *, actor: str, now: datetime) -> FindingRow:
    """Resolve a finding by hand (if it is seen again, it returns as a new finding)."""

    def close(row: FindingRow) -> None:
        row.state = FindingState.RESOLVED.value
        row.resolved_at, row.resolved_by = now, actor

    return _change(session, finding_id, "finding.resolve", close, actor=actor, now=now)


def _change(
    session: Session,
    finding_id: int,
    action: str,
    apply: Callable[[FindingRow], None],
    *,
    actor: str,
    now: datetime,
) -> FindingRow:
    """A person's change to a live finding's lifecycle, recorded in the audit trail."""
    row = get(session, finding_id)
    if row.state == FindingState.RESOLVED.value:
        raise Conflict(f"finding {finding_id} is already resolved")
    before = _lifecycle(row)
    apply(row)
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="finding",
        key=str(finding_id),
        alt_key=row.ip or "",
        before=before,
        after=_lifecycle(row),
        at=now,
    )
    return row


def _lifecycle(row: FindingRow) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "kind": row.kind,
        "subject": row.subject,
        "state": row.state,
        "ack_note": row.ack_note,
        "ack_until": when(row.ack_until),
        "resolved_at": when(row.resolved_at),
    }


def failing(session: Session, *, site: str, threshold: Severity, now: datetime) -> list[FindingRow]:
    """Live, unsuppressed findings of a site at or above the threshold."""
    return [
        row
        for row in list_findings(session, site=site, live_only=True)
        if not is_suppressed(row, now) and Severity(row.severity) >= threshold
    ]


def mark_alerted(session: Session, rows: Sequence[FindingRow]) -> None:
    """Remember the severity each finding was alerted at: it is sent again only if it escalates."""
    severity = {row.id: row.severity for row in rows}
    for row in session.exec(select(FindingRow).where(col(FindingRow.id).in_(list(severity)))):
        row.alerted_severity = severity[row.id]
        session.add(row)


def slowest_dhcp_offer(
    session: Session, site: str, link: tuple[str, str], *, since: datetime
) -> float | None:
    """How long the slowest rogue DHCP server heard on `link` (sensor, interface) since `since`
    took to offer, in seconds.

    From the `seconds_to_offer` of the site's rogue-dhcp findings last heard on that link (open
    or not: a server missed once is the one to listen for), each server's first offer; None when
    none is on record. Another link's servers never reach this one's DISCOVER.
    """
    sensor, interface = link
    query = (
        select(FindingRow)
        .join(ScanRun, col(ScanRun.id) == col(FindingRow.last_run_id))
        .where(
            FindingRow.site == site,
            FindingRow.kind == FindingKind.ROGUE_DHCP.value,
            FindingRow.last_seen_at >= since,
            ScanRun.sensor == sensor,
            ScanRun.interface == interface,
        )
    )
    first = [
        float(latencies[0])
        for row in session.exec(query)
        if isinstance(latencies := row.detail.get("seconds_to_offer"), list)
        and latencies
        and isinstance(latencies[0], int | float)
    ]
    # A figure that is no time (NaN, negative) is not one to wait for: NaN would also win max().
    return max((seconds for seconds in first if 0 <= seconds < math.inf), default=None)
