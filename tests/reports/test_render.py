"""Renderers: every value escaped for its format; HTML self-contained with an SVG chart."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from ipguard.reports import export, html, markdown, sections
from ipguard.reports.summary import RunPoint, Summary
from tests.reports.samples import FORMULA, PIPE, hostile_summary


class Elements(HTMLParser):
    """Every start tag and attribute in a page, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


def test_html_escapes_everything_from_the_network() -> None:
    page = html.render(hostile_summary())
    tags = elements(page)
    names = {tag for tag, _ in tags}
    assert "script" not in names and "img" not in names
    assert not any(key.startswith("on") for _, attrs in tags for key in attrs)
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page
    # Inside the SVG too: the chart's tooltips and labels are escaped text.
    svg = page[page.index("<svg") : page.rindex("</svg>")]
    assert "<script" not in svg and "polyline" in svg and "<circle" in svg


def test_html_is_self_contained() -> None:
    page = html.render(hostile_summary())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for _, attrs in elements(page):
        for key in ("src", "href", "srcset", "xlink:href", "action"):
            assert key not in attrs, f"external reference {key}={attrs[key]}"
    stripped = re.sub(r"&[a-z]+;|&#\d+;", "", page)
    assert "@import" not in stripped and "url(" not in stripped
    assert "http://" not in page.replace("http:&#x2F;&#x2F;", "").split("<body>")[0]


def test_html_sections_and_numbers() -> None:
    page = html.render(hostile_summary())
    for heading in (
        "Hosts seen over time",
        "Findings by kind and severity",
        "Open findings",
        "Unregistered hosts, by first seen",
        "Ledger changes",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "ipguard report 2026-11-01 to 2026-11-30" in page
    assert page.count("<svg") == 2  # hosts seen, open findings
    assert "overdue" in page and "李伟" in page


def test_an_empty_period_renders() -> None:
    empty = Summary(
        since=datetime(2026, 1, 1, tzinfo=UTC),
        until=datetime(2026, 2, 1, tzinfo=UTC),
        site="lab",
        generated_at=datetime(2026, 2, 2, tzinfo=UTC),
    )
    page = html.render(empty)
    assert "no runs in this period" in page and "None in this period." in page
    assert "_None in this period._" in markdown.render(empty)
    assert export.render_csv(empty) == export.BOM + ",".join(export.CSV_COLUMNS) + "\n"


def test_one_run_is_a_chart_too() -> None:
    run = RunPoint(1, "lab", datetime(2026, 1, 5, tzinfo=UTC), "complete", 12, 0)
    page = html.render(
        Summary(
            since=datetime(2026, 1, 1, tzinfo=UTC),
            until=datetime(2026, 2, 1, tzinfo=UTC),
            site="lab",
            generated_at=datetime(2026, 2, 2, tzinfo=UTC),
            runs=(run,),
        )
    )
    assert page.count("<circle") == 2


def test_markdown_escapes_pipes_backticks_and_html() -> None:
    text = markdown.render(hostile_summary())
    assert PIPE not in text and "evil\\|name\\`code\\`" in text
    assert not re.search(r"(?<!\\)<", text)  # every < is escaped: no raw HTML reaches a renderer
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            # Every table row has as many unescaped pipes as its header.
            assert len(re.findall(r"(?<!\\)\|", line)) in {3, 6, 8, 10}, line


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a|b", "a\\|b"),
        ("`x`", "\\`x\\`"),
        ("<b>", "\\<b\\>"),
        ("*bold* _it_ [l](u)", "\\*bold\\* \\_it\\_ \\[l\\](u)"),
        ("two\nlines", "two lines"),
        (None, ""),
    ],
)
def test_markdown_cell_escaping(value: str | None, expected: str) -> None:
    assert markdown.md(value) == expected


def test_csv_neutralises_formulas() -> None:
    text = export.render_csv(hostile_summary())
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(export.BOM))))
    sections = {row["section"] for row in rows}
    assert sections == {
        "run",
        "findings-opened",
        "findings-resolved",
        "findings-overdue",
        "open-finding",
        "unregistered-host",
        "ledger-change",
    }
    change = next(row for row in rows if row["section"] == "ledger-change")
    assert FORMULA in change["detail"]  # inside the cell, not at its start: harmless
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_csv_cell_starting_with_a_formula_is_quoted() -> None:
    summary = hostile_summary()
    change = summary.ledger_changes[0]
    bad = type(change)(change.at, FORMULA, change.action, change.entity, "-1+1", change.changes)
    text = export.render_csv(type(summary)(**{**summary.__dict__, "ledger_changes": (bad,)}))
    rows = csv.DictReader(io.StringIO(text.removeprefix(export.BOM)))
    row = next(r for r in rows if r["section"] == "ledger-change")
    assert row["actor"] == "'" + FORMULA and row["ip"] == "'-1+1"


def test_json_is_complete_and_plain() -> None:
    document = json.loads(export.render_json(hostile_summary(runs=3)))
    assert set(document) == {
        "since",
        "until",
        "site",
        "generated_at",
        "totals",
        "runs",
        "findings_by_kind",
        "open_findings",
        "ledger_changes",
        "unregistered_hosts",
    }
    assert (document["since"], document["until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert document["runs"][0]["started_at"] == "2026-11-01T00:00:00Z"
    assert document["open_findings"][0]["evidence"]["first"]["run_id"] == 4
    assert document["ledger_changes"][0]["changes"][1] == {
        "field": "location",
        "before": "B2-301",
        "after": PIPE,
    }


def test_html_and_markdown_show_the_same_findings_detail_and_evidence() -> None:
    """Built once, rendered twice: what one format says about a finding, the other says too."""
    from html import unescape

    from tests.reports.demo import demo_summary

    summary = demo_summary()
    page, text = unescape(html.render(summary)), markdown.render(summary)
    report = sections.build(summary)
    shown = 0
    for item in report.findings:
        lines = [item.summary, *item.detail, *(line for g in item.evidence for line in g.lines)]
        for line in lines:
            assert line in page, line
            assert markdown.md(line) in text, line
            shown += 1
    assert shown > 60  # 15 findings, each with its detail and several pieces of evidence
    # Detail reads in words, not as key=value pairs, in both.
    assert "offered IPs: 198.18.0.162" in page and "offered IPs: 198.18.0.162" in text
    assert "observations:" not in page and "rtt_ms" not in text


def test_bulk_ledger_changes_are_one_row_and_single_edits_their_own() -> None:
    summary = hostile_summary()
    edit = summary.ledger_changes[0]
    imported = tuple(
        type(edit)(
            edit.at,
            "admin",
            "device.import.add",
            "device",
            f"198.18.1.{index}",
            (type(edit.changes[0])("ip", "", f"198.18.1.{index}"),),
        )
        for index in range(50)
    )
    changed = type(summary)(**{**summary.__dict__, "ledger_changes": (*imported, edit, edit)})
    rows = sections.build(changed).changes.rows
    assert len(rows) == 3  # the import, then the two edits one by one
    assert rows[0][3].text == "50 records"
    assert rows[0][4].lines == (
        "records: " + ", ".join(f"198.18.1.{i}" for i in range(40)) + ", … 10 more",
        "fields: ip",
    )
    assert rows[1][4].lines == ("owner: 李伟 → " + FORMULA, "location: B2-301 → " + PIPE)
    # The JSON report still lists every record.
    document = json.loads(export.render_json(changed))
    assert len(document["ledger_changes"]) == 52


def test_markdown_keeps_each_address_part_in_its_column() -> None:
    summary = hostile_summary()
    portless = summary.open_findings[1]
    no_mac = type(portless)(**{**portless.__dict__, "id": 11, "mac": None, "port": "tcp/23"})
    text = markdown.render(type(summary)(**{**summary.__dict__, "open_findings": (no_mac,)}))
    (row,) = [line for line in text.splitlines() if line.startswith("| 11 |")]
    assert row.split(" | ")[3:6] == ["198.18.0.20", "", "tcp/23"]


def test_the_hour_repeated_when_summer_time_ends_is_told_apart() -> None:
    # A November report in New York: the open findings first seen at 05:30 and 06:30 UTC on
    # 1 November both read "2026-11-01 01:30", the clocks having gone back at 02:00 EDT.
    from zoneinfo import ZoneInfo

    from ipguard.reports.summary import UnregisteredHost

    new_york = ZoneInfo("America/New_York")
    hosts = tuple(
        UnregisteredHost(n, "lab", f"198.18.0.{n}", None, "", at, at, "open")
        for n, at in enumerate(
            (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
             datetime(2026, 11, 2, 6, 30, tzinfo=UTC)), 1)
    )  # fmt: skip
    page = markdown.render(
        Summary(
            since=datetime(2026, 11, 1, 4, tzinfo=UTC),
            until=datetime(2026, 12, 1, 5, tzinfo=UTC),
            site="lab",
            generated_at=datetime(2026, 12, 2, tzinfo=UTC),
            unregistered=hosts,
            zone=new_york,
        )
    )
    assert "2026-11-01 01:30 -04:00" in page and "2026-11-01 01:30 -05:00" in page
    assert "2026-11-02 01:30 |" in page  # an ordinary hour: the clock time alone
