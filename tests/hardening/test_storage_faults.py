"""The ledger fails under ipguard: read-only, full, gone. Clear errors, exit 3, nothing lost.

A scan that swept the network but cannot store what it saw keeps it in the spool, and the next
scan stores it as the complete run it was (ipguard.spool). Real processes, real file systems: a
tmpfs in a private mount namespace (full, read-only), and a root process without the capabilities
that let root write anywhere (read-only by permissions).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.hardening.helpers import (
    CONFIG,
    PrivateTmpfs,
    env,
    fake_cli_argv,
    ledger_facts,
    own_cluster,
    private_tmpfs,
    run,
    spool_files,
    wait_for,
)

# Root without the capabilities that let it ignore file permissions: `chmod` binds it again.
NO_DAC = "-dac_override,-dac_read_search,-fowner"
AS_PLAIN_ROOT = ["setpriv", f"--inh-caps={NO_DAC}", f"--bounding-set={NO_DAC}", "--"]


def ledger_csv(path: Path, count: int, start: int = 1) -> Path:
    lines = ["ip,mac,owner"]
    lines += [
        f"198.18.{n // 250}.{n % 250 + 1},02:00:00:00:{n // 256:02x}:{n % 256:02x},o{n}"
        for n in range(start, start + count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ipguard.toml"
    path.write_text(CONFIG)
    return path


class Ledger:
    """A SQLite ledger some fault is done to while a scan holds the network part."""

    def __init__(self, tmp_path: Path, config: Path, kind: str, tmpfs: PrivateTmpfs | None):
        self.tmp_path, self.config, self.kind, self.tmpfs = tmp_path, config, kind, tmpfs
        if tmpfs is not None:
            self.db = tmpfs.inside("ledger.db")
        else:
            (tmp_path / "db").mkdir()
            self.db = str(tmp_path / "db" / "ledger.db")

    def argv(self, *args: str, **fake: object) -> list[str]:
        argv = fake_cli_argv("--db", self.db, "--config", str(self.config), *args, **fake)  # type: ignore[arg-type]
        if self.tmpfs is not None:
            return self.tmpfs.argv(argv)
        return [*AS_PLAIN_ROOT, *argv]

    def facts(self) -> dict:
        return ledger_facts(self.db, through=self.tmpfs)

    def break_it(self) -> None:
        if self.tmpfs is not None:
            self.tmpfs.fill()
        else:
            folder = Path(self.db).parent
            for item in folder.iterdir():
                item.chmod(0o444)
            folder.chmod(0o555)

    def mend(self) -> None:
        if self.tmpfs is not None:
            for name in ("filler", "filler-2"):
                self.tmpfs.path(name).unlink()
        else:
            folder = Path(self.db).parent
            folder.chmod(0o755)
            for item in folder.iterdir():
                item.chmod(0o644)


@pytest.mark.parametrize("kind", ["read-only", "disk-full"])
def test_a_scan_that_cannot_store_keeps_its_results_for_the_next_one(
    tmp_path: Path, config: Path, kind: str
) -> None:
    if kind == "disk-full":
        with private_tmpfs(tmp_path, "6m") as tmpfs:
            _spool_and_recover(Ledger(tmp_path, config, kind, tmpfs))
    else:
        _spool_and_recover(Ledger(tmp_path, config, kind, None))


def _spool_and_recover(ledger: Ledger) -> None:
    tmp_path = ledger.tmp_path
    first = run(ledger.argv("scan", "--quiet", hosts=50), tmp_path)
    assert first.returncode == 1, first.stderr
    before = ledger.facts()

    flag = tmp_path / "started"
    scan = subprocess.Popen(
        ledger.argv("scan", "--format", "json", hosts=60, seed=1, hold=1.0, flag=flag),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(flag, scan)
        ledger.break_it()
        out, err = scan.communicate(timeout=120)
    finally:
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 3 and out == ""
    line = one_error_line(err)
    hint = "free space" if ledger.kind == "disk-full" else "writable"
    assert "is unavailable" in line and hint in line
    (kept,) = spool_files(tmp_path)
    assert f"the results of scan run 2 are kept in {kept}" in line
    assert len(json.loads(kept.read_text())["result"]["observations"]) == 60

    ledger.mend()
    broken = ledger.facts()
    assert broken["integrity"] == "ok" and broken["foreign_keys"] == []
    assert [run[1] for run in broken["runs"]] == ["complete", "running"]
    assert broken["observations"] == before["observations"] == {"1": 50}
    assert broken["counts"]["finding"] == before["counts"]["finding"]

    third = run(ledger.argv("scan", hosts=50), tmp_path)
    assert third.returncode == 1, third.stderr
    assert "run 2 could not be stored when it ran; stored now from the spool" in third.stderr
    after = ledger.facts()
    assert after["integrity"] == "ok"
    assert [run[1] for run in after["runs"]] == ["complete", "complete", "complete"]
    assert after["observations"] == {"1": 50, "2": 60, "3": 50}
    assert spool_files(tmp_path) == []
    # The spooled run judged like any other: its new hosts were found, then resolved by run 3.
    stored = json.loads(after["runs"][1][2])
    assert (stored["hosts_seen"], stored["findings_new"]) == (60, 15)


def test_when_the_spool_cannot_be_written_either_the_error_says_so(
    tmp_path: Path, config: Path
) -> None:
    ledger = Ledger(tmp_path, config, "read-only", None)
    assert run(ledger.argv("scan", "--quiet"), tmp_path).returncode == 1
    (tmp_path / "state").mkdir(exist_ok=True)
    flag = tmp_path / "started"
    scan = subprocess.Popen(
        ledger.argv("scan", hold=1.0, flag=flag),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(flag, scan)
        ledger.break_it()
        (tmp_path / "state").chmod(0o555)
        _out, err = scan.communicate(timeout=120)
    finally:
        if scan.poll() is None:
            scan.kill()
        (tmp_path / "state").chmod(0o755)
        ledger.mend()
    line = one_error_line(err)
    assert scan.returncode == 3
    assert "the results of scan run 2 could not be kept either" in line and "lost" in line
    assert ledger.facts()["integrity"] == "ok"


def test_a_read_only_file_system_refuses_changes_and_loses_nothing(
    tmp_path: Path, config: Path
) -> None:
    with private_tmpfs(tmp_path, "16m") as tmpfs:
        ledger = Ledger(tmp_path, config, "ro-fs", tmpfs)
        rows = ledger_csv(tmp_path / "ledger.csv", 20)
        assert run(ledger.argv("ledger", "import", str(rows)), tmp_path).returncode == 0
        # Exit 0: the fake scanner's ten hosts are the first ten records of the ledger.
        assert run(ledger.argv("scan", "--quiet"), tmp_path).returncode == 0
        before = ledger.facts()
        tmpfs.remount("ro")
        more = ledger_csv(tmp_path / "more.csv", 20, start=100)
        for args in (
            ("ledger", "import", str(more)),
            ("scan",),
            ("ledger", "add", "198.18.9.9", "02:00:00:00:09:09"),
            ("prune",),
        ):
            done = run(ledger.argv(*args), tmp_path)
            assert done.returncode == 3, (args, done.stdout, done.stderr)
            line = one_error_line(done.stderr)
            assert "ledger" in line and ("unavailable" in line or "Read-only" in line), line
        tmpfs.remount("rw")
        assert ledger.facts() == before


def test_a_full_disk_fails_an_import_whole_and_it_succeeds_once_there_is_room(
    tmp_path: Path, config: Path
) -> None:
    with private_tmpfs(tmp_path, "4m") as tmpfs:
        ledger = Ledger(tmp_path, config, "disk-full", tmpfs)
        assert (
            run(
                ledger.argv("ledger", "import", str(ledger_csv(tmp_path / "a.csv", 10))), tmp_path
            ).returncode
            == 0
        )
        before = ledger.facts()
        ledger.break_it()
        big = ledger_csv(tmp_path / "big.csv", 5000, start=1000)
        done = run(ledger.argv("ledger", "import", str(big)), tmp_path)
        assert done.returncode == 3
        assert "free space" in one_error_line(done.stderr)
        ledger.mend()
        assert ledger.facts() == before
        done = run(ledger.argv("ledger", "import", str(big)), tmp_path)
        assert done.returncode == 0, done.stderr
        assert ledger.facts()["counts"]["device"] == 5010


def test_postgresql_going_down_mid_scan_keeps_the_results(tmp_path: Path, config: Path) -> None:
    import psycopg

    with own_cluster(5434) as cluster:
        url = cluster.url()
        base = ("--db", url, "--config", str(config), "scan")
        assert run(fake_cli_argv(*base, "--quiet", hosts=50), tmp_path).returncode == 1
        flag = tmp_path / "started"
        scan = subprocess.Popen(
            fake_cli_argv(*base, hosts=60, seed=1, hold=1.0, flag=flag),
            cwd=tmp_path,
            env=env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(flag, scan)
            cluster.stop()
            _out, err = scan.communicate(timeout=120)
        finally:
            if scan.poll() is None:
                scan.kill()
        assert scan.returncode == 3
        line = one_error_line(err)
        (kept,) = spool_files(tmp_path)
        assert "is unavailable" in line and f"kept in {kept}" in line

        cluster.start()
        again = run(fake_cli_argv(*base, hosts=50), tmp_path)
        assert again.returncode == 1, again.stderr
        assert "run 2 could not be stored when it ran; stored now from the spool" in again.stderr
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as connection:
            runs = connection.execute("SELECT id, status FROM scan_run ORDER BY id").fetchall()
            seen = connection.execute(
                "SELECT run_id, sum(entries) FROM run_records WHERE kind = 'observations'"
                " GROUP BY run_id ORDER BY run_id"
            ).fetchall()
        # (PostgreSQL may skip sequence values after a crash: compare in order, not by id.)
        assert [status for _id, status in runs] == ["complete"] * 3
        assert [count for _id, count in seen] == [50, 60, 50] and runs[1][0] == seen[1][0] == 2
        assert spool_files(tmp_path) == []
