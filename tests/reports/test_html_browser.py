"""The HTML report in a real browser: headless Chromium loads it, runs nothing, draws it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from ipguard.reports import html
from tests.reports.demo import demo_summary
from tests.reports.png import read_png
from tests.reports.samples import hostile_summary
from tests.reports.test_render import elements

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is needed (apt-get install chromium)"
)


def chromium(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may be fetched, even by mistake
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html.render(hostile_summary()), encoding="utf-8")
    return path


def test_the_browser_builds_the_dom_and_runs_nothing(page: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    tags = elements(dom)
    names = [tag for tag, _ in tags]
    assert "script" not in names and "img" not in names
    assert names.count("svg") == 2 and "polyline" in names and "table" in names
    # A script that ran would have renamed the page; the title is the one we wrote.
    title = dom[dom.index("<title>") + 7 : dom.index("</title>")]
    assert title == "ipguard report 2026-11-01 to 2026-11-30"
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []


def test_the_screenshot_shows_the_report(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = read_png(shot.read_bytes())
    assert (image.width, image.height) == (1280, 2000)
    colours = image.colours(step=2)
    total = sum(colours.values())
    white = colours.get(b"\xff\xff\xff", 0)
    assert len(colours) > 50  # text, chart lines, badges: not a blank or one-colour page
    assert 0.05 < 1 - white / total < 0.9
    # The two chart colours are drawn.
    assert colours.get(bytes.fromhex("1f5fae"), 0) > 50
    assert colours.get(bytes.fromhex("c43d2b"), 0) > 50


def test_it_prints(page: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert done.returncode == 0 and pdf.exists(), done.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert 2 <= pdf_pages(pdf)[0] <= 10  # three months of daily runs: a few A4 pages


def pdf_pages(pdf: Path) -> tuple[int, str]:
    """Pages and page size of a PDF, as poppler's pdfinfo reads them."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return int(fields["Pages"]), fields["Page size"].strip()


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.html"
    path.write_text(html.render(demo_summary()), encoding="utf-8")
    return path


def test_the_demo_report_prints_on_at_most_four_a4_pages(demo_page: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "demo.pdf"
    done = chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", demo_page.as_uri())
    assert done.returncode == 0 and pdf.exists(), done.stderr[-2000:]
    pages, size = pdf_pages(pdf)
    assert size.endswith("(A4)"), size
    assert pages <= 4
    # The page numbers come from the stylesheet's @page rule, not from Chromium's footer.
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    # The findings table's heading is repeated on every page it continues on.
    continued = [part for part in text.split("\f") if "answered ARP from" in part]
    assert len(continued) >= 2
    assert all("report due" in part for part in continued)


# Measures, in the print layout at A4's text width, every word of every findings-table cell: a word
# laid out on two lines, or wider than its cell, is a broken word. The result goes into the DOM.
MEASURE = """<script>
const broken = [];
const cells = document.querySelectorAll("table.findings td");
for (const td of cells) {
  const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  const box = td.getBoundingClientRect();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const rects = [...range.getClientRects()].filter((r) => r.width > 0);
      const lines = new Set(rects.map((r) => Math.round(r.top)));
      const right = Math.max(...rects.map((r) => r.right));
      if (lines.size > 1 || right > box.right + 0.5) broken.push(match[0]);
    }
  }
}
const out = document.createElement("pre");
out.id = "broken";
out.textContent = JSON.stringify({cells: cells.length, broken});
document.body.append(out);
</script>"""


def test_no_findings_cell_breaks_a_word_in_the_print_layout(
    demo_page: Path, tmp_path: Path
) -> None:
    page = demo_page.read_text(encoding="utf-8")
    # The print stylesheet applied on screen, at A4's width less the page margins.
    printed = page.replace("@media print", "@media all").replace(
        "</style>", "main { width: 186mm; }</style>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(printed.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    done = chromium(tmp_path, "--window-size=1000,1400", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="broken">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    result = json.loads(unescape(found.group(1)))
    assert result["cells"] == 15 * 8  # 15 findings: 7 cells and the summary's row each
    assert result["broken"] == []


def test_chinese_text_is_drawn_with_the_report_fonts(demo_page: Path, tmp_path: Path) -> None:
    """The report's font stack draws each CJK character as its own glyph, not as a box."""
    page = demo_page.read_text(encoding="utf-8")
    style = page[page.index("<style>") : page.index("</style>") + 8]
    characters = list(dict.fromkeys(re.findall(r"[\u4e00-\u9fff]", page)))[:6]
    assert len(characters) == 6  # the demo's owners and buildings are Chinese
    probe = tmp_path / "cjk.html"
    probe.write_text(glyph_page(style, characters), encoding="utf-8")

    def glyphs(*, env: dict[str, str] | None = None) -> list[bytes]:
        shot = tmp_path / "cjk.png"
        args = ("--window-size=800,600", "--hide-scrollbars", f"--screenshot={shot}")
        done = chromium(tmp_path, *args, probe.as_uri(), env=env)
        assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
        image = read_png(shot.read_bytes())
        size = image.channels
        return [
            b"".join(row[(100 * i) * size : (100 * i + 100) * size] for row in image.rows[:100])
            for i in range(len(characters))
        ]

    drawn = glyphs()
    assert all(len(set(glyph)) > 1 for glyph in drawn)  # something is drawn in every box
    assert len(set(drawn)) == len(characters)  # and each character differently: no tofu
    # Without a CJK font (fontconfig limited to DejaVu) the same page shows tofu: identical boxes.
    # This proves the check above can fail.
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><fontconfig><dir>/usr/share/fonts/truetype/dejavu</dir>'
        f"<cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>"
    )
    tofu = glyphs(env={**os.environ, "FONTCONFIG_FILE": str(config)})
    assert len(set(tofu)) == 1


def glyph_page(style: str, characters: list[str]) -> str:
    """One character per 100-pixel box along the top, in the page's own fonts, 64 px high."""
    boxes = "".join(
        f'<span style="left:{100 * i}px">{char}</span>' for i, char in enumerate(characters)
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8">{style}<style>'
        "body { margin: 0; } span { position: absolute; top: 0; width: 100px; height: 100px;"
        " font-size: 64px; line-height: 100px; text-align: center; color: #000; }"
        f"</style></head><body>{boxes}</body></html>"
    )


def test_the_stylesheet_names_the_cjk_font_of_the_package_the_readme_names() -> None:
    page = html.render(demo_summary())
    css = page[page.index("<style>") : page.index("</style>")]
    stack = re.search(r"font: [^;]*?/[\d.]+ ([^;]*);", css)
    assert stack
    fonts = [name.strip().strip('"') for name in stack.group(1).split(",")]
    # Noto Sans CJK (fonts-noto-cjk) first, then the desktops' own, the generic family last.
    assert fonts[0] == "Noto Sans CJK SC" and fonts[-1] == "sans-serif"
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in readme
    makefile = (Path(__file__).parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in makefile and "poppler-utils" in makefile
