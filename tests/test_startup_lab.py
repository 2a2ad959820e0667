"""Start-up: a scan's first probe leaves before anything heavy is imported, and the run's
lifecycle holds although the sweep starts before the ledger is opened.

tests.firstprobe runs `ipguard` with every socket send wrapped: at the first frame it records
which heavy modules were already imported (none may be: scapy, SQLAlchemy, pydantic, nmap,
openpyxl and the rest come after the first probe). How soon that is after the process started
is a benchmark (bench/startup.py), not a test.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import small

REPO = Path(__file__).resolve().parents[1]
IPGUARD = str(Path(sys.executable).with_name("ipguard"))
SCAN_PATH = ("context", "main", "output", "scan", "streams")  # what `ipguard scan` needs


def argv(lab: Lab, work: Path, *args: str, first: Path | None = None) -> list[str]:
    base = ["--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml"), *args]
    command = (
        [sys.executable, "-m", "tests.firstprobe", str(first), *base]
        if first
        else [
            IPGUARD,
            *base,
        ]
    )
    return ["ip", "netns", "exec", lab.scanner_ns, *command]


def ready_lab(lab_factory: LabFactory, work: Path) -> Lab:
    """The small lab, its configuration and its ledger imported."""
    lab = lab_factory(small())
    lab.write_ledger_csv(work / "ledger.csv")
    lab.write_config(work / "ipguard.toml")
    imported = subprocess.run(
        argv(lab, work, "ledger", "import", str(work / "ledger.csv")), timeout=120
    )
    assert imported.returncode == 0
    return lab


def running(work: Path) -> bool:
    """Whether a run is recorded as running (read straight from the file: quick, read-only)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{work / 'ledger.db'}?mode=ro", uri=True)
        ) as db:
            return bool(db.execute("SELECT 1 FROM scan_run WHERE status = 'running'").fetchall())
    except sqlite3.Error:  # not created yet, or locked by a writer for a moment
        return False


def statuses(work: Path) -> list[str]:
    listed = subprocess.run(
        [IPGUARD, "--db", str(work / "ledger.db"), "runs", "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [run["status"] for run in json.loads(listed.stdout)]


@requires_lab("nmap")
@pytest.mark.lab
def test_the_first_probe_leaves_before_anything_heavy_is_imported(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = ready_lab(lab_factory, tmp_path)
    first = tmp_path / "first.json"
    for phases in ("sweep", "sweep,dhcp,names"):
        first.unlink(missing_ok=True)
        scan = subprocess.run(
            argv(lab, tmp_path, "scan", "--phases", phases, "--quiet", first=first),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert scan.returncode == 1, scan.stderr  # the lab's visitor is unregistered
        found = json.loads(first.read_text())
        assert found["modules"] == [], phases
        # Nor any other command's module: each is imported only when run (ipguard.cli.main).
        assert found["commands"] == [f"ipguard.cli.{name}" for name in SCAN_PATH], phases
    assert statuses(tmp_path) == ["complete", "complete"]


@requires_lab("nmap")
@pytest.mark.lab
def test_a_scan_killed_once_probing_leaves_no_running_run_behind(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = ready_lab(lab_factory, tmp_path)
    first = tmp_path / "first.json"
    for recorded in (False, True):  # as the first probe leaves; then once the run is recorded
        first.unlink(missing_ok=True)
        scan = subprocess.Popen(
            argv(lab, tmp_path, "scan", "--quiet", first=first),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and scan.poll() is None:
            if first.exists() and (not recorded or running(tmp_path)):
                break
            time.sleep(0.01)
        assert scan.poll() is None, "the scan ended before it could be killed"
        scan.send_signal(signal.SIGKILL)
        scan.wait(timeout=30)
    done = subprocess.run(
        argv(lab, tmp_path, "scan", "--phases", "sweep", "--quiet"), timeout=300, check=False
    )
    assert done.returncode == 1
    found = statuses(tmp_path)
    # Newest first: the run that finished; before it, each killed run that got as far as being
    # recorded, marked aborted by the scan after it.
    assert found[0] == "complete" and set(found[1:]) <= {"aborted"}, found
    assert "aborted" in found[1:], found
