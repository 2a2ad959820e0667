"""The demo's report: `make demo`'s scan of the demo lab (15 findings), as `report --format json`
wrote it, read back into a `Summary` for the print and font tests (no lab needed to render it)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ipguard.reports.summary import (
    FieldChange,
    FindingCount,
    LedgerChange,
    OpenFinding,
    RunPoint,
    Summary,
    UnregisteredHost,
)

DEMO_REPORT = Path(__file__).with_name("demo-report.json")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _times(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**values, **{name: _time(values[name]) for name in names}}


def demo_summary() -> Summary:
    """The demo report's content."""
    data = json.loads(DEMO_REPORT.read_text(encoding="utf-8"))
    since, until, generated = (_time(data[key]) for key in ("since", "until", "generated_at"))
    assert since is not None and until is not None and generated is not None
    return Summary(
        since=since,
        until=until,
        site=data["site"],
        generated_at=generated,
        runs=tuple(RunPoint(**_times(run, "started_at")) for run in data["runs"]),
        counts=tuple(FindingCount(**count) for count in data["findings_by_kind"]),
        open_findings=tuple(
            OpenFinding(**_times(item, "first_seen", "last_seen", "report_due_at"))
            for item in data["open_findings"]
        ),
        ledger_changes=tuple(
            LedgerChange(
                **{
                    **_times(change, "at"),
                    "changes": tuple(FieldChange(**item) for item in change["changes"]),
                }
            )
            for change in data["ledger_changes"]
        ),
        unregistered=tuple(
            UnregisteredHost(**_times(host, "first_seen", "last_seen"))
            for host in data["unregistered_hosts"]
        ),
        totals=data["totals"],
    )
