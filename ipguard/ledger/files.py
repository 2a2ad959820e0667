"""Ledger files: CSV, XLSX and JSON in one schema (DESIGN.md, "Ledger file format").

Reading yields rows of text keyed by column with their line numbers; it rejects files whose shape is
wrong (missing or unknown columns, not a list, not a workbook) before any row is looked at. Writing
is lossless and safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from ipguard.errors import InvalidValue, LedgerFileError, LineProblem
from ipguard.model import LEDGER_FIELDS

FORMATS = ("csv", "xlsx", "json")
REQUIRED = ("ip", "mac")
# Spreadsheets run cells that start with these as formulas; a leading ' makes them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_START = (*_FORMULA_START, "'")


@dataclass(frozen=True)
class FileRow:
    """One data row of a ledger file: where it stands and its text by column."""

    line: int
    values: dict[str, str]
    unit: str = "line"


def detect_format(path: str, given: str | None) -> str:
    """The format from `--format` or the file's extension."""
    if given:
        fmt = given.lower()
    elif path == "-":
        fmt = "csv"
    else:
        fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidValue(
            f"{path}: cannot tell the format from the name; use --format csv, xlsx or json"
        )
    return fmt


def read_rows(path: str, fmt: str) -> list[FileRow]:
    """Every data row of a ledger file, or LedgerFileError when the file itself is unusable."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise LedgerFileError(path, message=f"{path}: cannot read: {error.strerror}") from None
    if not data.strip():
        raise LedgerFileError(path, message=f"{path}: the file is empty; nothing was imported")
    if fmt == "csv":
        return _read_csv(path, data)
    if fmt == "xlsx":
        return _read_xlsx(path, data)
    return _read_json(path, data)


def _file_error(path: str, reason: str) -> LedgerFileError:
    return LedgerFileError(path, message=f"{path}: {reason}; nothing was imported")


def _decode(path: str, data: bytes) -> str:
    if b"\x00" in data:
        raise _file_error(path, "not a text file (binary data); expected CSV")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8", errors="strict")
        except UnicodeDecodeError as error:
            raise _file_error(
                path, f"starts with a UTF-8 BOM but byte {error.start + 4} is not UTF-8"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise _file_error(path, "text is neither UTF-8 nor GB18030") from None


def _header(path: str, names: Sequence[Any], where: str) -> list[str]:
    header = [
        str(name).strip().lower().lstrip("\ufeff") if name is not None else "" for name in names
    ]
    while header and not header[-1]:
        header.pop()
    unknown = [name for name in header if name not in LEDGER_FIELDS]
    if unknown:
        raise _file_error(
            path,
            f"{where}: unknown column {unknown[0]!r} (columns are {', '.join(LEDGER_FIELDS)})",
        )
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise _file_error(path, f"{where}: missing required column {missing[0]!r}")
    duplicated = {name for name in header if header.count(name) > 1}
    if duplicated:
        raise _file_error(path, f"{where}: column {sorted(duplicated)[0]!r} appears twice")
    return header


def unescape_cell(value: str) -> str:
    """Undo `escape_cell`: a leading ' in front of a formula character is dropped."""
    if len(value) > 1 and value[0] == "'" and value[1] in "".join(_ESCAPED_START):
        return value[1:]
    return value


def escape_cell(value: str) -> str:
    """Make a cell safe for spreadsheets: text starting like a formula gets a leading '."""
    return "'" + value if value.startswith(_ESCAPED_START) else value


def _read_csv(path: str, data: bytes) -> list[FileRow]:
    text = _decode(path, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[FileRow] = []
    try:
        first = next(reader, None)
        if first is None:
            raise _file_error(path, "the file holds no header row")
        header = _header(path, first, "line 1")
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(cells) > len(header):
                    extra = cells[len(header) :]
                    if any(cell.strip() for cell in extra):
                        raise LedgerFileError(
                            path,
                            [
                                LineProblem(
                                    line, "", "", f"{len(cells)} cells but {len(header)} columns"
                                )
                            ],
                        )
                values = {  # only a cell starting with ' can need unescaping
                    name: unescape_cell(cell) if cell[:1] == "'" else cell
                    for name, cell in zip(header, cells, strict=False)
                }
                rows.append(FileRow(line, values))
            line = reader.line_num + 1
    except csv.Error as error:
        raise _file_error(path, f"line {reader.line_num}: malformed CSV ({error})") from None
    return rows


def _cell_text(value: Any) -> str:
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


def _read_xlsx(path: str, data: bytes) -> list[FileRow]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        table = list(sheet.iter_rows(values_only=True))
        workbook.close()
    except Exception as error:  # zipfile, XML and openpyxl errors all mean "not a usable workbook"
        raise _file_error(
            path, f"not a readable XLSX workbook ({type(error).__name__}); is it truncated?"
        ) from None
    if not table:
        raise _file_error(path, "the workbook's first sheet is empty")
    header = _header(path, table[0], "row 1")
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        texts = [_cell_text(cell) for cell in cells]
        if any(text.strip() for text in texts):
            rows.append(FileRow(number, dict(zip(header, texts, strict=False))))
    return rows


def _read_json(path: str, data: bytes) -> list[FileRow]:
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _file_error(path, f"not valid JSON ({error})") from None
    if not isinstance(items, list):
        raise _file_error(path, f"expected a JSON list of objects, got {type(items).__name__}")
    rows = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise LedgerFileError(
                path,
                [LineProblem(number, "", "", f"is {type(item).__name__}, not an object", "item")],
            )
        _header(path, list(item), f"item {number}")
        values = {}
        for key, value in item.items():
            if isinstance(value, list):
                value = ";".join(str(part) for part in value)
            values[key.strip().lower()] = _cell_text(value)
        rows.append(FileRow(number, values, unit="item"))
    return rows


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
        _write_xlsx(Path(path), rows, changed_since)
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
    return item


def _write_xlsx(path: Path, rows: Sequence[ExportRow], changed_since: datetime | None) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("ledger")
    bold = Font(bold=True)
    red = Font(color="FFFF0000")
    sheet.append([_text_cell(sheet, name, bold) for name in LEDGER_FIELDS])
    for row in rows:
        changed = (
            changed_since is not None
            and row.updated_at is not None
            and row.updated_at >= changed_since
        )
        font = red if changed else None
        sheet.append([_text_cell(sheet, row.values[name], font) for name in LEDGER_FIELDS])
    workbook.save(path)


def _text_cell(sheet: Any, value: str, font: Any) -> Any:
    """A cell Excel stores and shows as text, never as a formula."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell
