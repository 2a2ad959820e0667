"""The periodic report's content: the administrators' monthly summary.

`build(records, since, until)` turns what the ledger holds for the period
(`ipguard.ledger.reporting.period_records`, which owns the queries) into a plain `Summary` (no
database objects), which the renderers (HTML, Markdown, JSON, CSV) turn into files. The period is
half-open, `since <= t < until` (UTC instants); its days are those of `zone`, the administrators'
time zone (`[policy] timezone`), in which the renderers also show every time.

- runs: every scan run that started in the period (hosts seen, findings open after it);
- counts: findings opened, resolved and overdue in the period, by kind and severity; a finding is
  overdue when its report-due time (24 h after first seen, for high and critical) fell in the
  period and passed before anyone acknowledged or resolved it;
- open findings: those open at the period's end (now, for a period up to now), in the state they
  had then, with the evidence that raised them: a monthly report made on the 2nd lists neither
  the findings of the 1st nor loses one resolved since;
- ledger changes: the audit trail of the period;
- unregistered hosts: unregistered-host findings whose sightings overlap the period, by first seen.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from ipguard.ledger.reporting import PeriodRecords
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.localtime import local_day
from ipguard.model import FindingKind, FindingState, RunStatus, Severity


@dataclass(frozen=True)
class RunPoint:
    """One scan run in the period."""

    id: int
    site: str
    started_at: datetime
    status: str
    hosts_seen: int
    open_findings: int | None  # live after the run; None when the run did not complete


@dataclass(frozen=True)
class DayRuns:
    """The runs of one local day (the report's zone), folded together."""

    day: date
    runs: int
    complete: int
    max_hosts: int
    open_findings: int | None  # after the day's last complete run


@dataclass(frozen=True)
class FindingCount:
    """Findings of one kind and severity opened, resolved and overdue in the period."""

    kind: str
    severity: str
    opened: int = 0
    resolved: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class OpenFinding:
    """A finding not resolved at the time of the report, with its evidence."""

    id: int
    site: str
    kind: str
    severity: str
    state: str
    ip: str | None
    mac: str | None
    port: str | None
    summary: str
    first_seen: datetime
    last_seen: datetime
    report_due_at: datetime | None
    overdue: bool
    ack_note: str
    detail: Mapping[str, Any]
    evidence: Mapping[str, Any]  # {"first": {...}, "last": {...}} as the finding row keeps it


@dataclass(frozen=True)
class FieldChange:
    """One field of a ledger record before and after a change."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class LedgerChange:
    """One audit entry of the period."""

    at: datetime
    actor: str
    action: str
    entity: str
    key: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class UnregisteredHost:
    """An address/MAC pair no ledger record covers, seen in the period."""

    finding_id: int
    site: str
    ip: str | None
    mac: str | None
    vendor: str
    first_seen: datetime
    last_seen: datetime
    state: str
    randomized: bool = False  # a locally administered MAC (a phone's per-network address)


@dataclass(frozen=True)
class Summary:
    """Everything the report says about one period (and, optionally, one site)."""

    since: datetime
    until: datetime
    site: str | None
    generated_at: datetime
    runs: tuple[RunPoint, ...] = ()
    counts: tuple[FindingCount, ...] = ()
    open_findings: tuple[OpenFinding, ...] = ()
    ledger_changes: tuple[LedgerChange, ...] = ()
    unregistered: tuple[UnregisteredHost, ...] = ()
    totals: Mapping[str, int] = field(default_factory=dict)
    zone: tzinfo = UTC  # the administrators' calendar: the report's days and shown times

    @property
    def first_day(self) -> date:
        """The local day the period starts on."""
        return local_day(self.since, self.zone)

    @property
    def last_day(self) -> date:
        """The last local day the period covers (its end is excluded)."""
        return local_day(self.until - timedelta(microseconds=1), self.zone)

    @property
    def days(self) -> list[DayRuns]:
        """The runs folded by local day, oldest first."""
        by_day: dict[date, list[RunPoint]] = defaultdict(list)
        for run in self.runs:
            by_day[local_day(run.started_at, self.zone)].append(run)
        days = []
        for day, runs in sorted(by_day.items()):
            complete = [run for run in runs if run.status == RunStatus.COMPLETE.value]
            days.append(
                DayRuns(
                    day=day,
                    runs=len(runs),
                    complete=len(complete),
                    max_hosts=max((run.hosts_seen for run in complete), default=0),
                    open_findings=complete[-1].open_findings if complete else None,
                )
            )
        return days


def build(
    records: PeriodRecords,
    since: datetime,
    until: datetime,
    *,
    now: datetime,
    site: str | None = None,
    zone: tzinfo = UTC,
) -> Summary:
    """The report's content for `since <= t < until` (times timezone-aware UTC)."""
    rows = list(records.findings)
    runs = _runs(records.runs, rows)
    counts = _counts(rows, since, until, now)
    end = min(now, until)
    open_now = [_open(row, end) for row in rows if _open_at(row, end)]
    open_now.sort(key=lambda item: (-Severity(item.severity).rank, item.first_seen, item.id))
    changes = [_change(entry) for entry in records.audit]
    unregistered = [
        _unregistered(row, _state_at(row, end) if _open_at(row, end) else row.state)
        for row in rows
        if row.kind == FindingKind.UNREGISTERED_HOST.value
        and row.first_seen_at < until
        and row.last_seen_at >= since
    ]
    # Real network cards first, then the randomized MACs of phones and laptops, grouped.
    unregistered.sort(key=lambda host: (host.randomized, host.first_seen, host.finding_id))
    totals = {
        "runs": len(runs),
        "runs_complete": sum(1 for run in runs if run.status == RunStatus.COMPLETE.value),
        "runs_failed": sum(1 for run in runs if run.status != RunStatus.COMPLETE.value),
        "max_hosts_seen": max((run.hosts_seen for run in runs), default=0),
        "opened": sum(count.opened for count in counts),
        "resolved": sum(count.resolved for count in counts),
        "overdue": sum(count.overdue for count in counts),
        "open_now": len(open_now),
        "ledger_changes": len(changes),
        "unregistered_hosts": len(unregistered),
    }
    return Summary(
        since=since,
        until=until,
        site=site,
        generated_at=now,
        runs=tuple(runs),
        counts=tuple(counts),
        open_findings=tuple(open_now),
        ledger_changes=tuple(changes),
        unregistered=tuple(unregistered),
        totals=totals,
        zone=zone,
    )


def _runs(runs: Sequence[ScanRun], rows: list[FindingRow]) -> list[RunPoint]:
    open_at = _open_counter(rows)
    points = []
    for run in runs:
        complete = run.status == RunStatus.COMPLETE.value and run.finished_at is not None
        points.append(
            RunPoint(
                id=run.id or 0,
                site=run.site,
                started_at=run.started_at,
                status=run.status,
                hosts_seen=int(run.counts.get("hosts_seen", 0)),
                open_findings=open_at(run.site, run.finished_at) if complete else None,
            )
        )
    return points


def _open_counter(rows: list[FindingRow]) -> Callable[[str, datetime | None], int]:
    """How many findings of a site were live at a moment (first seen, not yet resolved)."""
    starts: dict[str, list[datetime]] = defaultdict(list)
    ends: dict[str, list[datetime]] = defaultdict(list)
    for row in rows:
        starts[row.site].append(row.first_seen_at)
        if row.resolved_at is not None:
            ends[row.site].append(row.resolved_at)
    for moments in (*starts.values(), *ends.values()):
        moments.sort()

    def count(site: str, moment: datetime | None) -> int:
        if moment is None:
            return 0
        return bisect_right(starts[site], moment) - bisect_right(ends[site], moment)

    return count


def _counts(
    rows: list[FindingRow], since: datetime, until: datetime, now: datetime
) -> list[FindingCount]:
    tally: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"opened": 0, "resolved": 0, "overdue": 0}
    )

    def within(moment: datetime | None) -> bool:
        return moment is not None and since <= moment < until

    for row in rows:
        key = (row.kind, row.severity)
        if within(row.first_seen_at):
            tally[key]["opened"] += 1
        if row.state == FindingState.RESOLVED.value and within(row.resolved_at):
            tally[key]["resolved"] += 1
        if _missed_deadline(row, now) and within(row.report_due_at):
            tally[key]["overdue"] += 1
    order = {kind.value: index for index, kind in enumerate(FindingKind)}
    return [
        FindingCount(kind=kind, severity=severity, **values)
        for (kind, severity), values in sorted(
            tally.items(),
            key=lambda item: (-Severity(item[0][1]).rank, order.get(item[0][0], 99), item[0][0]),
        )
    ]


def _missed_deadline(row: FindingRow, now: datetime) -> bool:
    """Its report-due time passed before anyone acknowledged or resolved it."""
    due = row.report_due_at
    if due is None or due > now:
        return False
    handled = [moment for moment in (row.ack_at, row.resolved_at) if moment is not None]
    return not any(moment <= due for moment in handled)


def _open_at(row: FindingRow, end: datetime) -> bool:
    """Whether the finding was live at `end`: first seen before it, not resolved by then."""
    if row.first_seen_at >= end:
        return False
    if row.state != FindingState.RESOLVED.value:
        return True
    return row.resolved_at is not None and row.resolved_at >= end


def _state_at(row: FindingRow, end: datetime) -> str:
    """The state the finding had at `end` (before a later acknowledgement or resolution)."""
    acknowledged = row.ack_at is not None and row.ack_at < end
    if row.state == FindingState.RESOLVED.value:
        lasting = row.ack_until is None or row.ack_until > end
        if acknowledged and lasting:
            return FindingState.ACKNOWLEDGED.value
        return FindingState.OPEN.value
    if row.state == FindingState.ACKNOWLEDGED.value and not acknowledged:
        return FindingState.OPEN.value
    return row.state


def _open(row: FindingRow, end: datetime) -> OpenFinding:
    state = _state_at(row, end)
    return OpenFinding(
        id=row.id or 0,
        site=row.site,
        kind=row.kind,
        severity=row.severity,
        state=state,
        ip=row.ip,
        mac=row.mac,
        port=row.port,
        summary=row.summary,
        first_seen=row.first_seen_at,
        last_seen=row.last_seen_at,
        report_due_at=row.report_due_at,
        overdue=(
            state == FindingState.OPEN.value
            and row.report_due_at is not None
            and row.report_due_at <= end
        ),
        ack_note=row.ack_note,
        detail=dict(row.detail or {}),
        evidence=dict(row.evidence or {}),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(item) for item in value)
    return str(value)


def _change(entry: Any) -> LedgerChange:
    before = entry.before or {}
    after = entry.after or {}
    changes = tuple(
        FieldChange(name, _text(before.get(name)), _text(after.get(name)))
        for name in dict.fromkeys([*before, *after])
        if _text(before.get(name)) != _text(after.get(name))
    )
    return LedgerChange(
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        entity=entry.entity,
        key=entry.key,
        changes=changes,
    )


def _unregistered(row: FindingRow, state: str) -> UnregisteredHost:
    vendor = ""
    for moment in ("first", "last"):
        for seen in (row.evidence or {}).get(moment, {}).get("observations", []):
            if isinstance(seen, dict) and seen.get("vendor"):
                vendor = str(seen["vendor"])
                break
        if vendor:
            break
    return UnregisteredHost(
        finding_id=row.id or 0,
        site=row.site,
        ip=row.ip,
        mac=row.mac,
        vendor=vendor,
        first_seen=row.first_seen_at,
        last_seen=row.last_seen_at,
        state=state,
        randomized=(row.detail or {}).get("randomized") is True,
    )
