"""The text of a CSV ledger file: UTF-8 or UTF-16 with their BOM, UTF-8 or GB18030, or `--encoding`.

Guessing must never garble a name. GB18030 decodes almost any bytes, so a file is read as GB18030
only when it is not UTF-8, does not look like UTF-8 with a stray byte, and every character in it is
one of GB2312's (the everyday simplified Chinese characters and symbols that Chinese spreadsheets
write). Anything else is an error that names the line and byte, and says to give `--encoding`.
"""

from __future__ import annotations

import codecs
import re

from ipguard.errors import InvalidValue, LedgerFileError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# A GB2312 character is two bytes, the first 0xA1-0xF7 and the second 0xA1-0xFE; Latin-1 text
# (M\xfcller) or a stray byte almost never forms only such pairs.
_GB2312_TEXT = re.compile(rb"(?:[\x00-\x7f]|[\xa1-\xf7][\xa1-\xfe])*")
# Western Windows Excel's "CSV (Comma delimited)" is Windows-1252 (cp1252), not Latin-1: its
# curly quotes and euro sign are bytes 0x80-0x9f, which Latin-1 reads as control characters.
_HINT = (
    'save it as "CSV UTF-8", or name its encoding with --encoding '
    "(e.g. cp1252 from Windows Excel, gb18030)"
)
_C1 = re.compile("[\x80-\x9f]")


def decode(path: str, data: bytes, encoding: str | None = None) -> str:
    """The file's text, or LedgerFileError naming where and why it cannot be read."""
    if encoding:
        return _decode_as(path, data, encoding)
    if data.startswith(_UTF16_BOMS):  # Excel's "Unicode Text": the BOM settles it
        return _decode_as(path, data, "utf-16")
    if _looks_utf16(data):
        raise _error(
            path,
            'is UTF-16 text ("Unicode Text"); save it as "CSV UTF-8", or pass --encoding utf-16',
        )
    if b"\x00" in data:
        raise _error(path, "not a text file (binary data); expected CSV")
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + len(data) - len(body)
        bad = data[offset]
    if data.startswith(codecs.BOM_UTF8) or _mostly_utf8(body):
        raise _error(
            path,
            f"line {_line(data, offset)}: byte {offset} (0x{bad:02x}) is not UTF-8, "
            f"while the rest of the file is; correct it, or {_HINT}",
        )
    whole = _GB2312_TEXT.match(data)
    if whole is None or whole.end() != len(data):
        offset = whole.end() if whole else 0
        raise _error(
            path,
            f"line {_line(data, offset)}: the text is not UTF-8 (byte {offset} is 0x"
            f"{data[offset]:02x}) and not clearly GB18030; {_HINT}",
        )
    return data.decode("gb18030")


def _decode_as(path: str, data: bytes, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise InvalidValue(
            f"--encoding {encoding!r}: unknown encoding (e.g. utf-8, gb18030, latin-1)"
        ) from None
    try:
        text = data.decode(codec.name)
    except UnicodeDecodeError as error:
        raise _error(
            path,
            f"line {_line(data, error.start)}: byte {error.start} is not {codec.name} text; "
            "check --encoding",
        ) from None
    control = _C1.search(text) if codec.name == "iso8859-1" else None
    if control:
        offset = len(text[: control.start()].encode(codec.name))
        raise _error(
            path,
            f"line {_line(data, offset)}: byte {offset} (0x{data[offset]:02x}) is a control "
            f"character in {codec.name}; a file from Windows Excel is cp1252: --encoding cp1252",
        )
    return text.removeprefix("\ufeff")


def _looks_utf16(data: bytes) -> bool:
    """UTF-16 without a BOM: ASCII text with a zero byte beside every character."""
    sample = data[:200]
    return len(sample) >= 4 and (
        sample[1::2].count(0) > len(sample) // 3 or sample[0::2].count(0) > len(sample) // 3
    )


def _mostly_utf8(data: bytes) -> bool:
    """Whether the file holds well-formed UTF-8 multi-byte characters (and so is UTF-8 at heart)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    return sum(1 for char in text if char > "\x7f") - bad > bad


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _error(path: str, reason: str) -> LedgerFileError:
    return LedgerFileError(path, message=f"{path}: {reason}; nothing was imported")
