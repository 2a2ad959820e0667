"""Ledger files: CSV, XLSX and JSON in one schema (DESIGN.md, "Ledger file format").

Reading yields rows of text keyed by column with their line numbers; it rejects files whose shape is
wrong (missing or unknown columns, not a list, not a workbook) before any row is looked at. Writing
is lossless and safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any

from ipguard.errors import InvalidValue, LedgerFileError, LineProblem
from ipguard.ledger.textfile import decode
from ipguard.model import LEDGER_FIELDS

FORMATS = ("csv", "xlsx", "json")
REQUIRED = ("ip", "mac")
# The fields that hold `;`-separated lists, which a JSON file may also give as a list of strings.
LIST_FIELDS = ("ipv6", "alt_macs", "roles", "allowed_services")
# Spreadsheets run cells that start with these as formulas; a leading ' makes them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_START = (*_FORMULA_START, "'")
# Excel 97-2003 workbooks and password-protected XLSX files are both OLE2 compound files.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_SAVE_AS = 'save it as "Excel Workbook (.xlsx)" or "CSV UTF-8"'
_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}
# Headers that other inventories and `arp`/`ipconfig` write for a ledger column ("MAC Address",
# "Physical Address"): named in the error, never guessed (the header's names are the contract).
_NOISE = {"address", "addr", "no", "number", "of", "the"}
_ALIASES = {
    "ip": "ip",
    "ipv4": "ip",
    "mac": "mac",
    "physical": "mac",
    "hardware": "mac",
    "ethernet": "mac",
    "host": "hostname",
    "host name": "hostname",
    "device name": "hostname",
    "user": "owner",
    "asset": "asset_tag",
    "asset tag": "asset_tag",
    "switch port": "switch_port",
    "port": "switch_port",
    "role": "roles",
    "services": "allowed_services",
    "allowed services": "allowed_services",
    "approval": "approval_ref",
    "approval ref": "approval_ref",
    "guest until": "guest_until",
    "note": "notes",
}
# A first line "sep=;" (which Excel reads) names the separator of the lines after it.
_SEP_LINE = re.compile(r"\ufeff?sep=([,;\t|])\r?\n")
# How far below a refused header row to look for the real one (a title and blank rows above it).
_HEADER_SEARCH = 20


@dataclass(frozen=True)
class FileRow:
    """One data row of a ledger file: where it stands, its text by column, what is wrong with it.

    `problems` are found while reading (a cell right of the last column, a nested JSON object);
    the importer reports them with the field errors of every other row.
    """

    line: int
    values: dict[str, str]
    unit: str = "line"
    problems: tuple[LineProblem, ...] = ()
    # XLSX: the sheet's reference (as in 'Sheet 1'!C2) and column names, one of each per sheet.
    sheet: str = ""
    columns: Sequence[str] = ()

    def cell(self, field: str) -> str:
        """Where a field's value stands in a spreadsheet (`'Sheet 1'!C2`), or ""."""
        if not self.sheet or field not in self.columns:
            return ""
        from openpyxl.utils import get_column_letter

        return f"{self.sheet}!{get_column_letter(self.columns.index(field) + 1)}{self.line}"


def detect_format(path: str, given: str | None) -> str:
    """The format from `--format` or the file's extension."""
    if given:
        fmt = given.lower()
        if fmt not in FORMATS:
            raise InvalidValue(f"--format {given!r} is not supported; use csv, xlsx or json")
        return fmt
    if path == "-":
        return "csv"
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt == "xls":
        raise InvalidValue(f"{path}: Excel 97-2003 (.xls) workbooks are not supported; {_SAVE_AS}")
    if fmt == "ods":
        raise InvalidValue(
            f"{path}: OpenDocument spreadsheets (.ods) are not supported; {_SAVE_AS}"
        )
    if fmt not in FORMATS:
        raise InvalidValue(
            f"{path}: cannot tell the format from the name; use --format csv, xlsx or json"
        )
    return fmt


def read_rows(
    path: str, fmt: str, *, encoding: str | None = None, sheet: str | None = None
) -> list[FileRow]:
    """Every data row of a ledger file, or LedgerFileError when the file itself is unusable.

    `encoding` names a CSV file's text encoding (default: UTF-8, or GB18030 when the whole file
    reads as that and not as UTF-8); `sheet` picks an XLSX sheet (default: the active one).
    """
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except IsADirectoryError:
        raise LedgerFileError(path, message=f"{path}: is a directory, not a ledger file") from None
    except OSError as error:
        raise LedgerFileError(path, message=f"{path}: cannot read: {error.strerror}") from None
    if not data.strip():
        raise LedgerFileError(path, message=f"{path}: the file is empty; nothing was imported")
    if data.startswith(_OLE2):
        if _ENCRYPTED in data:
            raise file_error(
                path, "a password-protected workbook is not supported; save a copy without one"
            )
        raise file_error(path, f"an Excel 97-2003 (.xls) workbook is not supported; {_SAVE_AS}")
    _refuse_other_format(path, data, fmt)
    if fmt == "csv":
        return _read_csv(path, decode(path, data, encoding))
    if fmt == "xlsx":
        from ipguard.ledger.workbook import read_xlsx

        return read_xlsx(path, data, sheet)
    from ipguard.ledger.jsonfile import read_json

    return read_json(path, data)


def _refuse_other_format(path: str, data: bytes, fmt: str) -> None:
    """Refuse a file whose bytes are plainly another format than its name or --format says.

    Each such file would fail anyway, with a message about the wrong format ("malformed CSV",
    "BadZipFile"); this names what the file is and what to do.
    """
    first = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    reason = ""
    if data.startswith(b"\x1f\x8b"):
        reason = "is compressed (gzip), not a ledger file; uncompress it first"
    elif data.startswith(b"PK\x03\x04") and b"opendocument.spreadsheet" in data[:100]:
        reason = f"is an OpenDocument spreadsheet (.ods), which is not supported; {_SAVE_AS}"
    elif first == b"<":  # what web applications call an "Excel export" is often HTML
        reason = f"is an HTML or XML page, not a workbook; open it in a spreadsheet and {_SAVE_AS}"
    elif fmt == "csv" and data.startswith(b"PK\x03\x04"):
        reason = "is an XLSX workbook, not CSV text; --format xlsx (or name it .xlsx)"
    elif fmt == "csv" and first in (b"[", b"{"):
        reason = "is JSON, not CSV; --format json (or name it .json)"
    elif fmt == "xlsx" and not data.startswith(b"PK"):
        kind = "JSON" if first in (b"[", b"{") else "text"
        other = "json" if kind == "JSON" else "csv"
        reason = f"is {kind}, not an XLSX workbook (a {other.upper()} file?); --format {other}"
    if reason:
        raise file_error(path, reason)


def file_error(path: str, reason: str) -> LedgerFileError:
    """The whole file is unusable: one line, and nothing was imported."""
    return LedgerFileError(path, message=f"{path}: {reason}; nothing was imported")


def header(
    path: str, names: Sequence[Any], where: str, below: Callable[[], str] = str
) -> list[str]:
    """The column names of a header row, or LedgerFileError saying what is wrong with them.

    `below` tells where the column names are when this row is not them (a title above them).
    """
    columns = _names(names)
    while columns and not columns[-1]:
        columns.pop()
    if len(columns) == 1:
        for separator, name in _SEPARATORS.items():
            if separator in columns[0]:
                raise file_error(
                    path,
                    f"{where}: the columns are separated by {name}, not commas; "
                    'save the file as "CSV UTF-8 (comma delimited)"',
                )
    for position, name in enumerate(columns, start=1):
        if not name:
            raise file_error(
                path, f"{where}: column {position} has an empty header; name it or delete it"
            )
        if name not in LEDGER_FIELDS:
            raise file_error(
                path,
                f"{where}: unknown column {name!r} in column {position}{meant(name)} "
                f"(columns are {', '.join(LEDGER_FIELDS)}){below()}",
            )
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise file_error(path, f"{where}: missing required column {missing[0]!r}{below()}")
    duplicated = {name for name in columns if columns.count(name) > 1}
    if duplicated:
        raise file_error(path, f"{where}: column {sorted(duplicated)[0]!r} appears twice")
    return columns


def meant(name: str) -> str:
    """The hint " (rename it 'mac')" for a header other tools write for a column ("" if none)."""
    words = re.sub(r"[^a-z0-9]+", " ", name).split()
    key = " ".join(word for word in words if word not in _NOISE)
    meant = _ALIASES.get(key, key if key in LEDGER_FIELDS else "")
    return f" (rename it {meant!r})" if meant else ""


def _names(names: Iterable[Any]) -> list[str]:
    return [
        str(name).strip().lower().lstrip("\ufeff") if name is not None else "" for name in names
    ]


def header_below(rows: Iterable[tuple[int, Sequence[Any]]], unit: str) -> str:
    """Where the column names are, among the next rows (numbered), for a header's error message.

    A title or a blank line above the header is common in files made by hand; the rows above it
    are not skipped silently (they could be data under a mistyped header), but named.
    """
    for number, cells in islice(rows, _HEADER_SEARCH):
        if set(REQUIRED) <= set(_names(cells)):
            return f"; the column names are on {unit} {number}; delete the {unit}s above it"
    return ""


def unescape_cell(value: str) -> str:
    """Undo `escape_cell`: a leading ' in front of a formula character is dropped."""
    if len(value) > 1 and value[0] == "'" and value[1] in "".join(_ESCAPED_START):
        return value[1:]
    return value


def escape_cell(value: str) -> str:
    """Make a cell safe for spreadsheets: text starting like a formula gets a leading '."""
    return "'" + value if value.startswith(_ESCAPED_START) else value


def _read_csv(path: str, text: str) -> list[FileRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[FileRow] = []
    line = 1  # where the record being read starts: a quote left open is reported there
    try:
        first = next(reader, None)
        if first is None:
            raise file_error(path, "the file holds no header row")
        named = _SEP_LINE.match(text)
        delimiter = named.group(1) if named else _delimiter(first)
        if delimiter:  # restart, splitting every line as the header is split
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
            first = next(reader)
            if named:  # Excel's "sep=;" line names the separator; the header comes next
                first = next(reader, None) or []
        columns = header(
            path, first, f"line {reader.line_num}", lambda: header_below(_numbered(reader), "line")
        )
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                problems: tuple[LineProblem, ...] = ()
                if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
                    reason = f"{len(cells)} cells but {len(columns)} columns"
                    problems = (LineProblem(line, "", "", reason),)
                values = {  # only a cell starting with ' can need unescaping
                    name: unescape_cell(cell) if cell[:1] == "'" else cell
                    for name, cell in zip(columns, cells, strict=False)
                }
                rows.append(FileRow(line, values, problems=problems))
            line = reader.line_num + 1
    except csv.Error as error:
        if "unexpected end of data" in str(error) or "EOF" in str(error):
            raise file_error(
                path, f"line {line}: a quoted cell opens here and is never closed"
            ) from None
        raise file_error(path, f"line {reader.line_num}: malformed CSV ({error})") from None
    return rows


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The records still to read, each with the line it starts on."""
    line = reader.line_num + 1
    for cells in reader:
        yield line, cells
        line = reader.line_num + 1


def _delimiter(first: list[str]) -> str:
    """The separator a header read as one cell is split by: `;` or tab, as spreadsheets write.

    Excel writes `;` where the locale's list separator is `;` (German, French …) and tabs in
    "Unicode Text". Only a header that holds exactly one of them settles it ("" otherwise): the
    header's names are then checked like any other.
    """
    if len(first) != 1:
        return ""
    found = [separator for separator in (";", "\t") if separator in first[0]]
    return found[0] if len(found) == 1 else ""


def cell_text(value: Any) -> str:
    """A cell or JSON scalar as field text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class ExportRow:
    """One record to export: its text fields in file order and when it last changed."""

    values: dict[str, str]
    updated_at: datetime | None = None


def write(
    path: str, fmt: str, rows: Iterable[ExportRow], *, changed_since: datetime | None = None
) -> int:
    """Write the rows to a file (or stdout for `-`); returns how many were written."""
    # A sequence is kept as it is, so that a caller's counting wrapper sees the writing progress.
    rows = rows if isinstance(rows, Sequence) else list(rows)
    if fmt == "xlsx":
        if path == "-":
            raise InvalidValue("XLSX cannot go to standard output; give a file name")
        from ipguard.ledger.workbook import write_xlsx

        write_xlsx(Path(path), rows, changed_since)
        return len(rows)
    if path == "-":
        _write_text(sys.stdout, fmt, rows)
    else:
        # A BOM lets Excel recognise UTF-8 (Chinese names) when it opens the CSV.
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        with open(path, "w", encoding=encoding, newline="") as handle:
            _write_text(handle, fmt, rows)
    return len(rows)


def _write_text(handle: IO[str], fmt: str, rows: Sequence[ExportRow]) -> None:
    if fmt == "csv":
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(LEDGER_FIELDS)
        for row in rows:
            writer.writerow([escape_cell(row.values[name]) for name in LEDGER_FIELDS])
    else:
        items = [_json_item(row.values) for row in rows]
        json.dump(items, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


def _json_item(values: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = dict(values)
    item["isolated"] = values["isolated"] == "true"
    # Addresses are a list of strings in JSON, as a run's `subnets` are (DESIGN.md JSON shapes).
    for name in ("ipv6", "alt_macs"):
        item[name] = values[name].split(";") if values[name] else []
    return item
