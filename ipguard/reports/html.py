"""The report as one self-contained HTML page: inline CSS, inline SVG charts, nothing fetched.

Every value that came from the network or the ledger (hostnames, summaries, owners, evidence,
site names …) passes through `_e` (html.escape, control and bidi characters made visible) on its way
into the page, in the SVG too.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ipguard import __version__
from ipguard.escape import visible
from ipguard.reports.summary import OpenFinding, RunPoint, Summary

EVIDENCE_ITEMS = 5  # per group of evidence in the page; the JSON export carries all of it

_CSS = """
:root { --ink:#1d2330; --muted:#5b6474; --line:#d8dde6; --bg:#f6f7f9; --accent:#1f5fae; }
* { box-sizing: border-box; }
body { font: 14px/1.45 "Noto Sans", "Segoe UI", "DejaVu Sans", "Noto Sans CJK SC", "PingFang SC",
       "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
       color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
p.meta { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 6px;
        padding: 10px 12px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.nowrap, th.nowrap { white-space: nowrap; overflow-wrap: normal; }
.sev { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 12px;
       font-weight: 600; color: #fff; }
.sev-critical { background: #8e1b1b; } .sev-high { background: #c43d2b; }
.sev-medium { background: #c77a12; } .sev-low { background: #4a7bb7; }
.sev-info { background: #7a8494; }
.overdue { color: #b3261e; font-weight: 600; }
.evidence { color: var(--muted); font-size: 12px; margin-top: 4px; }
.evidence ul { margin: 2px 0 0 16px; padding: 0; }
.empty { color: var(--muted); font-style: italic; }
figure { margin: 8px 0 16px; }
figcaption { color: var(--muted); font-size: 12px; }
svg { max-width: 100%; height: auto; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print {
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  tr, .card, figure { break-inside: avoid; }
  .card { background: none; }
}
@page { margin: 14mm; }
"""


def _e(value: Any) -> str:
    """Escaped text for HTML and SVG content and attribute values (control characters shown)."""
    return html.escape(visible(value, keep="\n"), quote=True)


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: frozenset[int] = frozenset(),
    nowrap: frozenset[int] = frozenset(),
) -> str:
    """A table whose cells are already escaped HTML."""

    def attrs(index: int) -> str:
        classes = [name for name, where in (("num", numeric), ("nowrap", nowrap)) if index in where]
        return f' class="{" ".join(classes)}"' if classes else ""

    cells = "".join(f"<th{attrs(i)}>{_e(name)}</th>" for i, name in enumerate(head))
    body = [
        "<tr>" + "".join(f"<td{attrs(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    ]
    if not body:
        return '<p class="empty">None in this period.</p>'
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _severity(value: str) -> str:
    known = {"critical", "high", "medium", "low", "info"}
    css = value if value in known else "info"
    return f'<span class="sev sev-{css}">{_e(value)}</span>'


def line_chart(
    points: Sequence[tuple[datetime, int]],
    *,
    title: str,
    colour: str,
    width: int = 1080,
    height: int = 220,
) -> str:
    """An inline SVG line chart of values over time (escaped labels, no scripts)."""
    if not points:
        return f'<p class="empty">{_e(title)}: no runs in this period.</p>'
    left, right, top, bottom = 56, 16, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    start = points[0][0].timestamp()
    span = max(points[-1][0].timestamp() - start, 1.0)
    peak = max(max(value for _, value in points), 1)
    step = _nice_step(peak)
    top_value = step * -(-peak // step)

    def x(moment: datetime) -> float:
        if len(points) == 1:
            return left + plot_w / 2
        return left + (moment.timestamp() - start) / span * plot_w

    def y(value: int) -> float:
        return top + plot_h - value / top_value * plot_h

    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<text x="{left}" y="18" font-size="13" font-weight="600" fill="#1d2330">'
        f"{_e(title)}</text>",
    ]
    for tick in range(0, top_value + 1, step):
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" '
            f'stroke="#d8dde6" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5b6474">{_e(tick)}</text>'
        )
    labelled = {0, len(points) - 1, (len(points) - 1) // 2}
    for index in sorted(labelled):
        moment = points[index][0]
        anchor = "start" if index == 0 else "end" if index == len(points) - 1 else "middle"
        parts.append(
            f'<text x="{x(moment):.1f}" y="{height - 12}" font-size="11" '
            f'text-anchor="{anchor}" fill="#5b6474">{_e(_utc(moment))}</text>'
        )
    coordinates = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in points)
    parts.append(
        f'<polyline points="{coordinates}" fill="none" stroke="{_e(colour)}" stroke-width="2"/>'
    )
    if len(points) <= 400:  # beyond that the dots only blur the line
        for moment, value in points:
            parts.append(
                f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3" fill="{_e(colour)}">'
                f"<title>{_e(_utc(moment))}: {_e(value)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(peak: int) -> int:
    """A round grid step giving four or five lines up to `peak`."""
    raw = max(peak / 4, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


def _charts(runs: Sequence[RunPoint]) -> str:
    complete = [run for run in runs if run.open_findings is not None]
    hosts = [(run.started_at, run.hosts_seen) for run in complete]
    open_after = [(run.started_at, run.open_findings or 0) for run in complete]
    return (
        "<figure>"
        + line_chart(hosts, title="Hosts seen per run", colour="#1f5fae")
        + line_chart(open_after, title="Open findings after each run", colour="#c43d2b")
        + f"<figcaption>{len(complete)} complete runs; times are UTC.</figcaption></figure>"
    )


def _evidence(finding: OpenFinding) -> str:
    groups: list[str] = []
    for moment in ("first", "last"):
        proof = finding.evidence.get(moment)
        if not isinstance(proof, Mapping):
            continue
        items = []
        for group, values in proof.items():
            if group == "run_id" or not isinstance(values, list):
                continue
            for value in values[:EVIDENCE_ITEMS]:
                items.append(f"<li>{_e(group)}: {_e(_describe(value))}</li>")
            if len(values) > EVIDENCE_ITEMS:
                items.append(f"<li>… {len(values) - EVIDENCE_ITEMS} more {_e(group)}</li>")
        run = proof.get("run_id")
        if items:
            groups.append(f"<div>{moment} seen (run {_e(run)}):<ul>{''.join(items)}</ul></div>")
        if moment == "first" and proof == finding.evidence.get("last"):
            break
    if finding.detail:
        groups.append(f"<div>detail: {_e(_describe(finding.detail))}</div>")
    if finding.ack_note:
        groups.append(f"<div>acknowledged: {_e(finding.ack_note)}</div>")
    return f'<div class="evidence">{"".join(groups)}</div>' if groups else ""


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(
            f"{key}={_describe(item)}" for key, item in value.items() if item not in (None, "")
        )
    if isinstance(value, list | tuple):
        return ";".join(_describe(item) for item in value)
    return str(value)


def render(summary: Summary) -> str:
    """The whole page."""
    since, until = summary.since, summary.until
    where = f" — site {summary.site}" if summary.site else ""
    title = f"ipguard report {since.date()} to {summary.last_day}{where}"
    totals = summary.totals
    cards = [
        (totals.get("runs_complete", 0), "complete scan runs"),
        (totals.get("runs_failed", 0), "failed or aborted runs"),
        (totals.get("max_hosts_seen", 0), "most hosts seen in a run"),
        (totals.get("opened", 0), "findings opened"),
        (totals.get("resolved", 0), "findings resolved"),
        (totals.get("overdue", 0), "reports overdue (24 h)"),
        (totals.get("open_now", 0), "findings open now"),
        (totals.get("unregistered_hosts", 0), "unregistered hosts"),
        (totals.get("ledger_changes", 0), "ledger changes"),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Period {_e(_utc(since))} to {_e(_utc(until))} UTC (end excluded)'
        f"{_e(where)}. Generated {_e(_utc(summary.generated_at))} UTC by ipguard "
        f"{_e(__version__)}.</p>",
        '<section class="cards">'
        + "".join(
            f'<div class="card"><b>{_e(n)}</b><span>{_e(label)}</span></div>' for n, label in cards
        )
        + "</section>",
        "<h2>Hosts seen over time</h2>",
        _charts(summary.runs),
        _table(
            ("day (UTC)", "runs", "complete", "most hosts seen", "open findings at day end"),
            (
                (
                    _e(day.day),
                    _e(day.runs),
                    _e(day.complete),
                    _e(day.max_hosts),
                    _e("" if day.open_findings is None else day.open_findings),
                )
                for day in summary.days
            ),
            numeric=frozenset({1, 2, 3, 4}),
        ),
        "<h2>Findings by kind and severity</h2>",
        _table(
            ("kind", "severity", "opened", "resolved", "overdue"),
            (
                (
                    _e(count.kind),
                    _severity(count.severity),
                    _e(count.opened),
                    _e(count.resolved),
                    f'<span class="overdue">{_e(count.overdue)}</span>'
                    if count.overdue
                    else _e(count.overdue),
                )
                for count in summary.counts
            ),
            numeric=frozenset({2, 3, 4}),
        ),
        "<h2>Open findings</h2>",
        _table(
            ("id", "severity", "kind", "address", "state", "first seen", "report due", "summary"),
            (
                (
                    _e(item.id),
                    _severity(item.severity),
                    _e(item.kind) + (f"<br>site {_e(item.site)}" if not summary.site else ""),
                    "<br>".join(_e(part) for part in (item.ip, item.mac, item.port) if part),
                    _e(item.state),
                    _e(_utc(item.first_seen)),
                    (
                        f'<span class="overdue">{_e(_utc(item.report_due_at))} overdue</span>'
                        if item.overdue
                        else _e(_utc(item.report_due_at))
                    ),
                    _e(item.summary) + _evidence(item),
                )
                for item in summary.open_findings
            ),
            numeric=frozenset({0}),
            nowrap=frozenset({0, 1, 3, 4, 5, 6}),
        ),
        "<h2>Unregistered hosts, by first seen</h2>",
        _table(
            ("first seen", "last seen", "ip", "mac", "vendor", "finding", "state"),
            (
                (
                    _e(_utc(host.first_seen)),
                    _e(_utc(host.last_seen)),
                    _e(host.ip),
                    _e(host.mac),
                    _e(host.vendor),
                    _e(host.finding_id),
                    _e(host.state),
                )
                for host in summary.unregistered
            ),
            nowrap=frozenset({0, 1, 2, 3}),
        ),
        "<h2>Ledger changes</h2>",
        _table(
            ("time (UTC)", "actor", "action", "record", "changes"),
            (
                (
                    _e(_utc(change.at)),
                    _e(change.actor),
                    _e(change.action),
                    _e(change.key),
                    "<br>".join(
                        f"{_e(item.field)}: {_e(item.before) or '—'} → {_e(item.after) or '—'}"
                        for item in change.changes
                    ),
                )
                for change in summary.ledger_changes
            ),
            nowrap=frozenset({0}),
        ),
        "<footer>Times are UTC. A finding is overdue when it was neither acknowledged nor "
        "resolved within 24 hours of being first seen (high and critical). The audit trail "
        "is never pruned; scan history is kept for the configured retention.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(out) + "\n"
