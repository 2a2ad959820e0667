"""Names a device chooses, through every command that shows them: inert, and ordinary ones as typed.

The hostile and the ordinary names reach the ledger through the scanner seam (tests/fakes.py) as
the names phase would report them; each output is then read as a user or a script reads it. One
SQLite ledger: escaping does not depend on the database (tests/hardening covers PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from ipguard.model import NameObservation
from tests.conftest import Cli
from tests.fakes import FakeScanner, result
from tests.hardening.test_hostile_output import CONFIG  # the lab, with a hostname rule
from tests.reports.test_escaping import INVISIBLE, ORDINARY

NAMES = [*ORDINARY, "C:\\pc", *(f"admin{char}" for char in INVISIBLE)]
HOSTS = [(f"198.18.0.{10 + index}", f"02:00:00:00:00:{10 + index:02x}") for index in range(4)]


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """`ipguard --db <fresh SQLite ledger> --config <lab config> …`."""
    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ipguard.toml").write_text(CONFIG)
    monkeypatch.setenv("IPGUARD_CONFIG", str(tmp_path / "ipguard.toml"))
    shell = Cli(sqlite_url)
    # Never the real scanner from a test outside the lab: a scan here must meet the fake one
    # even when the command under test should have refused to start.
    shell.scanner = FakeScanner([result()])
    return shell


@pytest.fixture
def named(cli: Cli) -> Cli:
    """Two complete runs of four registered hosts: named "old" first, then by every name."""
    for index, (ip, mac) in enumerate(HOSTS):
        assert cli("ledger", "add", ip, mac, "--department", "math", "--asset-tag", f"pc{index}")
    names = [NameObservation(HOSTS[i % 4][0], name, "mdns") for i, name in enumerate(NAMES)]
    runs = [
        result(*HOSTS, names=[NameObservation(ip, "old", "mdns") for ip, _ in HOSTS]),
        result(*HOSTS, names=names),
    ]
    cli.scanner = FakeScanner(runs)
    for _ in range(2):
        scanned = cli("scan", "--quiet")
        assert scanned.exit_code == 0, scanned.stderr
    return cli


def test_every_output_shows_hidden_characters_as_escapes_and_names_as_typed(named: Cli) -> None:
    listed = json.loads(named("findings", "list", "--format", "json").stdout)["findings"]
    ids = [str(finding["id"]) for finding in listed if finding["kind"] == "hostname-policy"]
    assert len(ids) == len(HOSTS)
    outputs = {
        "findings list": named("findings", "list").stdout,
        "diff": named("diff").stdout,
        **{f"findings show {i}": named("findings", "show", i).stdout for i in ids},
        **{
            f"report {fmt}": named("report", "--format", fmt).stdout
            for fmt in ("html", "md", "csv", "json")
        },
    }
    for where, text in outputs.items():
        for char in INVISIBLE:
            assert char not in text, f"{where}: raw U+{ord(char):04X}"
    for name in ORDINARY:  # as typed, spaces of other scripts too (李\u3000伟)
        for where in ("findings list", "diff", "report html", "report csv"):
            assert name in outputs[where], f"{where}: {name!r} not shown as itself"
    assert "'C:\\pc'" in outputs["findings list"]  # a backslash is not doubled
    document = json.loads(outputs["report json"])
    summaries = " ".join(item["summary"] for item in document["open_findings"])
    for name in NAMES:  # lossless: the JSON decodes to the names as sent
        assert f"'{name}'" in summaries
    rows = list(csv.reader(io.StringIO(outputs["report csv"].removeprefix("\ufeff"))))
    assert any("\\U000e0041" in cell for row in rows for cell in row)


def test_a_site_name_in_a_table_title_is_text_not_markup(cli: Cli, tmp_path: Path) -> None:
    site = "[bold red]north[/] [link=http://198.19.0.1]campus[/link]"
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG.replace('site = "lab"', f'site = "{site}"'))
    cli.scanner = FakeScanner([result(("198.18.0.66", "02:00:00:00:00:66"))])
    scanned = cli("scan")
    assert scanned.exit_code == 1, scanned.stderr
    assert f"open findings at site {site}" in scanned.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("findings", "list"),
        ("findings", "show", "1"),
        ("runs", "show", "1"),
        ("diff", "1", "2"),
    ],
)
def test_commands_without_csv_refuse_it(named: Cli, args: tuple[str, ...]) -> None:
    """A script asking for CSV gets exit 2 and a reason, not a table it would parse as data."""
    refused = named(*args, "--format", "csv")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "'csv' is not one of 'table', 'json'" in refused.stderr


def test_a_hostile_dhcp_fingerprint_exports_to_every_format(cli: Cli, tmp_path: Path) -> None:
    """`--dhcp-fingerprint` appends what a client sent to notes: escaped, it is a valid cell."""
    from openpyxl import load_workbook

    from ipguard.ledger.store import Store
    from ipguard.ledger.watching import store_fingerprints

    ip, mac = HOSTS[0]
    assert cli("ledger", "add", ip, mac).exit_code == 0
    client = SimpleNamespace(
        mac=mac,
        ip=ip,
        hostname="\x1b]0;pwned\x07pc\x01\uffff",
        parameters=[1, 3, 6],
        vendor_class="MSFT 5.0\x00\x02\x1b[2J",
    )
    store = Store(cli.db_url)
    with store.session() as session:
        store_fingerprints(session, "lab", [client], datetime.now(UTC))
    store.close()
    shown = "[DHCP at lab: options 1,3,6; vendor MSFT 5.0\\u0000\\x02\\x1b[2J; hostname "
    for fmt in ("xlsx", "csv", "json"):
        path = tmp_path / f"ledger.{fmt}"
        exported = cli("ledger", "export", str(path), "--dhcp-fingerprint")
        assert exported.exit_code == 0, exported.stderr
        if fmt == "xlsx":
            sheet = load_workbook(path).worksheets[0]
            header = [cell.value for cell in sheet[1]]
            notes = sheet[2][header.index("notes")].value
        elif fmt == "csv":
            notes = next(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))["notes"]
        else:
            notes = json.loads(path.read_text())[0]["notes"]
        assert notes.startswith(shown), notes
        assert notes.endswith("hostname \\x1b]0;pwned\\x07pc\\x01\\uffff]"), notes
    again = cli("ledger", "import", str(tmp_path / "ledger.csv"), "--dry-run")
    assert again.exit_code == 0, again.stderr  # the export reads back in (notes and all)


def test_a_noncharacter_never_enters_the_ledger_so_every_workbook_opens(
    cli: Cli, tmp_path: Path
) -> None:
    """openpyxl writes U+FFFF into the sheet's XML and nothing can open the workbook after."""
    ip, mac = HOSTS[0]
    refused = cli("ledger", "add", ip, mac, "--owner", "Zoë\uffff")
    assert refused.exit_code == 2 and "noncharacter" in refused.stderr, refused.stderr
    (tmp_path / "in.csv").write_text(f"ip,mac,notes\n{ip},{mac},x\ufffey\n", encoding="utf-8")
    imported = cli("ledger", "import", str(tmp_path / "in.csv"))
    assert imported.exit_code == 2 and "line 2, notes" in imported.stderr, imported.stderr
    assert "noncharacter" in imported.stderr
    assert cli("ledger", "add", ip, mac, "--owner", "Zoë").exit_code == 0
    assert cli("ledger", "export", str(tmp_path / "out.xlsx")).exit_code == 0
    again = cli("ledger", "import", str(tmp_path / "out.xlsx"), "--dry-run")
    assert again.exit_code == 0, again.stderr


def test_a_watch_line_is_one_line_and_keeps_the_names_spaces() -> None:
    """What `ipguard watch` writes to the journal per finding: escapes, but 李　伟 as typed."""
    from ipguard.cli.watch import finding_line
    from ipguard.ledger.scan_tables import FindingRow

    summary = "198.18.0.10 goes by '李\u3000伟', then\r\n'\x1b[2Jpc\U000e0041'"
    row = FindingRow(
        id=7, site="lab", kind="hostname-policy", severity="low", state="open", ip=HOSTS[0][0],
        mac=HOSTS[0][1], port="", subject=HOSTS[0][0], summary=summary, detail={},
        first_seen_at=datetime.now(UTC), last_seen_at=datetime.now(UTC),
    )  # fmt: skip
    assert finding_line("new", row) == (
        "[LOW] new finding #7 hostname-policy 198.18.0.10 02:00:00:00:00:0a: 198.18.0.10 goes by "
        "'李\u3000伟', then '\\x1b[2Jpc\\U000e0041'"
    )


def test_a_terminal_that_is_not_utf8_gets_escapes_not_a_traceback(
    named: Cli, tmp_path: Path
) -> None:
    """A name in a script the terminal's encoding lacks (李) is shown as an escape there."""
    import subprocess

    from tests.hardening.helpers import env, ipguard_argv

    db = named.db_url
    encoding = "latin-1"
    for args in (("findings", "list"), ("findings", "list", "--format", "json")):
        done = subprocess.run(
            ipguard_argv("--db", db, *args),
            env=env(tmp_path, PYTHONIOENCODING=encoding),
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-800:]
        shown = done.stdout.decode(encoding)
        assert "\\u674e\\u7684\\u7535\\u8111" in shown  # 李的电脑


@pytest.mark.parametrize(
    ("site", "reason"),
    [
        ("a\udcffb", "lone surrogate"),  # an undecodable byte on the command line (\xff)
        ("north\ncampus", "one line"),
        ("north\x1b[2J", "control characters"),
        ("x" * 65, "at most 64"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ("findings", "list"),
        ("runs", "list"),
        ("diff",),
        ("report", "--format", "json"),
        ("metrics", "write", "m.prom"),
        ("scan",),
        ("ledger", "list"),
    ],
)
def test_a_bad_site_name_is_refused_before_any_work(
    cli: Cli, command: tuple[str, ...], site: str, reason: str
) -> None:
    """Before: a traceback (UnicodeEncodeError from the database), or a site with a newline in
    table titles, metrics labels and alert titles."""
    refused = cli(*command, "--site", site)
    assert refused.exit_code == 2, refused.stderr
    assert "--site" in refused.stderr and reason in refused.stderr, refused.stderr


def test_a_bad_site_name_in_the_configuration_is_refused(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG.replace('site = "lab"', 'site = "lab\\nBcc: x@example.com"'))
    cli.scanner = FakeScanner([result(("198.18.0.66", "02:00:00:00:00:66"))])
    refused = cli("scan")
    assert refused.exit_code == 2 and "scan.site" in refused.stderr, refused.stderr
    assert "one line" in refused.stderr
