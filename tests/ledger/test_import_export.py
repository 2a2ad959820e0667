"""Ledger files via the CLI: all-or-nothing imports, every bad row reported, lossless exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ipguard.model import LEDGER_FIELDS
from tests.conftest import Cli

HEADER = ",".join(LEDGER_FIELDS)

# Every field filled, Chinese owners, formula-looking text, a retired duplicate of an active IP
# (and of its static IPv6, spelt differently), IPv6 lists of two, one and none.
FULL_ROWS = [
    [
        "10.20.1.1",
        "2001:db8:20::1;fd00:20::1",
        "00:11:22:33:44:01",
        "gw-core",
        "网络中心",
        "office",
        "机房 A",
        "sw1/0/1",
        "GW-001",
        "gateway;router",
        "tcp/22;udp/161",
        "active",
        "false",
        "",
        "网信〔2026〕1号",
        "core gateway",
        "",  # site
        "00-11-22-33-44-0A;0011.2233.440b",  # alt_macs: the failover twin, a bond's NIC
    ],
    [
        "10.20.1.7",
        "2001:DB8:20:0:0::7",
        "00:11:22:33:44:07",
        "math-pc07",
        "李伟",
        "math",
        "教学楼 B2-301",
        "sw2/0/7",
        "PC-07",
        "host",
        "tcp/22;tcp/3389",
        "active",
        "true",
        "2027-01-31",
        "申请-0007",
        "=1+2 looks like a formula",
    ],
    [
        "10.20.1.8",
        "",
        "00:11:22:33:44:08",
        "phys-pc08",
        "王芳",
        "physics",
        "实验楼 301",
        "sw2/0/8",
        "PC-08",
        "host;printer",
        "",
        "suspended",
        "false",
        "",
        "",
        "-negative start, @at, +plus",
    ],
    [
        "10.20.1.7",
        "2001:db8:20::7",
        "00:11:22:33:44:99",
        "old-pc",
        "张三",
        "math",
        "",
        "",
        "",
        "host",
        "",
        "retired",
        "false",
        "",
        "",
        "'quoted start",
    ],
]


def write_csv(
    path: Path, rows: list[list[str]], header: str = HEADER, encoding: str = "utf-8"
) -> Path:
    buffer = io.StringIO()
    buffer.write(header + "\r\n")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def ledger_json(cli: Cli, db: str | None = None) -> list[dict[str, str]]:
    result = cli("ledger", "list", "--format", "json", db=db)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    for row in rows:
        row.pop("updated_at")
    return sorted(rows, key=lambda row: (row["ip"], row["mac"]))


def row(ip: str, mac: str, **fields: str) -> list[str]:
    values = {"ip": ip, "mac": mac, **fields}
    return [values.get(name, "") for name in LEDGER_FIELDS]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_import_export_import_is_lossless(cli: Cli, tmp_path: Path, fmt: str) -> None:
    source = write_csv(tmp_path / "in.csv", FULL_ROWS)
    assert cli("ledger", "import", str(source)).exit_code == 0
    first = ledger_json(cli)
    assert len(first) == 4
    assert {r["owner"] for r in first} == {"网络中心", "李伟", "王芳", "张三"}

    exported = tmp_path / f"out.{fmt}"
    result = cli("ledger", "export", str(exported))
    assert result.exit_code == 0, result.stderr
    second_db = f"sqlite:///{tmp_path / 'second.db'}"
    result = cli("ledger", "import", str(exported), db=second_db)
    assert result.exit_code == 0, result.stderr
    assert ledger_json(cli, db=second_db) == first

    # Importing the export again into the first ledger changes nothing.
    result = cli("ledger", "import", str(exported))
    assert "0 added, 0 updated, 0 retired, 4 unchanged" in result.stderr


def test_csv_export_neutralises_formulas_and_carries_a_bom(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    out = tmp_path / "out.csv"
    cli("ledger", "export", str(out))
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    cells = [cell for line in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for cell in line]
    assert "'=1+2 looks like a formula" in cells
    assert "'-negative start, @at, +plus" in cells
    assert "''quoted start" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_xlsx_export_stores_formula_text_as_text_and_paints_changed_rows_red(
    cli: Cli, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    out = tmp_path / "out.xlsx"
    assert cli("ledger", "export", str(out), "--changed-since", "2000-01-01").exit_code == 0
    sheet = load_workbook(out).active
    mac, note = LEDGER_FIELDS.index("mac"), LEDGER_FIELDS.index("notes")
    notes = {row[mac].value: row[note] for row in sheet.iter_rows(min_row=2)}
    cell = notes["00:11:22:33:44:07"]
    assert cell.value == "=1+2 looks like a formula" and cell.data_type == "s"
    assert all(row[0].font.color.rgb == "FFFF0000" for row in sheet.iter_rows(min_row=2))

    cli("ledger", "export", str(out), "--changed-since", "2999-01-01")
    sheet = load_workbook(out).active
    assert not any(
        row[0].font.color is not None and row[0].font.color.rgb == "FFFF0000"
        for row in sheet.iter_rows(min_row=2)
    )


@pytest.mark.parametrize(
    ("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gb18030", b"")]
)
def test_csv_encodings_from_excel_and_chinese_windows(
    cli: Cli, tmp_path: Path, encoding: str, prefix: bytes
) -> None:
    path = write_csv(
        tmp_path / "in.csv", [row("10.0.0.5", "02:00:00:00:00:05", owner="李伟")], encoding=encoding
    )
    path.write_bytes(prefix + path.read_bytes())
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 0, result.stderr
    assert ledger_json(cli)[0]["owner"] == "李伟"


BAD_FILES = [
    # (name, file content as CSV rows or raw bytes, text the error must contain)
    (
        "bad ip",
        [row("10.0.0.300", "02:00:00:00:00:01")],
        "line 2, ip '10.0.0.300': not an IP address",
    ),
    (
        "bad mac",
        [row("10.0.0.1", "02:00:00:00:00:01"), row("10.0.0.2", "nope")],
        "line 3, mac 'nope': not a MAC",
    ),
    (
        "duplicate active ip in file",
        [row("10.0.0.1", "02:00:00:00:00:01"), row("10.0.0.1", "02:00:00:00:00:02")],
        "line 3, ip '10.0.0.1': IP is already active on line 2",
    ),
    (
        "unknown role",
        [row("10.0.0.1", "02:00:00:00:00:01", roles="wifi")],
        "line 2, roles 'wifi': unknown role",
    ),
    (
        "unknown status",
        [row("10.0.0.1", "02:00:00:00:00:01", status="gone")],
        "line 2, status 'gone'",
    ),
    (
        "bad services",
        [row("10.0.0.1", "02:00:00:00:00:01", allowed_services="tcp/22;ssh")],
        "line 2, allowed_services",
    ),
    (
        "bad date",
        [row("10.0.0.1", "02:00:00:00:00:01", guest_until="31/12/2026")],
        "line 2, guest_until",
    ),
    ("bad flag", [row("10.0.0.1", "02:00:00:00:00:01", isolated="maybe")], "line 2, isolated"),
    ("missing column", b"ip,owner\r\n10.0.0.1,Li\r\n", "missing required column 'mac'"),
    (
        "unknown column",
        b"ip,mac,colour\r\n10.0.0.1,02:00:00:00:00:01,red\r\n",
        "unknown column 'colour'",
    ),
    ("empty", b"", "the file is empty"),
    ("binary garbage", bytes(range(256)) * 4, "not a text file"),
    ("too many cells", b"ip,mac\r\n10.0.0.1,02:00:00:00:00:01,extra\r\n", "line 2"),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES]
)
def test_bad_csv_changes_nothing_and_names_the_line(
    cli: Cli, tmp_path: Path, name: str, content: list[list[str]] | bytes, message: str
) -> None:
    cli("ledger", "add", "10.9.9.9", "02:99:99:99:99:99", "--owner", "existing")
    before = ledger_json(cli)
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write_csv(path, content)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "nothing was imported" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ledger_json(cli) == before


def test_every_bad_row_is_counted(cli: Cli, tmp_path: Path) -> None:
    rows = [
        row("10.0.0.1", "bad"),
        row("10.0.0.2", "02:00:00:00:00:02"),
        row("x", "02:00:00:00:00:03"),
    ]
    result = cli("ledger", "import", str(write_csv(tmp_path / "bad.csv", rows)))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].endswith("2 bad rows, listed below; nothing was imported")
    assert lines[1:] == [
        "  line 2, mac 'bad': not a MAC address (like aa:bb:cc:dd:ee:ff)",
        "  line 4, ip 'x': not an IP address",
    ]


def test_active_ip_of_another_mac_in_the_ledger_is_refused_in_merge(
    cli: Cli, tmp_path: Path
) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "李伟")
    path = write_csv(
        tmp_path / "in.csv",
        [row("10.0.0.2", "02:00:00:00:00:02"), row("10.0.0.1", "02:00:00:00:00:09")],
    )
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    assert (
        "line 3, ip '10.0.0.1': IP is already registered to 02:00:00:00:00:01 (李伟)"
        in result.stderr
    )
    assert [r["ip"] for r in ledger_json(cli)] == ["10.0.0.1"]


def test_truncated_xlsx_and_non_list_json_are_refused(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    good = tmp_path / "good.xlsx"
    cli("ledger", "export", str(good))
    truncated = tmp_path / "cut.xlsx"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = cli("ledger", "import", str(truncated), db=fresh)
    assert result.exit_code == 2 and "not a readable XLSX workbook" in result.stderr

    not_list = tmp_path / "obj.json"
    not_list.write_text('{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01"}')
    result = cli("ledger", "import", str(not_list), db=fresh)
    assert result.exit_code == 2
    assert "expected a JSON list of objects, got an object" in result.stderr

    bad_item = tmp_path / "items.json"
    bad_item.write_text(
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01"}, {"ip": "10.0.0.2", "mac": "x"}]'
    )
    result = cli("ledger", "import", str(bad_item), db=fresh)
    assert result.exit_code == 2 and "item 2, mac 'x'" in result.stderr
    assert ledger_json(cli, db=fresh) == []


def test_dry_run_shows_the_plan_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "old")
    path = write_csv(
        tmp_path / "in.csv",
        [row("10.0.0.1", "02:00:00:00:00:01", owner="new"), row("10.0.0.2", "02:00:00:00:00:02")],
    )
    before = ledger_json(cli)
    result = cli("ledger", "import", str(path), "--dry-run")
    assert result.exit_code == 0
    assert "would be 1 added, 1 updated, 0 retired, 0 unchanged" in result.stderr
    assert "owner: 'old' → 'new'" in result.stdout
    assert ledger_json(cli) == before


def test_replace_retires_what_the_file_lacks_and_never_deletes(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:02")
    path = write_csv(
        tmp_path / "in.csv",
        [row("10.0.0.2", "02:00:00:00:00:02"), row("10.0.0.1", "02:00:00:00:00:09")],
    )
    result = cli("ledger", "import", str(path), "--mode", "replace")
    assert result.exit_code == 0, result.stderr
    assert "1 added, 0 updated, 1 retired, 1 unchanged" in result.stderr
    rows = {(r["ip"], r["mac"]): r["status"] for r in ledger_json(cli)}
    assert rows == {
        ("10.0.0.1", "02:00:00:00:00:01"): "retired",
        ("10.0.0.1", "02:00:00:00:00:09"): "active",
        ("10.0.0.2", "02:00:00:00:00:02"): "active",
    }


def test_import_is_audited_per_record(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    result = cli("ledger", "history", "10.20.1.7", "--format", "json")
    entries = json.loads(result.stdout)
    assert [e["action"] for e in entries] == ["device.import.add", "device.import.add"]
    assert {e["actor"] for e in entries} == {"tester"}
    assert {e["after"]["owner"] for e in entries} == {"李伟", "张三"}


def test_export_to_stdout_and_json_types(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    result = cli("ledger", "export", "-", "--format", "json")
    items = json.loads(result.stdout)
    assert [item["isolated"] for item in items if item["mac"] == "00:11:22:33:44:07"] == [True]
    assert list(items[0]) == list(LEDGER_FIELDS)
    addresses = {item["mac"]: item["ipv6"] for item in items}
    assert addresses["00:11:22:33:44:01"] == ["2001:db8:20::1", "fd00:20::1"]
    assert addresses["00:11:22:33:44:08"] == []
    result = cli("ledger", "export", "-")
    assert result.stdout.splitlines()[0] == HEADER


def test_hundred_thousand_rows_import(cli: Cli, tmp_path: Path) -> None:
    rows = [
        row(
            f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
            owner=f"用户{n}",
            department=f"dept{n % 40}",
            roles="host",
            allowed_services="tcp/22",
        )
        for n in range(1, 100_001)
    ]
    path = write_csv(tmp_path / "big.csv", rows)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 0, result.stderr
    assert "100000 added" in result.stderr
    listing = cli("ledger", "list", "--format", "csv")
    assert len(listing.stdout.splitlines()) == 100_001


def test_xlsx_export_of_a_ledger_holding_what_no_cell_may_hold_shows_it_as_escapes(
    cli: Cli, tmp_path: Path
) -> None:
    """A ledger filled by an older ipguard may hold controls and noncharacters in its text.

    openpyxl refuses a control character (the export died with a traceback) and writes U+FFFE
    and U+FFFF into XML no spreadsheet opens; each is shown as an escape instead, and the CSV
    and JSON exports, which can hold them, keep them as they are.
    """
    import sqlalchemy
    from openpyxl import load_workbook

    cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS)))
    engine = sqlalchemy.create_engine(cli.db_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE device SET notes = :notes, owner = :owner WHERE ip = :ip"),
            {"notes": "bell\x07 and \uffff end", "owner": "李\ufffe伟", "ip": "10.20.1.1"},
        )
    engine.dispose()
    out = tmp_path / "out.xlsx"
    result = cli("ledger", "export", str(out))
    assert result.exit_code == 0, result.stderr
    sheet = load_workbook(out).active
    ip, owner, notes = (LEDGER_FIELDS.index(name) for name in ("ip", "owner", "notes"))
    cells = {row[ip].value: row for row in sheet.iter_rows(min_row=2)}
    assert cells["10.20.1.1"][notes].value == "bell\\x07 and \\uffff end"
    assert cells["10.20.1.1"][owner].value == "李\\ufffe伟"
    assert cells["10.20.1.7"][owner].value == "张三"  # untouched records are exact

    assert cli("ledger", "export", str(tmp_path / "out.json")).exit_code == 0
    exported = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert {item["ip"]: item["owner"] for item in exported}["10.20.1.1"] == "李\ufffe伟"
