"""JSON ledger files: a list of flat objects whose values are never coerced.

A value no field can hold exactly is reported with its item and key, with every other bad row: a
nested object or list, a key given twice (in any case), a list where one value belongs or a list
entry that is not text, true/false outside `isolated`, NaN and Infinity, and numbers that are too
long or that a float cannot keep exactly.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from ipguard.errors import LineProblem
from ipguard.fields import shortened
from ipguard.ledger.files import LIST_FIELDS, REQUIRED, FileRow, cell_text, file_error, meant
from ipguard.model import LEDGER_FIELDS

# JSON numbers longer than this are not ledger values; refusing them early also keeps Python's
# int() from raising on 5,000-digit numbers.
_MAX_DIGITS = 40


class _Refused:
    """A JSON value no ledger field can hold (NaN, a huge number); reported with its item."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it held twice (plain dicts keep the last)."""

    twice: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _Object:
    item = _Object(pairs)
    if len(item) < len(pairs):
        keys = [key for key, _ in pairs]
        item.twice = tuple(sorted({key for key in keys if keys.count(key) > 1}))
    return item


def _json_int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        return _Refused(f"a {len(text.lstrip('-'))}-digit number")
    return int(text)


def _json_float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused(f"{shortened(text)} is too large a number")
    # A float keeps about 17 digits: what the ledger would store must be the number written.
    if Decimal(cell_text(value)) != Decimal(text):
        return _Refused(
            f"the number {shortened(text)} cannot be kept exactly "
            "(a number holds about 17 digits); write it as text in quotes"
        )
    return value


def read_json(path: str, data: bytes) -> list[FileRow]:
    """Every item of a JSON ledger file as a row, or LedgerFileError when the file is unusable."""
    try:
        items = json.loads(
            data.decode("utf-8-sig"),
            object_pairs_hook=_json_object,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=lambda name: _Refused(f"{name} is not a number a ledger holds"),
        )
    except UnicodeDecodeError as error:
        raise file_error(path, f"not UTF-8 text (byte offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise file_error(path, f"not valid JSON ({error})") from None
    except RecursionError:
        raise file_error(
            path, "nested too deeply; a ledger file is a list of flat objects"
        ) from None
    if not isinstance(items, list):
        raise file_error(path, f"expected a JSON list of objects, got {_json_type(items)}")
    return [_json_row(path, number, item) for number, item in enumerate(items, start=1)]


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    names: dict[type, str] = {list: "a list", str: "text"}
    return names.get(type(value), type(value).__name__)


def _json_row(path: str, number: int, item: Any) -> FileRow:
    def problem(key: str, value: str, reason: str) -> LineProblem:
        return LineProblem(number, key, value, reason, "item")

    if not isinstance(item, dict):
        return FileRow(
            number, {}, "item", (problem("", "", f"is {_json_type(item)}, not an object"),)
        )
    problems: list[LineProblem] = []
    twice = set(getattr(item, "twice", ()))
    values: dict[str, str] = {}
    for key, value in item.items():
        name = key.strip().lower()
        if name not in LEDGER_FIELDS:
            keys = ", ".join(LEDGER_FIELDS)
            problems.append(problem(key, "", f"unknown key{meant(name)} (keys are {keys})"))
            continue
        if name in values:  # "MAC" and "mac": which one was meant cannot be told
            twice.add(name)
        text, reason = _json_text(name, value)
        if reason:
            problems.append(problem(name, "", reason))
        values[name] = text
    problems += [problem(key, "", "the key appears twice") for key in sorted(twice)]
    problems += [problem(name, "", "is required") for name in REQUIRED if name not in values]
    return FileRow(number, values, "item", tuple(problems))


def _json_text(name: str, value: Any) -> tuple[str, str]:
    """A JSON value as field text, or the reason it cannot be one."""
    if isinstance(value, _Refused):
        return "", value.reason
    if isinstance(value, dict):
        return "", "a nested object; give text"
    if isinstance(value, list):
        if name not in LIST_FIELDS:
            return "", f"a list where one value belongs (lists are for {', '.join(LIST_FIELDS)})"
        for position, part in enumerate(value, start=1):
            if not isinstance(part, str) or not part.strip():
                return "", f"list entry {position} is {_entry_kind(part)}; a list holds text only"
        return ";".join(value), ""
    if isinstance(value, bool) and name != "isolated":  # "owner": true is no one's name
        return "", f"{cell_text(value)} where text belongs; only isolated is true or false"
    if name in REQUIRED and isinstance(value, int | float) and not isinstance(value, bool):
        return "", f"the number {value}; write {name} as text in quotes"
    return cell_text(value), ""


def _entry_kind(part: Any) -> str:
    """What a list entry that is not text is, for the message."""
    if part is None:
        return "null"
    if isinstance(part, bool):
        return "true/false"
    if isinstance(part, int | float | _Refused):
        return "a number"
    if isinstance(part, str):
        return "empty"
    return _json_type(part)
