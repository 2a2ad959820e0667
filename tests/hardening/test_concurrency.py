"""Several ipguard processes on one SQLite ledger at once: the lock, WAL and the busy timeout.

Two scans of one site: the second exits 3 at once, or waits its turn with --wait. Scans of
different sites and an import at the same moment: all complete, nothing lost.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hardening.helpers import (
    CONFIG,
    REPO,
    env,
    fake_cli_argv,
    ledger_facts,
    run,
    stop,
    wait_for,
)
from tests.hardening.test_kills import big_ledger_file


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ipguard.toml"
    path.write_text(CONFIG)
    return path


def start(argv: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_scan_of_the_same_site_exits_3_or_waits_its_turn(
    tmp_path: Path, config: Path
) -> None:
    db = str(tmp_path / "ledger.db")
    flag = tmp_path / "started"
    common = ("--db", db, "--config", str(config), "scan", "--quiet")
    first = start(fake_cli_argv(*common, hosts=200, hold=3.0, flag=flag), tmp_path)
    try:
        wait_for(flag, first)
        refused = run(fake_cli_argv(*common, hosts=200), tmp_path)
        assert refused.returncode == 3
        assert refused.stderr == (
            "error: another scan of site 'lab' is running; try again later or pass --wait SECONDS\n"
        )
        waited = run(fake_cli_argv(*common, "--wait", "60", hosts=300, seed=1), tmp_path)
        assert first.wait(timeout=60) == 1
        assert waited.returncode == 1, waited.stderr
    finally:
        stop(first)
    facts = ledger_facts(db)
    assert facts["integrity"] == "ok"
    assert [run[1] for run in facts["runs"]] == ["complete", "complete"]
    assert facts["observations"] == {"1": 200, "2": 300}


def test_scans_of_two_sites_and_an_import_at_once_all_complete(
    tmp_path: Path, config: Path
) -> None:
    db = str(tmp_path / "ledger.db")
    rows = big_ledger_file(tmp_path / "rows.csv", 10_000)
    assert run(fake_cli_argv("--db", db, "ledger", "list"), tmp_path).returncode == 0  # migrate
    for round_ in range(2):
        processes = [
            start(
                fake_cli_argv(
                    "--db",
                    db,
                    "--config",
                    str(config),
                    "scan",
                    "--quiet",
                    "--site",
                    site,
                    hosts=800,
                    seed=round_,
                ),
                tmp_path,
            )
            for site in ("north", "south")
        ]
        if round_ == 0:
            processes.append(
                start(fake_cli_argv("--db", db, "ledger", "import", str(rows)), tmp_path)
            )
        try:
            codes = [process.wait(timeout=120) for process in processes]
        finally:
            for process in processes:
                stop(process)
        # 0 or 1: whether the import committed before a scan judged decides which findings.
        assert codes[0] in (0, 1) and codes[1] in (0, 1) and codes[2:] in ([], [0]), codes
    facts = ledger_facts(db)
    assert facts["integrity"] == "ok" and facts["foreign_keys"] == []
    assert [run[1] for run in facts["runs"]] == ["complete"] * 4
    assert sorted(facts["observations"].values()) == [800] * 4
    assert facts["counts"]["device"] == 10_000
