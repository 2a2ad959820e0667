"""The report as Markdown (GitHub-flavoured tables), for wikis, tickets and e-mail.

Values from the network or the ledger are escaped with `md`: table pipes, backticks, emphasis and
link characters, and angle brackets (so no raw HTML reaches a renderer); line breaks become spaces,
control and bidi characters visible escapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ipguard import __version__
from ipguard.escape import visible
from ipguard.reports.summary import OpenFinding, Summary

_SPECIAL = "\\`*_[]<>|#!~"


def md(value: Any) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    text = visible(" ".join(("" if value is None else str(value)).split()))
    return "".join(f"\\{char}" if char in _SPECIAL else char for char in text)


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A table whose cells are already escaped."""
    body = [f"| {' | '.join(row)} |" for row in rows]
    if not body:
        return ["_None in this period._", ""]
    return [f"| {' | '.join(head)} |", f"|{'|'.join(' --- ' for _ in head)}|", *body, ""]


def _evidence(item: OpenFinding) -> list[str]:
    lines = []
    for moment in ("first", "last"):
        proof = item.evidence.get(moment)
        if not isinstance(proof, Mapping):
            continue
        for group, values in proof.items():
            if group == "run_id" or not isinstance(values, list):
                continue
            for value in values:
                lines.append(f"  - {moment} seen, run {md(proof.get('run_id'))}, {md(group)}: ")
                lines[-1] += md(_describe(value))
        if moment == "first" and proof == item.evidence.get("last"):
            break
    return lines


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(
            f"{key}={_describe(item)}" for key, item in value.items() if item not in (None, "")
        )
    if isinstance(value, list | tuple):
        return ";".join(_describe(item) for item in value)
    return str(value)


def render(summary: Summary) -> str:
    """The whole document."""
    where = f" — site {summary.site}" if summary.site else ""
    totals = summary.totals
    out = [
        f"# ipguard report {summary.since.date()} to {summary.last_day}{md(where)}",
        "",
        f"Period {_utc(summary.since)} to {_utc(summary.until)} UTC (end excluded). "
        f"Generated {_utc(summary.generated_at)} UTC by ipguard {__version__}.",
        "",
        "## Overview",
        "",
        *_table(
            ("", "count"),
            (
                (md(label), str(totals.get(key, 0)))
                for key, label in (
                    ("runs_complete", "complete scan runs"),
                    ("runs_failed", "failed or aborted runs"),
                    ("max_hosts_seen", "most hosts seen in a run"),
                    ("opened", "findings opened"),
                    ("resolved", "findings resolved"),
                    ("overdue", "reports overdue (24 h)"),
                    ("open_now", "findings open now"),
                    ("unregistered_hosts", "unregistered hosts"),
                    ("ledger_changes", "ledger changes"),
                )
            ),
        ),
        "## Hosts seen over time",
        "",
        *_table(
            ("day (UTC)", "runs", "complete", "most hosts seen", "open findings at day end"),
            (
                (
                    str(day.day),
                    str(day.runs),
                    str(day.complete),
                    str(day.max_hosts),
                    "" if day.open_findings is None else str(day.open_findings),
                )
                for day in summary.days
            ),
        ),
        "## Findings by kind and severity",
        "",
        *_table(
            ("kind", "severity", "opened", "resolved", "overdue"),
            (
                (md(c.kind), md(c.severity), str(c.opened), str(c.resolved), str(c.overdue))
                for c in summary.counts
            ),
        ),
        "## Open findings",
        "",
        *_table(
            ("id", "severity", "kind", "ip", "mac", "port", "state", "first seen", "report due"),
            (
                (
                    str(item.id),
                    md(item.severity),
                    md(item.kind),
                    md(item.ip),
                    md(item.mac),
                    md(item.port),
                    md(item.state),
                    _utc(item.first_seen),
                    _utc(item.report_due_at) + (" **overdue**" if item.overdue else ""),
                )
                for item in summary.open_findings
            ),
        ),
    ]
    for item in summary.open_findings:
        out.append(f"- **#{item.id}** {md(item.summary)}")
        if item.ack_note:
            out.append(f"  - acknowledged: {md(item.ack_note)}")
        out += _evidence(item)
    if summary.open_findings:
        out.append("")
    out += [
        "## Unregistered hosts, by first seen",
        "",
        *_table(
            ("first seen", "last seen", "ip", "mac", "vendor", "finding", "state"),
            (
                (
                    _utc(host.first_seen),
                    _utc(host.last_seen),
                    md(host.ip),
                    md(host.mac),
                    md(host.vendor),
                    str(host.finding_id),
                    md(host.state),
                )
                for host in summary.unregistered
            ),
        ),
        "## Ledger changes",
        "",
        *_table(
            ("time (UTC)", "actor", "action", "record", "changes"),
            (
                (
                    _utc(change.at),
                    md(change.actor),
                    md(change.action),
                    md(change.key),
                    "; ".join(
                        f"{md(item.field)}: {md(item.before) or '—'} → {md(item.after) or '—'}"
                        for item in change.changes
                    ),
                )
                for change in summary.ledger_changes
            ),
        ),
    ]
    return "\n".join(out).rstrip("\n") + "\n"
