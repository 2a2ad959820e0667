"""Text from the network made harmless wherever ipguard writes it: terminals, files, browsers.

Hostnames, banners, page titles and SSDP fields are stored as the host sent them; they may hold
terminal escape sequences (ESC, and the 8-bit CSI 0x9b), NUL, bidirectional overrides that make
text read backwards, line separators, or characters that draw nothing at all (zero-width and
format characters, Unicode tag characters that smuggle invisible ASCII, Hangul fillers that make
a name look empty). `visible` shows each such character as an escape (`\\x1b`, `\\u202e`,
`\\U000e0041`) so that it can be read but never acts; `json_text` does the same inside JSON
strings, which stays valid JSON that decodes to the stored text. This is the one rule: the
terminal, HTML, Markdown, CSV and JSON outputs all use it. Letters of any script and the spaces
people type between them (no-break, ideographic) are ordinary text and stay as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), the format
# characters that draw nothing (soft hyphen, zero-width and bidirectional marks, BOM,
# interlinear annotation, musical beams, shorthand format controls, tags), the combining grapheme
# joiner and the Hangul fillers (blank-looking letters), line/paragraph separators, lone
# surrogates and the noncharacters (no XML, so no XLSX cell, may hold U+FFFE or U+FFFF).
# Variation selectors are kept: emoji and CJK ideographic variants need them.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufdd0-\ufdef\ufeff\uffa0\ufff9-\ufffb"
    "\ufffe\uffff\ud800-\udfff"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# What breaks a line or spaces out text in ASCII, and the Unicode line separators; not the
# no-break or ideographic spaces, which belong to the text they stand in (李\u3000伟).
_BREAKS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f \x85\u2028\u2029]+")


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return _NAMED.get(char) or f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_JOINERS = "\u200c\u200d"


def _joins(match: re.Match[str]) -> bool:
    """Whether a zero-width (non-)joiner is the script's own: between two non-ASCII characters.

    Persian writes ZWNJ inside words (لپ‌تاپ), Indic scripts shape conjuncts with both, emoji
    sequences are ZWJ-joined (👨‍👩‍👧): there the joiner changes what is drawn. After or before
    ASCII, at either end, or next to another hidden character it only hides (adm‍in, or a run
    of joiners carrying data), and is shown.
    """
    text, start, end = match.string, match.start(), match.end()
    if match.group() not in _JOINERS or start == 0 or end == len(text):
        return False
    return all(
        ord(neighbour) > 0x7F and not _HIDDEN.match(neighbour)
        for neighbour in (text[start - 1], text[end])
    )


def visible(value: Any, *, keep: str = "") -> str:
    """`value` as text with every hidden or control character shown as an escape.

    Characters in `keep` (say "\\n" for a multi-line cell) are left as they are, and so is a
    joiner that belongs to its script (see `_joins`).
    """
    text = "" if value is None else str(value)
    if not _HIDDEN.search(text):
        return text
    return _HIDDEN.sub(
        lambda m: m.group() if m.group() in keep or _joins(m) else _escape(m.group()), text
    )


def one_line(value: Any) -> str:
    """`visible` text on one line: each run of line breaks, tabs and spaces becomes one space."""
    text = "" if value is None else str(value)
    return visible(_BREAKS.sub(" ", text).strip(" "))


# What XML 1.0, and so an XLSX cell, cannot hold: C0 controls other than tab and line breaks,
# lone surrogates and the noncharacters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """`value` as text an XML document can hold: only what it cannot is shown as an escape.

    Ledger text is kept as it was typed (line breaks in notes included), but a ledger written by
    an older ipguard may hold a control character, which openpyxl refuses, or U+FFFF, which it
    writes into a workbook no spreadsheet opens.
    """
    text = "" if value is None else str(value)
    return _NOT_XML.sub(lambda m: _escape(m.group()), text) if _NOT_XML.search(text) else text


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """JSON with non-ASCII text kept readable but every hidden character escaped (`\\u001b`)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    # Outside strings JSON holds only structure and whitespace: newlines and spaces of the
    # indentation, which _HIDDEN leaves alone except for the newline, kept here.
    return _HIDDEN.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\n" or _joins(match):
        return char
    if code < 0x10000:
        return f"\\u{code:04x}"
    # JSON spells a character beyond the BMP as its UTF-16 surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
