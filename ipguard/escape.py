"""Text from the network made harmless wherever ipguard writes it: terminals, files, browsers.

Hostnames, banners, page titles and SSDP fields are stored as the host sent them; they may hold
terminal escape sequences (ESC, and the 8-bit CSI 0x9b), NUL, bidirectional overrides that make
text read backwards, or line separators. `visible` shows each such character as an escape
(`\\x1b`, `\\u202e`) so that it can be read but never acts; `json_text` does the same inside
JSON strings, which stays valid JSON that decodes to the stored text.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), zero-width and
# bidirectional formatting characters, line/paragraph separators, BOM, lone surrogates.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(value: Any, *, keep: str = "") -> str:
    """`value` as text with every hidden or control character shown as an escape.

    Characters in `keep` (say "\\n" for a multi-line cell) are left as they are.
    """
    text = "" if value is None else str(value)
    if not _HIDDEN.search(text):
        return text
    return _HIDDEN.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """JSON with non-ASCII text kept readable but every hidden character escaped (`\\u001b`)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    # Outside strings JSON holds only structure and whitespace: newlines and spaces of the
    # indentation, which _HIDDEN leaves alone except for the newline, kept here.
    return _HIDDEN.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    return char if char == "\n" else f"\\u{ord(char):04x}"
