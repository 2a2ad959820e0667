"""The HTML report in a real browser: headless Chromium loads it, runs nothing, draws it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ipguard.reports import html
from tests.reports.png import read_png
from tests.reports.samples import hostile_summary
from tests.reports.test_render import elements

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is needed (apt-get install chromium)"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
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
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = [int(count) for count in re.findall(rb"/Count (\d+)", data)]
    assert pages and 2 <= max(pages) <= 10  # a month fits in a few A4/Letter pages
