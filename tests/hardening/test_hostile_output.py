"""Hostile text from the network, stored faithfully and shown safely everywhere ipguard writes.

Hostnames, banners, page titles and SSDP fields may carry terminal escapes (ESC, the 8-bit CSI),
HTML and script, spreadsheet formulas, NUL, invalid UTF-8, bidi overrides and 64 KB of anything.
The ledger keeps them as sent (NUL and lone surrogates as visible escapes, more than 4,096
characters cut with a marker); the terminal, HTML, Markdown, CSV and JSON outputs show them
without letting them act. First through the scanner seam on SQLite and PostgreSQL, then planted
on a lab host and scanned for real (test_hostile_lab).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ipguard.model import (
    Evidence,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    ScanResult,
    ServiceObservation,
)
from tests.conftest import Cli

ESCAPES = "\x1b[31mred\x1b]0;pwned\x07\x9b2J"
HTML = "<script>alert('x')</script><img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://198.19.200.9","click")'
BIDI = "\u202egnp.exe"
INVISIBLE = "ad\u200bmin\U000e0041\u3164"  # zero-width space, a tag character, a Hangul filler
NUL = "a\x00b"
HUGE = "H" * 65536
HOSTILE_NAME = f"{ESCAPES}{HTML}{FORMULA}{BIDI}{INVISIBLE}{NUL}\\xff"
# What must never reach a terminal or a file raw: C0/C1 controls (bar newline and tab), DEL, bidi.
# Also what draws nothing: zero-width characters, tags, Hangul fillers, separators.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2028\u2029\u3164"
    "\U000e0000-\U000e007f]"
)

CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24"]
site = "lab"
[policy]
hostname_rule = "^{department}-{asset_tag}$"
"""
HOST = ("198.18.0.66", "02:18:00:00:00:66")


def hostile_result() -> ScanResult:
    ip, mac = HOST
    now = datetime.now(UTC)
    return ScanResult(
        observations=(Observation(ip, mac, now, "arp", vendor=FORMULA),),
        services=(
            ServiceObservation(ip, "tcp", 8080, "http", product=HTML, version=ESCAPES, banner=HUGE),
            ServiceObservation(ip, "tcp", 2323, "telnet", banner=NUL + BIDI + FORMULA),
        ),
        proxies=(ProxyVerdict(ip, 8080, "http-get", True, f"GET answered {ESCAPES}{NUL}"),),
        names=(NameObservation(ip, HOSTILE_NAME, "mdns"), NameObservation(ip, HUGE, "dns")),
        evidence=(Evidence(ip, mac, "upnp-igd", "router", f"SERVER {HTML}{ESCAPES}"),),
        phases=frozenset(Phase),
    )


def contains(value: object, fragment: str) -> bool:
    """Whether any text inside a decoded JSON value holds `fragment`."""
    if isinstance(value, str):
        return fragment in value
    if isinstance(value, dict):
        return any(contains(item, fragment) for item in value.values())
    if isinstance(value, list):
        return any(contains(item, fragment) for item in value)
    return False


def assert_inert(text: str, where: str) -> None:
    """Nothing in `text` acts on a terminal: no control or bidi character, however encoded."""
    found = RAW_CONTROL.search(text)
    assert found is None, f"{where}: raw {found.group()!r} at {found.start()}"


def assert_inert_csv(text: str, where: str) -> None:
    assert_inert(text, where)
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"{where}: {cell[:40]!r}"


def check_every_output(cli: Cli, name_fragment: str = "\x1b[31m") -> dict:
    """Run every command that shows findings; each output inert; JSON decodes to the stored text."""
    outputs: dict[str, str] = {}
    table = cli("findings", "list")
    assert table.exit_code == 0
    outputs["findings list"] = table.stdout
    listed = cli("findings", "list", "--format", "json")
    outputs["findings list --format json"] = listed.stdout
    document = json.loads(listed.stdout)
    assert contains(document["findings"], name_fragment), "the hostile name was not stored"
    for finding in [f for f in document["findings"] if contains(f, name_fragment)][:3]:
        shown = cli("findings", "show", str(finding["id"]))
        assert shown.exit_code == 0
        outputs[f"findings show {finding['id']}"] = shown.stdout
        raw = cli("findings", "show", str(finding["id"]), "--format", "json")
        outputs[f"findings show {finding['id']} --format json"] = raw.stdout
        json.loads(raw.stdout)
    for fmt in ("html", "md", "csv", "json"):
        report = cli("report", "--since", "2000-01-01", "--format", fmt)
        assert report.exit_code == 0, report.stderr
        outputs[f"report {fmt}"] = report.stdout
    runs = cli("runs", "show", "1")
    outputs["runs show"] = runs.stdout
    for where, text in outputs.items():
        if where == "report csv":
            assert_inert_csv(text, where)
        else:
            assert_inert(text, where)
    html = outputs["report html"]
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert "\\x1b[31m" in html  # shown, as an escape
    md = outputs["report md"]
    assert "<script>" not in md and "\\<script\\>" in md
    assert json.loads(outputs["report json"])["open_findings"]
    assert "\\x1b[31m" in outputs["findings list"]
    return document


@pytest.fixture
def hostile_scan(cli: Cli, tmp_path: Path) -> Cli:
    from tests.fakes import FakeScanner

    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    added = cli(
        "ledger", "add", *HOST, "--department", "math", "--asset-tag", "pc66", "--owner", FORMULA
    )
    assert added.exit_code == 0, added.stderr
    cli.scanner = FakeScanner([hostile_result()])
    done = cli("--config", str(config), "scan", "--format", "json")
    assert done.exit_code == 1, done.stderr
    assert_inert(done.stdout, "scan --format json")
    table = cli("--config", str(config), "scan")
    assert_inert(table.stdout + table.stderr, "scan")
    return cli


def test_hostile_text_is_stored_faithfully_and_shown_inert(hostile_scan: Cli, db_url: str) -> None:
    import sqlalchemy as sa

    from ipguard.ledger import packing

    document = check_every_output(hostile_scan)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        packed = dict(connection.execute(sa.text("SELECT kind, data FROM run_records")).all())
        names = {name["source"]: name["name"] for name in packing.unpack(packed["names"])}
        services = sorted(packing.unpack(packed["services"]), key=lambda service: service["port"])
        banners = [service["banner"] for service in services]
    engine.dispose()
    # Stored as sent: escapes, HTML, formulas and bidi untouched; NUL as a visible \u0000.
    assert names["mdns"] == HOSTILE_NAME.replace("\x00", "\\u0000")
    assert names["dns"].startswith("H" * 4096) and names["dns"].endswith(
        "[cut: 65,536 characters in all]"
    )
    assert banners[0] == NUL.replace("\x00", "\\u0000") + BIDI + FORMULA
    finding = next(f for f in document["findings"] if f["kind"] == "hostname-policy")
    assert contains(finding["detail"], HOSTILE_NAME.replace("\x00", "\\u0000"))


def test_ledger_exports_neutralise_formulas_and_keep_the_text(
    hostile_scan: Cli, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    refused = hostile_scan("ledger", "edit", HOST[0], "--notes", HTML + BIDI)
    assert refused.exit_code == 2 and "bidirectional override" in refused.stderr
    edited = hostile_scan("ledger", "edit", HOST[0], "--notes", HTML, "--location", "+1-2")
    assert edited.exit_code == 0, edited.stderr
    exported = hostile_scan("ledger", "export", "-", "--format", "csv")
    assert_inert_csv(exported.stdout, "ledger export csv")
    assert hostile_scan("ledger", "export", str(tmp_path / "l.xlsx")).exit_code == 0
    sheet = load_workbook(tmp_path / "l.xlsx").worksheets[0]
    header = [cell.value for cell in sheet[1]]
    row = {name: cell for name, cell in zip(header, sheet[2], strict=False)}
    assert row["owner"].value == FORMULA and row["owner"].data_type == "s"  # text, not a formula
    assert row["location"].data_type == "s" and row["notes"].value == HTML
    # And back: the export imports to the same ledger.
    (tmp_path / "l.csv").write_text(exported.stdout, encoding="utf-8")
    again = hostile_scan("ledger", "import", str(tmp_path / "l.csv"), "--dry-run")
    assert again.exit_code == 0 and "0 added, 0 updated" in again.stdout + again.stderr
