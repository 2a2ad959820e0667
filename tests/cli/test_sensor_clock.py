"""A sensor with a wrong clock on a shared PostgreSQL ledger (faketime sets the sensor's clock)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.pg import create_database

ROOT = Path(__file__).resolve().parents[2]
CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "north"\n'


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime")
def test_a_sensor_whose_clock_is_wrong_may_not_scan_a_shared_ledger(
    postgres_server: str, tmp_path: Path
) -> None:
    # A sensor whose hardware clock keeps China's local time, read as UTC, runs eight hours
    # ahead: its scans wrote runs, findings and sightings dated eight hours in the future into
    # the ledger every sensor shares (first seen after last seen, never stale, never overdue).
    url = create_database(postgres_server)
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)

    def ipguard(*args: str, offset: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tests.hardening.fake_cli", "--hosts", "3", "--"]
        argv += ["--db", url, "--config", str(config), *args]
        if offset is not None:
            argv = ["faketime", "-f", offset, *argv]
        env = {**os.environ, "IPGUARD_ACTOR": "cron", "TZ": "Asia/Shanghai"}
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)

    for offset, told in (("+8h", "8 h ahead of"), ("-10m", "10 min behind")):
        refused = ipguard("scan", "--quiet", offset=offset)
        assert refused.returncode == 3, refused.stderr
        assert refused.stderr.startswith("error: this sensor's clock (")
        assert f"UTC) is {told} the ledger server's (" in refused.stderr
        assert (
            "set the clock that is wrong (timedatectl set-ntp true: this sensor's, or the "
            "database server's if every sensor is refused)" in refused.stderr
        )
    assert json.loads(ipguard("runs", "list", "--format", "json").stdout) == []

    # Two minutes off is a clock that drifted a little: the scan goes ahead.
    done = ipguard("scan", "--quiet", offset="-2m")
    assert done.returncode == 1, done.stderr  # three unregistered hosts
    (run,) = json.loads(ipguard("runs", "list", "--format", "json").stdout)
    assert run["status"] == "complete"
    # In Asia/Shanghai the times are still UTC: two minutes behind now, not eight hours off.
    started = datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=1) < datetime.now(UTC) - started < timedelta(minutes=3)
    found = json.loads(ipguard("findings", "list", "--format", "json").stdout)["findings"]
    assert found
    for item in found:  # three unregistered hosts: high, so due 24 h after first seen
        first = datetime.fromisoformat(item["first_seen"].replace("Z", "+00:00"))
        due = datetime.fromisoformat(item["report_due_at"].replace("Z", "+00:00"))
        assert abs(first - started) < timedelta(minutes=1) and due - first == timedelta(hours=24)


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime")
def test_a_prune_from_a_machine_whose_clock_is_ahead_is_refused(
    postgres_server: str, tmp_path: Path
) -> None:
    # `ipguard prune` from an administrator's machine whose clock was a year ahead computed its
    # cutoff from that clock: it removed a year of the history the retention keeps.
    from ipguard.ledger.store import Store
    from tests.reports.history import add_run

    url = create_database(postgres_server)
    store = Store(url)
    now = datetime.now(UTC)
    for days in (400, 200, 10):
        add_run(store, now - timedelta(days=days))
    store.close()
    argv = [sys.executable, "-m", "ipguard", "--db", url, "prune", "--format", "json"]
    env = {**os.environ, "IPGUARD_ACTOR": "admin"}

    def prune(offset: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["faketime", "-f", offset, *argv], capture_output=True, text=True, env=env, cwd=ROOT,
            timeout=120,
        )  # fmt: skip

    refused = prune("+365d")
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.startswith("error: this machine's clock (")
    assert "UTC) is 365 d ahead of the ledger server's (" in refused.stderr
    assert "its cutoff would remove history the retention keeps" in refused.stderr
    done = prune("+1m")  # a clock a minute off prunes as it should: the run of 400 days ago
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"] == 1
