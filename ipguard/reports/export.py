"""The report as data: a JSON document, or one CSV table with a `section` column.

CSV cells that a spreadsheet would run as formulas (= + - @, tab, CR) are neutralised with the
ledger export's own rule (`escape_cell`); control characters from the network are shown as escapes.
The CSV starts with a UTF-8 BOM, as the ledger export does, so that Excel reads its Chinese text as
UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from ipguard.escape import json_text, visible
from ipguard.ledger.files import escape_cell
from ipguard.reports.serialize import utc_text
from ipguard.reports.summary import Summary

CSV_COLUMNS = (
    "section",
    "time",
    "site",
    "kind",
    "severity",
    "state",
    "ip",
    "mac",
    "port",
    "value",
    "actor",
    "detail",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def as_json(summary: Summary) -> dict[str, Any]:
    """The report as one JSON-ready document (times UTC ISO 8601 with Z)."""
    return {
        "since": utc_text(summary.since),
        "until": utc_text(summary.until),
        "site": summary.site,
        "generated_at": utc_text(summary.generated_at),
        "totals": dict(summary.totals),
        "runs": [_plain(asdict(run)) for run in summary.runs],
        "findings_by_kind": [asdict(count) for count in summary.counts],
        "open_findings": [_plain(asdict(item)) for item in summary.open_findings],
        "ledger_changes": [_plain(asdict(change)) for change in summary.ledger_changes],
        "unregistered_hosts": [_plain(asdict(host)) for host in summary.unregistered],
    }


def render_json(summary: Summary) -> str:
    """The JSON document as text (non-ASCII kept readable, control characters escaped)."""
    return json_text(as_json(summary)) + "\n"


def csv_rows(summary: Summary) -> Iterator[dict[str, Any]]:
    """Every line of the CSV table, section by section."""
    for run in summary.runs:
        yield {
            "section": "run",
            "time": utc_text(run.started_at),
            "site": run.site,
            "state": run.status,
            "value": run.hosts_seen,
            "detail": f"run {run.id}; open findings after it: "
            + ("" if run.open_findings is None else str(run.open_findings)),
        }
    for count in summary.counts:
        for section in ("opened", "resolved", "overdue"):
            if getattr(count, section):
                yield {
                    "section": f"findings-{section}",
                    "site": summary.site or "",
                    "kind": count.kind,
                    "severity": count.severity,
                    "value": getattr(count, section),
                }
    for item in summary.open_findings:
        yield {
            "section": "open-finding",
            "time": utc_text(item.first_seen),
            "site": item.site,
            "kind": item.kind,
            "severity": item.severity,
            "state": item.state + (" (overdue)" if item.overdue else ""),
            "ip": item.ip,
            "mac": item.mac,
            "port": item.port,
            "value": item.id,
            "detail": item.summary,
        }
    for host in summary.unregistered:
        yield {
            "section": "unregistered-host",
            "time": utc_text(host.first_seen),
            "site": host.site,
            "state": host.state,
            "ip": host.ip,
            "mac": host.mac,
            "value": host.finding_id,
            "detail": f"last seen {utc_text(host.last_seen)}"
            + (f"; vendor {host.vendor}" if host.vendor else ""),
        }
    for change in summary.ledger_changes:
        yield {
            "section": "ledger-change",
            "time": utc_text(change.at),
            "state": change.action,
            "ip": change.key,
            "actor": change.actor,
            "detail": "; ".join(
                f"{item.field}: {item.before} -> {item.after}" for item in change.changes
            ),
        }


BOM = "\ufeff"


def render_csv(summary: Summary) -> str:
    """The CSV table as text, formula-safe, after a BOM."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(summary):
        writer.writerow([escape_cell(visible(_cell(row.get(column)))) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
