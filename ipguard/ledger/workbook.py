"""XLSX ledger files: read the cells a sheet really holds, refuse what would be misread; write text.

openpyxl's row iterator pads every row to the sheet's declared size, so a 5 KB file declaring
`A1:XFD1048576` means 17 billion empty cells. Reading goes through openpyxl's sheet parser instead,
which yields only the cells present in the file, and stops with an error past `MAX_CELLS`.

Each cell that would be misread is an error naming it: a value right of the last column, a formula
without a saved result, an error value (`#DIV/0!`), merged cells (their value belongs to the first
row only), and a number where the MAC belongs (the spreadsheet dropped its leading zeros).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipguard.errors import LedgerFileError, LineProblem
from ipguard.escape import xml_text
from ipguard.ledger.files import (
    ExportRow,
    FileRow,
    cell_text,
    file_error,
    header,
    header_below,
)
from ipguard.model import LEDGER_FIELDS

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

# Far above a 100,000-device ledger (1.6 million cells), far below what exhausts memory.
MAX_CELLS = 5_000_000
_FORMULA_WITHOUT_VALUE = "formula"
# Spreadsheets hold numbers as doubles shown to 15 digits: a saved number of 16 digits or more
# (an ICCID, a long serial typed into a General cell) has lost its last ones.
_EXACT_DIGITS = 1e15


def read_xlsx(path: str, data: bytes, sheet_name: str | None) -> list[FileRow]:
    """The data rows of the active sheet (or `sheet_name`), each cell checked."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # zipfile, XML and openpyxl errors all mean "not a usable workbook"
        raise file_error(
            path, f"not a readable XLSX workbook ({type(error).__name__}); is it truncated?"
        ) from None
    try:
        sheet = _sheet(path, workbook, sheet_name)
        hint = ""
        if sheet_name is None and len(workbook.sheetnames) > 1:
            others = " or ".join(
                repr(title) for title in workbook.sheetnames if title != sheet.title
            )
            hint = f"; that is the sheet open when it was saved: choose with --sheet {others}"
        return _rows(path, sheet, hint)
    finally:
        workbook.close()


def _sheet(path: str, workbook: Any, name: str | None) -> ReadOnlyWorksheet:
    if name is None:
        sheet: ReadOnlyWorksheet = workbook.active
        return sheet
    if name not in workbook.sheetnames:
        # "--sheet devices" for the sheet "Devices ": one sheet, however it is written.
        alike = [t for t in workbook.sheetnames if t.strip().casefold() == name.strip().casefold()]
        if len(alike) == 1:
            return workbook[alike[0]]
        names = ", ".join(repr(title) for title in workbook.sheetnames)
        raise file_error(path, f"--sheet {name!r}: the workbook has no such sheet (it has {names})")
    chosen: ReadOnlyWorksheet = workbook[name]
    return chosen


def _rows(path: str, sheet: ReadOnlyWorksheet, hint: str) -> list[FileRow]:
    """The sheet's data rows; `hint` ends the message when row 1 is not the column names."""
    parser = _parser(sheet)
    cells = _cells(path, sheet, parser)
    first = next(cells, None)
    where = f"sheet {sheet.title!r}"

    def below() -> str:
        rest = (first,) if first is not None and first[0] != 1 else ()
        numbered = ((number, _values(found)) for number, found in chain(rest, cells))
        return header_below(numbered, "row") or hint

    if first is None or first[0] != 1:
        raise file_error(path, f"{where}: row 1 must hold the column names{below()}")
    try:
        columns = header(path, _values(first[1]), f"{where} row 1", below)
    except LedgerFileError:
        for _ in cells:  # the merged ranges come after the rows in the sheet's XML
            pass
        merged = parser.merged_cells.mergeCell if parser.merged_cells else []
        for ref in (ranged.ref for ranged in merged if _first_row(ranged.ref) == 1):
            raise file_error(
                path,
                f"{where} row 1: cells {ref} are merged; unmerge them: each column needs "
                "its own name",
            ) from None
        raise
    reference = _reference(sheet.title)
    rows = [_row(number, found, columns, reference) for number, found in cells]
    rows = [row for row in rows if row.problems or any(v.strip() for v in row.values.values())]
    merged = parser.merged_cells.mergeCell if parser.merged_cells else []
    for ranged in merged:
        low = _first_row(ranged.ref)
        problem = LineProblem(
            low, "", "", f"cells {ranged.ref} are merged; unmerge them and fill in every row", "row"
        )
        rows.append(FileRow(low, {}, "row", (problem,)))
    rows.sort(key=lambda row: row.line)
    return rows


def _first_row(ref: str) -> int:
    """The first row of a cell range such as `C2:C3`."""
    return int("".join(filter(str.isdigit, ref.split(":")[0])))


def _values(found: list[dict[str, Any]]) -> list[Any]:
    """The values of a row's cells, by column from A (missing cells are None)."""
    by_column = {cell["column"]: cell["value"] for cell in found}
    return [by_column.get(n) for n in range(1, max(by_column, default=0) + 1)]


def _reference(title: str) -> str:
    """A sheet's name as cell references spell it: quoted unless it is a plain word."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _row(number: int, found: list[dict[str, Any]], columns: list[str], sheet: str) -> FileRow:
    from openpyxl.utils import get_column_letter

    values: dict[str, str] = {}
    problems: list[LineProblem] = []
    for cell in found:
        value, column = cell["value"], cell["column"]
        where = f"cell {get_column_letter(column)}{number}"
        name = columns[column - 1] if column <= len(columns) else ""
        reason = ""
        if cell["data_type"] == _FORMULA_WITHOUT_VALUE:
            reason = f"{where} holds a formula without a saved result; enter the value itself"
        elif value is None:
            continue
        elif not name:
            last = get_column_letter(len(columns))
            reason = f"{where} is right of the last column ({last}); give it a header or clear it"
        elif cell["data_type"] == "e":
            reason = f"{where} holds the error {value}"
        elif name == "mac" and isinstance(value, int | float) and not isinstance(value, bool):
            reason = (
                f"{where} is the number {cell_text(value)}, not text: the spreadsheet dropped "
                "the MAC's leading zeros or separators; format the column as Text and retype it"
            )
        elif isinstance(value, date | time) and name != "guest_until":
            reason = (
                f"{where} is the date {cell_text(value)}: the spreadsheet took what was typed "
                "for a date (1/2, 3-12); format the column as Text and retype it"
            )
        elif (
            name == "guest_until" and isinstance(value, int | float) and not isinstance(value, bool)
        ):
            reason = (
                f"{where} is the number {cell_text(value)}, not a date: format the cell as a "
                "date, or write YYYY-MM-DD"
            )
        elif isinstance(value, float) and abs(value) >= _EXACT_DIGITS:
            reason = (
                f"{where} is the number {value}: a spreadsheet keeps 15 digits of a number, so "
                "the rest were lost; format the column as Text and retype it"
            )
        if reason:
            problems.append(LineProblem(number, name, "", reason, "row"))
        elif name:
            values[name] = cell_text(value)
    return FileRow(number, values, "row", tuple(problems), sheet, columns)


def _parser(sheet: ReadOnlyWorksheet) -> Any:
    from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

    class Parser(WorkSheetParser):  # type: ignore[misc]
        """openpyxl's parser, also marking formulas whose result was never saved."""

        def parse_cell(self, element: Any) -> dict[str, Any]:
            cell: dict[str, Any] = super().parse_cell(element)
            if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                cell["data_type"] = _FORMULA_WITHOUT_VALUE
            return cell

    workbook = sheet.parent
    # The read-only sheet's own parts (source, shared strings, date styles): what its padding
    # iterator hands the same parser.
    return Parser(
        sheet._get_source(),
        sheet._shared_strings,
        data_only=True,
        epoch=workbook.epoch,
        date_formats=workbook._date_formats,
        timedelta_formats=workbook._timedelta_formats,
    )


def _cells(
    path: str, sheet: ReadOnlyWorksheet, parser: Any
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(row number, cells present) for each row the sheet's XML holds, bounded by MAX_CELLS."""
    seen = 0
    try:
        for number, found in parser.parse():
            seen += len(found)
            if seen > MAX_CELLS:
                raise file_error(
                    path,
                    f"sheet {sheet.title!r} holds more than {MAX_CELLS:,} cells; "
                    "delete the unused rows and columns or split the ledger",
                )
            yield number, found
    except ValueError as error:  # a cell reference or value openpyxl cannot read
        raise file_error(path, f"sheet {sheet.title!r} is not readable ({error})") from None
    finally:
        parser.source.close()


def write_xlsx(path: Path, rows: Sequence[ExportRow], changed_since: datetime | None) -> None:
    """The ledger as one sheet of text cells, rows changed since `changed_since` in red."""
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
    """A cell Excel stores and shows as text, never as a formula, and an XML document can hold."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=xml_text(value))
    cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell
