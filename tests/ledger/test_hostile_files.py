"""Ledger files as administrators really hand them over: what spreadsheets and scripts do to values.

Each refusal is one `error:` line naming the file, the line (item, row or cell), the field and the
value, exit 2, and the ledger unchanged; what every administrator would read one way is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ledger.test_import_export import ledger_json

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BASE = '"ip": "10.0.0.1", "mac": "02:00:00:00:00:01"'


def refused_unchanged(cli: Cli, path: Path, *messages: str) -> None:
    """The import of `path` is refused with one error line holding `messages`; nothing changed."""
    before = ledger_json(cli)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}: "), result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr
    assert ledger_json(cli) == before


# --- JSON: what a script or a hand-edited file puts where a value belongs ------------------------

JSON_REFUSED = {
    "null in the ipv6 list": ('"ipv6": [null]', "item 1, ipv6: list entry 1 is null"),
    "null after an address": (
        '"ipv6": ["2001:db8::1", null]',
        "item 1, ipv6: list entry 2 is null",
    ),
    "empty text in the ipv6 list": ('"ipv6": ["2001:db8::1", ""]', "list entry 2 is empty"),
    "number in the ipv6 list": ('"ipv6": [2001]', "list entry 1 is a number"),
    "null in roles": ('"roles": ["server", null]', "item 1, roles: list entry 2 is null"),
    "true in services": ('"allowed_services": [true]', "list entry 1 is true/false"),
    "a list for the owner": ('"owner": ["Li", "Wang"]', "item 1, owner: a list where one value"),
    "a list for the MAC": (
        '"ip": "10.0.0.2", "mac": ["02:00:00:00:00:02"]',
        "item 1, mac: a list where one value",
    ),
    "a list for isolated": ('"isolated": [true]', "item 1, isolated: a list where one value"),
    "true for the owner": ('"owner": true', "item 1, owner: true where text belongs"),
    "false for the notes": ('"notes": false', "item 1, notes: false where text belongs"),
    "a key other tools write": (
        '"MAC Address": "02:00:00:00:00:02"',
        "item 1, MAC Address: unknown key (rename it 'mac')",
    ),
    "keys differing in case": ('"MAC": "02:00:00:00:00:02"', "item 1, mac: the key appears twice"),
    "keys differing in spaces": ('"owner": "a", " Owner ": "b"', "owner: the key appears twice"),
    "a float that lost its digits": (
        '"asset_tag": 123456789012345678901234567890.0',
        "item 1, asset_tag: the number 123456789012345678901234567890.0 cannot be kept exactly",
    ),
    "a fraction that lost its digits": (
        '"notes": 0.12345678901234567890123',
        "notes: the number 0.12345678901234567890123 cannot be kept exactly",
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("case", JSON_REFUSED)
def test_json_values_that_would_be_guessed_are_refused(cli: Cli, tmp_path: Path, case: str) -> None:
    extra, message = JSON_REFUSED[case]
    body = extra if extra.startswith('"ip"') else f"{BASE}, {extra}"
    path = tmp_path / "in.json"
    path.write_text(f"[{{{body}}}]")
    refused_unchanged(cli, path, message)


@SQLITE_ONLY
def test_json_values_read_one_way_are_taken(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    item = {
        "ip": "10.0.0.1",
        "mac": "02:00:00:00:00:01",
        "ipv6": ["2001:db8::1", "fd00::1"],
        "roles": ["server", "printer"],
        "allowed_services": [],
        "asset_tag": 12.0,
        "location": 1e3,
        "notes": 0.1,
        "owner": None,
        "isolated": True,
    }
    path.write_text(json.dumps([item]))
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 0, result.stderr
    (record,) = ledger_json(cli)
    assert record["ipv6"] == "2001:db8::1;fd00::1"
    assert (record["roles"], record["allowed_services"]) == ("printer;server", "")
    assert (record["asset_tag"], record["location"], record["notes"]) == ("12", "1000", "0.1")
    assert (record["owner"], record["isolated"]) == ("", "true")


# --- CSV as Excel and LibreOffice save it in other locales ---------------------------------------

UMLAUTS = "Müller;Ångström"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("case", "data"),
    [
        # German or French Excel's "CSV UTF-8": the list separator of the locale is ';'.
        (
            "semicolons",
            f'\ufeffip;mac;owner;notes\r\n10.0.0.1;02:00:00:00:00:01;"{UMLAUTS}";a, b\r\n',
        ),
        # Excel's "Unicode Text": UTF-16 with a BOM, tab-separated.
        (
            "unicode text",
            f'ip\tmac\towner\tnotes\r\n10.0.0.1\t02:00:00:00:00:01\t"{UMLAUTS}"\ta, b\r\n',
        ),
    ],
)
def test_what_excel_saves_in_other_locales_is_read(
    cli: Cli, tmp_path: Path, case: str, data: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data.encode("utf-16" if case == "unicode text" else "utf-8"))
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 0, result.stderr
    (record,) = ledger_json(cli)
    assert (record["owner"], record["notes"]) == (UMLAUTS, "a, b")


@SQLITE_ONLY
def test_a_separator_the_header_does_not_settle_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"ip;mac,owner\r\n10.0.0.1;02:00:00:00:00:01,x\r\n")
    refused_unchanged(cli, path, "line 1: unknown column 'ip;mac'")
    path.write_bytes(b"ip|mac\r\n10.0.0.1|02:00:00:00:00:01\r\n")
    refused_unchanged(cli, path, "line 1: the columns are separated by '|'")


# --- XLSX: several sheets, numbers where text belongs, titles above the header --------------------


def workbook(tmp_path: Path, *sheets: tuple[str, list[list[object]]], active: int = 0) -> Path:
    """A workbook of the given sheets (title, rows), with sheet `active` open."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for cells in rows:
            sheet.append(cells)
    book.active = active
    path = tmp_path / "in.xlsx"
    book.save(path)
    return path


LEDGER_SHEET = (
    "Devices 2026",
    [["ip", "mac", "asset_tag"], ["10.0.0.1", "02:00:00:00:00:01", "7"]],
)


@SQLITE_ONLY
def test_the_sheet_read_is_named_when_it_is_not_the_ledger(cli: Cli, tmp_path: Path) -> None:
    summary = ("Summary", [["department", "count"], ["math", 1]])
    path = workbook(tmp_path, LEDGER_SHEET, summary, active=1)
    refused_unchanged(
        cli,
        path,
        "sheet 'Summary' row 1: unknown column 'count'",
        "the sheet open when it was saved: choose with --sheet 'Devices 2026'",
    )
    assert cli("ledger", "import", str(path), "--sheet", "Devices 2026").exit_code == 0


@SQLITE_ONLY
def test_a_value_a_field_refuses_names_its_sheet_and_cell(cli: Cli, tmp_path: Path) -> None:
    rows = [["ip", "mac", "guest_until"], ["10.0.0.1", "02:00:00:00:00:01", "2026-13-01"]]
    path = workbook(tmp_path, ("Devices 2026", rows))
    refused_unchanged(cli, path, "row 2 ('Devices 2026'!C2), guest_until '2026-13-01': not a date")


@SQLITE_ONLY
def test_a_number_a_spreadsheet_cut_to_15_digits_is_refused(cli: Cli, tmp_path: Path) -> None:
    # An ICCID typed into a General cell: Excel keeps 15 digits and stores 8.9860012345678E+18.
    rows = [["ip", "mac", "asset_tag"], ["10.0.0.1", "02:00:00:00:00:01", 8.9860012345678e18]]
    path = workbook(tmp_path, ("ledger", rows))
    refused_unchanged(
        cli, path, "cell C2 is the number 8.9860012345678e+18", "format the column as Text"
    )
    # 15 digits a spreadsheet holds exactly (an IMEI), and a whole number saved as 12.0, are taken.
    rows[1][2] = 356938035643809.0
    workbook(tmp_path, ("ledger", rows))
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert ledger_json(cli)[0]["asset_tag"] == "356938035643809"


@SQLITE_ONLY
def test_a_title_above_the_header_is_named_with_where_the_header_is(
    cli: Cli, tmp_path: Path
) -> None:
    rows = [["Devices, building B"], [], ["ip", "mac"], ["10.0.0.1", "02:00:00:00:00:01"]]
    path = workbook(tmp_path, ("ledger", rows))
    refused_unchanged(cli, path, "row 1", "the column names are on row 3; delete the rows above")
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("Devices exported 2026-11-30\r\nip,mac\r\n10.0.0.1,02:00:00:00:00:01\r\n")
    refused_unchanged(cli, csv_path, "line 1", "the column names are on line 2")


# --- ledger edit: a suspended device comes back -------------------------------------------------


def test_a_suspended_record_can_be_edited_and_reactivated(cli: Cli) -> None:
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "Li").exit_code == 0
    assert cli("ledger", "edit", "10.0.0.1", "--status", "suspended").exit_code == 0
    # While it is suspended its IP is free: another device may hold it, and then the suspended
    # record cannot come back on it.
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:02", "--owner", "Wang").exit_code == 0
    taken = cli("ledger", "edit", "02:00:00:00:00:01", "--status", "active")
    assert taken.exit_code == 2
    assert taken.stderr == (
        "error: IP 10.0.0.1 is already registered to 02:00:00:00:00:02 (Wang); "
        "edit or remove that record first\n"
    )
    assert cli("ledger", "remove", "02:00:00:00:00:02").exit_code == 0
    back = cli("ledger", "edit", "10.0.0.1", "--status", "active", "--notes", "back")
    assert back.exit_code == 0, back.stderr
    held = {(r["mac"], r["status"], r["notes"]) for r in ledger_json(cli)}
    assert held == {
        ("02:00:00:00:00:01", "active", "back"),
        ("02:00:00:00:00:02", "retired", ""),
    }
    # A suspended device that leaves for good is retired like an active one.
    assert cli("ledger", "edit", "10.0.0.1", "--status", "suspended").exit_code == 0
    retired = cli("ledger", "remove", "10.0.0.1")
    assert retired.exit_code == 0, retired.stderr
    assert {r["status"] for r in ledger_json(cli)} == {"retired"}


@SQLITE_ONLY
def test_a_line_break_written_as_crlf_inside_a_cell_is_a_line_break(
    cli: Cli, tmp_path: Path
) -> None:
    # A multi-line note saved by a Windows editor; a lone CR is still refused.
    path = tmp_path / "in.csv"
    path.write_bytes(b'ip,mac,notes\r\n10.0.0.1,02:00:00:00:00:01,"room 3\r\nkey at desk"\r\n')
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert ledger_json(cli)[0]["notes"] == "room 3\nkey at desk"
    path.write_bytes(b'ip,mac,notes\r\n10.0.0.2,02:00:00:00:00:02,"room 3\rkey"\r\n')
    refused_unchanged(cli, path, "line 2, notes 'room 3\\rkey': contains control characters")


@SQLITE_ONLY
def test_windows_excel_csv_is_pointed_to_cp1252_not_latin1(cli: Cli, tmp_path: Path) -> None:
    # Western Windows Excel's "CSV (Comma delimited)" is Windows-1252: its ’ (0x92) is a C1
    # control character in Latin-1, so the Latin-1 hint led to "contains control characters".
    path = tmp_path / "in.csv"
    path.write_bytes(b"ip,mac,owner\r\n10.0.0.1,02:00:00:00:00:01,O\x92Brien M\xfcller\r\n")
    refused_unchanged(cli, path, "line 2", "--encoding (e.g. cp1252")
    named = cli("ledger", "import", str(path), "--encoding", "latin-1")
    assert named.exit_code == 2
    assert "line 2: byte 42 (0x92) is a control character in iso8859-1" in named.stderr
    assert "--encoding cp1252" in named.stderr
    assert cli("ledger", "import", str(path), "--encoding", "cp1252").exit_code == 0
    assert ledger_json(cli)[0]["owner"] == "O’Brien Müller"


@SQLITE_ONLY
def test_a_date_a_spreadsheet_made_of_a_port_or_tag_is_refused(cli: Cli, tmp_path: Path) -> None:
    from datetime import datetime

    # "1/2" typed into a General cell becomes 2 January: the switch port is lost.
    rows = [
        ["ip", "mac", "switch_port", "guest_until"],
        ["10.0.0.1", "02:00:00:00:00:01", datetime(2026, 1, 2), datetime(2027, 1, 31)],
    ]
    path = workbook(tmp_path, ("ledger", rows))
    refused_unchanged(
        cli, path, "cell C2 is the date 2026-01-02", "took what was typed for a date", "as Text"
    )
    rows[1][2] = "1/2"
    workbook(tmp_path, ("ledger", rows))
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert ledger_json(cli)[0]["guest_until"] == "2027-01-31"


@SQLITE_ONLY
def test_a_guest_until_date_stored_as_a_number_says_so(cli: Cli, tmp_path: Path) -> None:
    rows = [["ip", "mac", "guest_until"], ["10.0.0.1", "02:00:00:00:00:01", 46053]]
    path = workbook(tmp_path, ("ledger", rows))
    refused_unchanged(
        cli, path, "cell C2 is the number 46053, not a date", "format the cell as a date"
    )


@SQLITE_ONLY
def test_a_csv_through_excel_keeps_its_separator_line_and_loses_no_digits(
    cli: Cli, tmp_path: Path
) -> None:
    # Excel reads (and some tools write) a first line "sep=;" naming the separator.
    path = tmp_path / "in.csv"
    path.write_text("sep=;\r\nip;mac;asset_tag\r\n10.0.0.1;02:00:00:00:00:01;123456789012\r\n")
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert ledger_json(cli)[0]["asset_tag"] == "123456789012"
    # The same file opened in Excel and saved again: the tag became a number shown as 1.23457E+11.
    path.write_text("ip,mac,asset_tag\r\n10.0.0.1,02:00:00:00:00:01,1.23457E+11\r\n")
    refused_unchanged(
        cli,
        path,
        "line 2, asset_tag '1.23457E+11': a number in scientific notation",
        "format the column as Text",
    )


@SQLITE_ONLY
@pytest.mark.parametrize("column", ["ip", "mac", "roles", "allowed_services", "guest_until"])
def test_a_huge_bad_cell_is_shown_shortened(cli: Cli, tmp_path: Path, column: str) -> None:
    values = {"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", column: "7" * 100_000}
    path = tmp_path / "in.csv"
    path.write_text(",".join(values) + "\r\n" + ",".join(values.values()) + "\r\n")
    refused_unchanged(cli, path, f"line 2, {column} '7777", "…'")
    result = cli("ledger", "import", str(path))
    assert len(result.stderr) < 600, result.stderr[:300]


# --- files whose name says one format and whose bytes another ------------------------------------


def _xlsx_bytes(tmp_path: Path) -> bytes:
    return workbook(tmp_path, ("ledger", [["ip", "mac"]])).read_bytes()


MISNAMED = {
    "a workbook named .csv": (
        "in.csv",
        _xlsx_bytes,
        "an XLSX workbook, not CSV text; --format xlsx",
    ),
    "JSON named .csv": (
        "in.csv",
        lambda _: b'[{"ip": "10.0.0.1"}]',
        "JSON, not CSV; --format json",
    ),
    "CSV named .xlsx": (
        "in.xlsx",
        lambda _: b"ip,mac\r\n10.0.0.1,02:00:00:00:00:01\r\n",
        "text, not an XLSX workbook (a CSV file?); --format csv",
    ),
    "a web page named .xlsx": (
        "report.xlsx",
        lambda _: b"\r\n<html><body><table><tr><td>ip</td></tr></table></body></html>",
        "an HTML or XML page, not a workbook",
    ),
    "gzip": ("in.csv", lambda _: b"\x1f\x8b\x08\x00" + bytes(20), "compressed (gzip)"),
    "OpenDocument": (
        "in.xlsx",
        lambda _: (
            b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet"
        ),
        "an OpenDocument spreadsheet (.ods)",
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("case", MISNAMED)
def test_a_file_whose_bytes_are_another_format_says_which(
    cli: Cli, tmp_path: Path, case: str
) -> None:
    name, make, message = MISNAMED[case]
    data = make(tmp_path)  # type: ignore[operator]
    path = tmp_path / name
    path.write_bytes(data)
    refused_unchanged(cli, path, message)


@SQLITE_ONLY
def test_an_ods_name_says_how_to_save_it(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "devices.ods"
    path.write_bytes(b"PK\x03\x04")
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    assert "OpenDocument spreadsheets (.ods) are not supported; save it as" in result.stderr


@SQLITE_ONLY
def test_errors_into_the_file_being_imported_is_refused(cli: Cli, tmp_path: Path) -> None:
    # `--errors devices.csv` typed for `--errors devices-errors.txt`: the list of bad rows would
    # replace the administrator's only copy of the file.
    path = tmp_path / "devices.csv"
    data = b"ip,mac\r\n10.0.0.300,02:00:00:00:00:01\r\n"
    path.write_bytes(data)
    (tmp_path / "link.csv").symlink_to(path)
    for given in (str(path), "./devices.csv", str(tmp_path / "link.csv")):
        result = cli("ledger", "import", str(path), "--errors", given)
        assert result.exit_code == 2
        assert f"--errors {given}: that is the file being imported" in result.stderr
        assert path.read_bytes() == data
    assert ledger_json(cli) == []


@SQLITE_ONLY
def test_options_for_another_format_are_refused_not_ignored(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text("ip,mac\r\n10.0.0.1,02:00:00:00:00:01\r\n")
    sheet = cli("ledger", "import", str(path), "--sheet", "Devices 2026")
    assert sheet.exit_code == 2
    assert "--sheet applies to XLSX workbooks; devices.csv is read as CSV" in sheet.stderr
    book = workbook(tmp_path, LEDGER_SHEET)
    encoding = cli("ledger", "import", str(book), "--encoding", "gb18030")
    assert encoding.exit_code == 2
    assert "--encoding applies to CSV files; in.xlsx is read as XLSX" in encoding.stderr
    assert ledger_json(cli) == []


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("IP Address", "ip"),
        ("Physical Address", "mac"),
        ("MAC_Address", "mac"),
        ("Asset No.", "asset_tag"),
        ("Switch Port", "switch_port"),
    ],
)
def test_a_header_other_tools_write_names_the_column_meant(
    cli: Cli, tmp_path: Path, written: str, meant: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"ip,mac,{written}\r\n10.0.0.1,02:00:00:00:00:01,x\r\n")
    refused_unchanged(
        cli, path, f"unknown column {written.lower()!r} in column 3 (rename it {meant!r})"
    )


@SQLITE_ONLY
@pytest.mark.parametrize("name", ["out.csv", "out.json", "-"])
def test_changed_since_on_an_export_without_colours_is_refused(
    cli: Cli, tmp_path: Path, name: str
) -> None:
    # It paints changed rows red in XLSX; on CSV it was silently ignored, and every row exported
    # to someone who asked for the changed ones.
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01").exit_code == 0
    result = cli("ledger", "export", name, "--changed-since", "2026-11-01")
    assert result.exit_code == 2
    assert "--changed-since paints changed rows red in an XLSX export" in result.stderr
    assert not (tmp_path / name).exists() and result.stdout == ""


@SQLITE_ONLY
def test_a_header_repeated_mid_file_is_named_as_such(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "ip,mac\r\n10.0.0.1,02:00:00:00:00:01\r\nIP,MAC\r\n10.0.0.2,02:00:00:00:00:02\r\n"
    )
    refused_unchanged(cli, path, "line 3, ip 'IP': the column names again (files pasted together?)")


def test_list_by_department_ignores_case_and_spaces(cli: Cli) -> None:
    for ip, mac, department in [
        ("10.0.0.1", "02:00:00:00:00:01", "Math"),
        ("10.0.0.2", "02:00:00:00:00:02", "math"),
        ("10.0.0.3", "02:00:00:00:00:03", "Mathematik"),
        ("10.0.0.4", "02:00:00:00:00:04", "ÄMTER"),
    ]:
        assert cli("ledger", "add", ip, mac, "--department", department).exit_code == 0

    def listed(department: str) -> list[str]:
        result = cli("ledger", "list", "--department", department, "--format", "json")
        assert result.exit_code == 0, result.stderr
        return [row["ip"] for row in json.loads(result.stdout)]

    assert listed(" math ") == ["10.0.0.1", "10.0.0.2"]
    assert listed("ämter") == ["10.0.0.4"]


@SQLITE_ONLY
def test_sheet_is_found_in_any_case(cli: Cli, tmp_path: Path) -> None:
    summary = ("Summary", [["department", "count"]])
    path = workbook(tmp_path, summary, LEDGER_SHEET)
    assert cli("ledger", "import", str(path), "--sheet", "devices 2026").exit_code == 0
    assert [row["asset_tag"] for row in ledger_json(cli)] == ["7"]


@SQLITE_ONLY
def test_merged_header_cells_are_named_as_merged(cli: Cli, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["ip", "mac", "Owner / Department"])
    book.active.append(["10.0.0.1", "02:00:00:00:00:01", "Li", "math"])
    book.active.merge_cells("C1:D1")
    path = tmp_path / "in.xlsx"
    book.save(path)
    refused_unchanged(cli, path, "sheet 'Sheet' row 1: cells C1:D1 are merged; unmerge them")
