"""Runs and findings as the JSON documents DESIGN.md fixes (`scan --format json`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.model import FindingState, Severity


def utc_text(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def run_json(run: ScanRun) -> dict[str, Any]:
    """A run as `{"id", "site", "interface", "subnets", "status", "started_at", …}`."""
    return {
        "id": run.id,
        "site": run.site,
        "interface": run.interface,
        "subnets": list(run.subnets),
        "status": run.status,
        "started_at": utc_text(run.started_at),
        "finished_at": utc_text(run.finished_at),
        "hosts_seen": int(run.counts.get("hosts_seen", 0)),
    }


def finding_json(row: FindingRow) -> dict[str, Any]:
    """A finding as DESIGN.md's `findings` items."""
    return {
        "id": row.id,
        "kind": row.kind,
        "severity": row.severity,
        "state": row.state,
        "ip": row.ip,
        "mac": row.mac,
        "port": row.port,
        "first_seen": utc_text(row.first_seen_at),
        "last_seen": utc_text(row.last_seen_at),
        "report_due_at": utc_text(row.report_due_at),
        "summary": row.summary,
        "detail": row.detail,
    }


def is_overdue(row: FindingRow, now: datetime) -> bool:
    """Past its report-due time and nobody acknowledged it."""
    return (
        row.state == FindingState.OPEN.value
        and row.report_due_at is not None
        and row.report_due_at <= now
    )


def summary_json(rows: Sequence[FindingRow]) -> dict[str, dict[str, int]]:
    """Counts by kind and by severity (most severe first)."""
    by_kind: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for row in rows:
        by_kind[row.kind] = by_kind.get(row.kind, 0) + 1
        by_severity[row.severity] = by_severity.get(row.severity, 0) + 1
    return {
        "by_kind": dict(sorted(by_kind.items())),
        "by_severity": dict(sorted(by_severity.items(), key=lambda item: -Severity(item[0]).rank)),
    }


def scan_json(run: ScanRun, live: Sequence[FindingRow]) -> dict[str, Any]:
    """The whole `scan --format json` document."""
    return {
        "run": run_json(run),
        "findings": [finding_json(row) for row in live],
        "summary": summary_json(live),
    }
