"""The report's sections, built once from a `Summary` and rendered twice (HTML and Markdown).

Everything a reader sees is decided here: titles, the period line, the overview numbers, the
tables' headings and cells, each open finding with its detail and evidence as sentences. The
renderers only lay it out and escape it for their format. Values are plain text; a cell's `style`
is a hint ("severity", "overdue", "num") that a renderer may show or ignore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import groupby

from ipguard import __version__
from ipguard.localtime import offset_text, shown, zone_name
from ipguard.reports.evidence import EvidenceGroup, detail_lines, groups
from ipguard.reports.summary import LedgerChange, OpenFinding, Summary

OVERVIEW = (
    ("runs_complete", "complete scan runs"),
    ("runs_failed", "failed or aborted runs"),
    ("max_hosts_seen", "most hosts seen in a run"),
    ("opened", "findings opened"),
    ("resolved", "findings resolved"),
    ("overdue", "reports overdue (24 h)"),
    ("open_now", "findings open at the period's end"),
    ("unregistered_hosts", "unregistered hosts"),
    ("ledger_changes", "ledger changes"),
)
BATCH = 4  # this many audit entries of one actor and action in one minute: one row (an import)
BATCH_KEYS = 40  # records named in such a row; the JSON and CSV reports name them all
FOOTER = (
    "Times are {zone}. A finding is overdue when it was neither acknowledged nor resolved within "
    "24 hours of being first seen (high and critical). The audit trail is never pruned; scan "
    "history is kept for the configured retention. Bulk ledger changes (imports) are one row "
    "here; the JSON and CSV reports list every record."
)


def minute(value: datetime | None) -> str:
    """A time as the report's tables show it: `YYYY-MM-DD HH:MM`, in the zone it carries.

    In the hour the clocks repeat when summer time ends, that names two instants: there the
    offset follows (`2026-11-01 01:30 -04:00`, then `… -05:00`).
    """
    if value is None:
        return ""
    text = value.strftime("%Y-%m-%d %H:%M")
    if value.tzinfo is not None and value.replace(fold=1 - value.fold).utcoffset() != (
        value.utcoffset()
    ):
        text += f" {offset_text(value)}"
    return text


def _zone_words(zone: tzinfo) -> str:
    """How the footer names the report's zone: `UTC`, or `Asia/Shanghai local time`."""
    name = zone_name(zone)
    return name if name == "UTC" else f"{name} local time"


@dataclass(frozen=True)
class Cell:
    """One table cell: one or more lines of plain text, and a style hint."""

    lines: tuple[str, ...]
    style: str = ""  # "", "num", "severity", "overdue", "nowrap"

    @property
    def text(self) -> str:
        """The lines on one line."""
        return "; ".join(self.lines)


def cell(value: object, style: str = "") -> Cell:
    """A one-line cell (None is empty)."""
    return Cell(("" if value is None else str(value),), style)


@dataclass(frozen=True)
class Table:
    """A heading row and body rows of cells."""

    head: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class FindingItem:
    """An open finding as the report shows it."""

    id: int
    severity: str
    kind: str
    site: str
    ip: str
    mac: str
    port: str
    state: str
    first_seen: str
    report_due: str
    overdue: bool
    summary: str
    ack_note: str
    detail: tuple[str, ...]
    evidence: tuple[EvidenceGroup, ...]

    @property
    def address(self) -> tuple[str, ...]:
        """IP, MAC and port: those the finding has."""
        return tuple(part for part in (self.ip, self.mac, self.port) if part)


@dataclass(frozen=True)
class Report:
    """Everything the report says, in reading order."""

    title: str
    period: str
    generated: str
    site: str | None
    overview: tuple[tuple[str, int], ...]
    hosts_chart: tuple[tuple[datetime, int], ...]
    open_chart: tuple[tuple[datetime, int], ...]
    days: Table
    counts: Table
    findings: tuple[FindingItem, ...]
    unregistered: Table
    changes: Table
    footer: str = FOOTER.format(zone="UTC")
    zone: str = "UTC"  # the zone the report's times are in, as the footer names it


def build(summary: Summary) -> Report:
    """The report's sections from its content, its times in the report's zone."""
    where = f" — site {summary.site}" if summary.site else ""
    zone = summary.zone
    name = zone_name(zone)

    def at(value: datetime | None) -> str:
        return minute(value.astimezone(zone) if value is not None else None)

    complete = [run for run in summary.runs if run.open_findings is not None]
    return Report(
        title=f"ipguard report {summary.first_day} to {summary.last_day}{where}",
        period=f"Period {shown(summary.since, zone)} to {shown(summary.until, zone)} "
        f"(end excluded){where}.",
        generated=f"Generated {shown(summary.generated_at, zone)} by ipguard {__version__}.",
        site=summary.site,
        overview=tuple((label, int(summary.totals.get(key, 0))) for key, label in OVERVIEW),
        hosts_chart=tuple((run.started_at.astimezone(zone), run.hosts_seen) for run in complete),
        open_chart=tuple(
            (run.started_at.astimezone(zone), run.open_findings or 0) for run in complete
        ),
        days=_table(
            (f"day ({name})", "runs", "complete", "most hosts seen", "open findings at day end"),
            (
                (day.day, day.runs, day.complete, day.max_hosts, day.open_findings)
                for day in summary.days
            ),
            numeric=frozenset({1, 2, 3, 4}),
        ),
        counts=Table(
            ("kind", "severity", "opened", "resolved", "overdue"),
            tuple(
                (
                    cell(count.kind, "nowrap"),
                    cell(count.severity, "severity"),
                    cell(count.opened, "num"),
                    cell(count.resolved, "num"),
                    cell(count.overdue, "num overdue" if count.overdue else "num"),
                )
                for count in summary.counts
            ),
            numeric=frozenset({2, 3, 4}),
        ),
        findings=tuple(_finding(item, zone) for item in summary.open_findings),
        unregistered=_table(
            ("first seen", "last seen", "ip", "mac", "vendor", "finding", "state"),
            (
                (
                    at(host.first_seen),
                    at(host.last_seen),
                    host.ip,
                    host.mac,
                    host.vendor or ("randomized MAC" if host.randomized else ""),
                    host.finding_id,
                    host.state,
                )
                for host in summary.unregistered
            ),
            nowrap=frozenset({0, 1, 2, 3}),
        ),
        changes=Table(
            (f"time ({name})", "actor", "action", "record", "changes"),
            tuple(_change_row(batch, at) for batch in _batches(summary.ledger_changes)),
        ),
        footer=FOOTER.format(zone=_zone_words(zone)),
        zone=_zone_words(zone),
    )


def _table(
    head: tuple[str, ...],
    rows: Iterable[Sequence[object]],
    *,
    numeric: frozenset[int] = frozenset(),
    nowrap: frozenset[int] = frozenset(),
) -> Table:
    def style(index: int) -> str:
        return "num" if index in numeric else "nowrap" if index in nowrap else ""

    body = tuple(tuple(cell(value, style(i)) for i, value in enumerate(row)) for row in rows)
    return Table(head, body, numeric)


def _batches(changes: Sequence[LedgerChange]) -> list[list[LedgerChange]]:
    """Audit entries grouped: a bulk change (one actor and action, the same minute) is one batch;
    fewer than BATCH entries read better one by one."""
    batches: list[list[LedgerChange]] = []
    for _, group in groupby(changes, key=lambda c: (c.actor, c.action, minute(c.at))):
        batch = list(group)
        batches += [batch] if len(batch) >= BATCH else [[change] for change in batch]
    return batches


def _change_row(batch: list[LedgerChange], at: Callable[[datetime], str]) -> tuple[Cell, ...]:
    first = batch[0]
    if len(batch) == 1:
        record = first.key
        lines = tuple(
            f"{item.field}: {item.before or '—'} → {item.after or '—'}" for item in first.changes
        )
    else:
        record = f"{len(batch)} records"
        fields = dict.fromkeys(item.field for change in batch for item in change.changes)
        keys = [change.key for change in batch[:BATCH_KEYS]]
        if len(batch) > BATCH_KEYS:
            keys.append(f"… {len(batch) - BATCH_KEYS} more")
        lines = ("records: " + ", ".join(keys), "fields: " + ", ".join(fields))
    return (
        cell(at(first.at), "nowrap"),
        cell(first.actor),
        cell(first.action),
        cell(record),
        Cell(lines),
    )


def _finding(item: OpenFinding, zone: tzinfo) -> FindingItem:
    return FindingItem(
        id=item.id,
        severity=item.severity,
        kind=item.kind,
        site=item.site,
        ip=item.ip or "",
        mac=item.mac or "",
        port=item.port or "",
        state=item.state,
        first_seen=minute(item.first_seen.astimezone(zone)),
        report_due=minute(item.report_due_at.astimezone(zone) if item.report_due_at else None),
        overdue=item.overdue,
        summary=item.summary,
        ack_note=item.ack_note,
        detail=tuple(detail_lines(item.detail, zone)),
        evidence=tuple(groups(item.evidence, zone=zone)),
    )
