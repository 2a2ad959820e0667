"""One rule for hidden characters, the same in every output; ordinary letters and spaces untouched.

`ipguard.escape.visible` decides what a reader must see as an escape (controls, bidi and other
format characters, Unicode tag characters that carry invisible text, line separators, fillers
that draw nothing); the terminal, HTML, Markdown, CSV and JSON all use it. Markdown output is
checked through a real CommonMark renderer (markdown-it-py, which rich brings), so what a wiki
shows is what the ledger holds.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from ipguard.cli.output import safe
from ipguard.escape import json_text, visible
from ipguard.reports import markdown

# Characters that draw nothing yet change what a reader sees or what a program gets.
INVISIBLE = [
    "\U000e0041",  # TAG LATIN CAPITAL LETTER A: "ASCII smuggling" of text no one sees
    "\U000e007f",  # CANCEL TAG
    "\u3164",  # HANGUL FILLER: an empty-looking name
    "\u115f",  # HANGUL CHOSEONG FILLER
    "\uffa0",  # HALFWIDTH HANGUL FILLER
    "\u034f",  # COMBINING GRAPHEME JOINER
    "\U0001d173",  # MUSICAL SYMBOL BEGIN BEAM (a format character)
    "\u200b",  # ZERO WIDTH SPACE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\x9b",  # 8-bit CSI
    "\uffff",  # a noncharacter: no XML (so no XLSX cell) may hold it
]
# Ordinary text: letters of any script, and the spaces people type between them.
ORDINARY = [
    "Zoë-Laptop",
    "李的电脑",
    "李\u3000伟",
    "Café\u00a02",
    "Ünïcödé",
    "ok 👍",
    "Δ-ώ",
    "لپ\u200cتاپ-علی",  # Persian writes a zero-width non-joiner inside words
    "क्\u200dष",  # Devanagari shapes a conjunct with a zero-width joiner
    "👨\u200d👩\u200d👧 iPad",  # an emoji sequence
]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_output_shows_a_hidden_character_as_an_escape(char: str) -> None:
    text = f"admin{char}x"
    for shown in (visible(text), safe(text), markdown.md(text)):
        assert char not in shown and "admin" in shown and f"{ord(char):x}" in shown, repr(shown)
    encoded = json_text({"name": text})
    assert char not in encoded
    assert json.loads(encoded) == {"name": text}  # lossless: decodes to the stored text


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_names_show_as_themselves(text: str) -> None:
    assert visible(text) == text
    assert safe(text) == text
    assert json.loads(json_text(text)) == text and json_text(text) == json.dumps(
        text, ensure_ascii=False
    )


@pytest.mark.parametrize(
    "text",
    ["adm\u200din", "\u200cadmin", "admin\u200d", "李\u200c\u200c\u200d伟", "\u202e\u200d伟"],
)
def test_a_joiner_that_only_hides_is_shown(text: str) -> None:
    """Next to ASCII, at an end, or in a run: a joiner there changes nothing drawn, it hides."""
    for shown in (visible(text), json_text(text)):
        assert "\u200c" not in shown and "\u200d" not in shown, repr(shown)
    assert json.loads(json_text(text)) == text


def test_a_lone_surrogate_in_json_stays_valid_and_lossless() -> None:
    text = "x\udcffy\ud800"
    encoded = json_text([text])
    encoded.encode("utf-8")  # no lone surrogate reaches the bytes
    assert json.loads(encoded) == [text]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def rendered_text(markdown_text: str) -> str:
    """What a CommonMark renderer (with GFM tables) shows for `markdown_text`, as plain text."""
    from markdown_it import MarkdownIt

    parser = _Text()
    parser.feed(MarkdownIt("commonmark").enable("table").render(markdown_text))
    return "".join(part for part in parser.parts if part.strip())  # not the markup's newlines


@pytest.mark.parametrize(
    "text",
    [
        "admin&ZeroWidthSpace;",  # a named entity a renderer turns into an invisible character
        "gnp&rlm;exe",  # a bidi mark by name
        "&#x202e;gnp.exe",  # a bidi override by number
        "&lt;b&gt; &amp; &copy;",  # entities that must show as typed, not as <b> & ©
        "a|b [x](javascript:alert(1)) <http://e> `c` *d* _e_ # ~f~ !g",
    ],
)
def test_markdown_shows_the_stored_text_in_a_real_renderer(text: str) -> None:
    cell = f"| name |\n| --- |\n| {markdown.md(text)} |\n"
    assert rendered_text(cell) == f"name{text}"
    assert rendered_text(f"- {markdown.md(text)}\n") == text


# What a device says, as the scanners turn it into one line of text: by the same rule.
SAID = [
    ("李\u3000伟的主页", "李\u3000伟的主页"),  # an ideographic space is text
    ("Café\u00a0Wi-Fi 🫨", "Café\u00a0Wi-Fi 🫨"),  # so are a no-break space and a newer emoji
    ("\u202egnp.exe", "\\u202egnp.exe"),  # not "\x202e", which reads as " 2e"
    ("tag\U000e0041", "tag\\U000e0041"),
    ("\x1b[31mred", "\\x1b[31mred"),
]


@pytest.mark.parametrize(("sent", "shown"), SAID)
def test_scanners_make_one_line_of_what_a_device_says_by_the_same_rule(
    sent: str, shown: str
) -> None:
    from ipguard.scanners import http, nmapfacts, upnp

    page = f"HTTP/1.0 200 OK\r\n\r\n<title>{sent}</title>".encode()
    assert http.title(http._parse(page, 4096)) == shown
    ssdp = upnp.parse_reply(f"HTTP/1.1 200 OK\r\nSERVER: {sent}\r\n\r\n".encode())
    assert ssdp is not None and ssdp["SERVER"] == shown
    assert nmapfacts.banner_line(f"{sent}\r\nline two\r\n".encode()) == f"{shown} | line two"
