"""Standard output that fails: a full disk, closed by the caller, a reader that stops early.

Each is a real `ipguard` process writing to a real /dev/full, a closed descriptor or a pipe.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.hardening.helpers import CONFIG, REPO, env, fake_cli_argv, ipguard_argv

FULL = "error: cannot write to standard output: No space left on device\n"
CLOSED = (
    "error: cannot write to standard output: it is closed; "
    "redirect it to a file or /dev/null instead\n"
)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger of 3,000 devices: its listing is larger than a pipe holds."""
    folder = tmp_path_factory.mktemp("ledger")
    rows = [
        f"198.18.{n // 250}.{n % 250 + 1},02:00:00:00:{n // 256:02x}:{n % 256:02x}"
        for n in range(3000)
    ]
    (folder / "ledger.csv").write_text("ip,mac\n" + "\n".join(rows) + "\n")
    done = subprocess.run(
        ipguard_argv("--db", str(folder / "l.db"), "ledger", "import", str(folder / "ledger.csv")),
        env=env(folder),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return folder / "l.db"


def _ipguard(
    args: list[str], tmp_path: Path, stdout: int | None = None, closed: bool = False
) -> subprocess.CompletedProcess[str]:
    with open(os.devnull if stdout is None else "/dev/full", "w") as sink:
        return subprocess.run(
            args,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env(tmp_path),
            timeout=60,
            check=False,
            preexec_fn=(lambda: os.close(1)) if closed else None,
        )


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],  # a rich table: rich flushes at once, the failure comes mid-command
        ["ledger", "list", "--format", "csv"],  # large: fails while writing
        ["ledger", "show", "198.18.0.1", "--format", "json"],  # small: fails at the last flush
        ["--version"],  # written before any command runs
    ],
    ids=["table", "csv", "small-json", "version"],
)
def test_standard_output_on_a_full_disk_is_one_error_line_and_exit_3(
    command: list[str], ledger: Path, tmp_path: Path
) -> None:
    done = _ipguard(ipguard_argv("--db", str(ledger), *command), tmp_path, stdout=1)
    assert (done.returncode, done.stderr) == (3, FULL)


def test_closed_standard_output_is_an_error_for_output_and_none_for_a_quiet_scan(
    ledger: Path, tmp_path: Path
) -> None:
    listed = _ipguard(ipguard_argv("--db", str(ledger), "runs", "list"), tmp_path, closed=True)
    assert (listed.returncode, listed.stderr) == (3, CLOSED)
    # A quiet scan writes nothing there: it runs as usual (exit 1: unregistered hosts are high),
    # and the ledger it opens never takes descriptor 1's place.
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    db = tmp_path / "scan.db"
    scanned = _ipguard(
        fake_cli_argv("--db", str(db), "--config", str(config), "scan", "--quiet"),
        tmp_path,
        closed=True,
    )
    assert (scanned.returncode, scanned.stderr) == (1, "")
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("SELECT status FROM scan_run").fetchall() == [("complete",)]


def _read_a_little(args: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run `args`, read 100 bytes of its output and close the pipe (like `| head -c 100`)."""
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env(tmp_path),
    )
    assert process.stdout is not None and process.stderr is not None
    assert len(process.stdout.read(100)) == 100
    process.stdout.close()
    error = process.stderr.read().decode()
    process.stderr.close()
    return process.wait(timeout=60), error


def test_a_reader_that_stops_early_leaves_the_exit_code_to_the_command(
    ledger: Path, tmp_path: Path
) -> None:
    for fmt in ("csv", "json"):
        listed = _read_a_little(
            ipguard_argv("--db", str(ledger), "ledger", "list", "--format", fmt), tmp_path
        )
        assert listed == (0, ""), fmt
    # A scan's output cut short still exits by its findings (1: unregistered hosts are high).
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    argv = fake_cli_argv(
        "--db",
        str(tmp_path / "scan.db"),
        "--config",
        str(config),
        "scan",
        "--format",
        "json",
        hosts=3000,
    )
    assert _read_a_little(argv, tmp_path) == (1, "")
