"""Progress bars of `ledger import` and `ledger export`: on a terminal only, never with --quiet,
and a dry run without changes says so in one line. The installed command runs with its standard
error on a real pseudo-terminal, or on a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
ROWS = 3000


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    lines = ["ip,mac,owner"]
    for index in range(ROWS):
        high, low = divmod(index + 10, 250)
        lines.append(f"198.18.{high}.{low},02:00:00:00:{high:02x}:{low:02x},owner {index}")
    path = tmp_path / "ledger.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path: Path, *args: str, terminal: bool) -> tuple[int, str, str]:
    """ipguard with stderr on a pseudo-terminal (or a pipe); exit code, stdout, stderr."""
    argv = [IPGUARD, "--db", f"sqlite:///{tmp_path / 'ledger.db'}", *args]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL, env=env
    ) as process:
        os.close(follower)
        chunks: list[bytes] = []
        while True:  # bounded: the command ends, and the pty reports EOF (EIO) after it
            ready, _, _ = select.select([leader], [], [], 300)
            if not ready:
                process.kill()
                raise AssertionError("ipguard stopped writing for 300 s")
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=60)
    os.close(leader)
    return code, stdout, b"".join(chunks).decode(errors="replace")


def test_import_and_export_draw_bars_on_a_terminal(ledger_file: Path, tmp_path: Path) -> None:
    code, _, stderr = run(tmp_path, "ledger", "import", str(ledger_file), terminal=True)
    assert code == 0, stderr
    assert "checking rows" in stderr and "adding" in stderr and "━" in stderr
    assert f"imported {ledger_file} (merge): {ROWS} added" in stderr
    code, _, stderr = run(tmp_path, "ledger", "export", str(tmp_path / "out.xlsx"), terminal=True)
    assert code == 0, stderr
    assert "writing xlsx" in stderr and f"exported {ROWS} records" in stderr


def test_nothing_extra_off_a_terminal_or_with_quiet(ledger_file: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(tmp_path, "ledger", "import", str(ledger_file), terminal=False)
    assert (code, stdout) == (0, "")
    assert (
        stderr
        == f"imported {ledger_file} (merge): {ROWS} added, 0 updated, 0 retired, 0 unchanged\n"
    )
    again = tmp_path / "again.csv"
    code, _, stderr = run(tmp_path, "ledger", "export", str(again), "--quiet", terminal=True)
    assert (code, stderr) == (0, "")
    assert again.read_text(encoding="utf-8-sig").count("\n") == ROWS + 1


def test_a_dry_run_without_changes_prints_one_line(ledger_file: Path, tmp_path: Path) -> None:
    assert run(tmp_path, "ledger", "import", str(ledger_file), terminal=False)[0] == 0
    code, stdout, stderr = run(
        tmp_path, "ledger", "import", str(ledger_file), "--dry-run", terminal=False
    )
    assert code == 0
    assert stdout == ""
    assert stderr == (
        f"dry run, nothing changed: would be 0 added, 0 updated, 0 retired, {ROWS} unchanged\n"
    )
