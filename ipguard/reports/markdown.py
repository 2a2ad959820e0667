"""The report as Markdown (GitHub-flavoured tables), for wikis, tickets and e-mail.

The sections come from `ipguard.reports.sections`, as for the HTML page. Values from the network or
the ledger are escaped with `md`: table pipes, backticks, emphasis and link characters, angle
brackets (so no raw HTML reaches a renderer) and ampersands (so no entity such as `&rlm;` or
`&ZeroWidthSpace;` turns into a character the text does not hold); line breaks become spaces,
control and bidi characters visible escapes (`ipguard.escape.one_line`).
"""

from __future__ import annotations

from typing import Any

from ipguard.escape import one_line
from ipguard.reports.sections import FindingItem, Report, Table, build, cell
from ipguard.reports.summary import Summary

_SPECIAL = "\\`*_[]<>|#!~&"


def md(value: Any) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    text = one_line(value)
    return "".join(f"\\{char}" if char in _SPECIAL else char for char in text)


def _table(table: Table) -> list[str]:
    if not table.rows:
        return ["_None in this period._", ""]
    head, rule = " | ".join(table.head), "|".join(" --- " for _ in table.head)
    body = [f"| {' | '.join(md(cell.text) for cell in row)} |" for row in table.rows]
    return [f"| {head} |", f"|{rule}|", *body, ""]


def _findings(items: tuple[FindingItem, ...]) -> list[str]:
    if not items:
        return ["_None in this period._", ""]
    out = [
        "| id | severity | kind | ip | mac | port | state | first seen | report due |",
        f"|{'|'.join(' --- ' for _ in range(9))}|",
    ]
    for item in items:
        cells = (item.id, item.severity, item.kind, item.ip, item.mac, item.port, item.state)
        due = md(item.report_due) + (" **overdue**" if item.overdue else "")
        out.append(
            f"| {' | '.join(md(value) for value in cells)} | {md(item.first_seen)} | {due} |"
        )
    out.append("")
    for item in items:
        out.append(f"- **#{item.id}** {md(item.summary)}")
        out += [f"  - {md(line)}" for line in item.detail]
        if item.ack_note:
            out.append(f"  - acknowledged: {md(item.ack_note)}")
        for group in item.evidence:
            out.append(f"  - {md(group.heading)}:")
            out += [f"    - {md(line)}" for line in group.lines]
            if group.more:
                out.append(f"    - … {group.more} more")
    return [*out, ""]


def render(summary: Summary) -> str:
    """The whole document."""
    report: Report = build(summary)
    out = [
        f"# {md(report.title)}",
        "",
        f"{md(report.period)} {md(report.generated)}",
        "",
        "## Overview",
        "",
        *_table(
            Table(("", "count"), tuple((cell(label), cell(n)) for label, n in report.overview))
        ),
        "## Hosts seen over time",
        "",
        *_table(report.days),
        "## Findings by kind and severity",
        "",
        *_table(report.counts),
        "## Open findings",
        "",
        *_findings(report.findings),
        "## Unregistered hosts, by first seen",
        "",
        *_table(report.unregistered),
        "## Ledger changes",
        "",
        *_table(report.changes),
        md(report.footer),
    ]
    return "\n".join(out).rstrip("\n") + "\n"
