"""A run's packed history that cannot be read back (a damaged row): the user is told which run,
in one line, and the site's scans go on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.ledger import packing
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "lab"\n'
HOST = ("198.18.1.10", "02:00:00:00:01:10")
SSH = [(HOST[0], "tcp/22")]


@pytest.mark.parametrize(
    "damage",
    [b"garbage", packing.pack([{"ip": "198.18.1.10"}], ["ip"])[:-6]],
    ids=["overwritten", "truncated"],
)
def test_a_damaged_run_is_named_and_the_next_scan_runs_in_full(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    # One damaged run_records row (a bad sector, a restore gone wrong): `ipguard diff` and every
    # later cron scan (which reads the last run's services as its baseline) died on a zlib.error
    # traceback, for ever.
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    cli = Cli(sqlite_url)
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    cli.scanner = scanner = FakeScanner([result(HOST, services=SSH)])
    scan = ["--config", str(config), "scan", "--quiet"]
    assert cli(*scan).exit_code == 1 and cli(*scan).exit_code == 1
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        damaged = sa.text("UPDATE run_records SET data = :data WHERE run_id = 2")
        connection.execute(damaged, {"data": damage})
    engine.dispose()

    shown = cli("diff")
    assert shown.exit_code == 3 and shown.stdout == ""
    assert shown.stderr.startswith("error: run 2: what it saw (")
    assert "cannot be read back from the ledger" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1

    assert cli(*scan).exit_code == 1  # the baseline is unreadable: this scan's services are full
    assert scanner.requests[-1].known_services is None
    assert cli(*scan).exit_code == 1  # and the next one's baseline is that scan
    assert scanner.requests[-1].known_services is not None


def test_prune_removes_a_live_watchers_damaged_batch_older_than_the_cutoff(sqlite_url: str) -> None:
    # A watcher runs for months; prune reads its batches that straddle the cutoff to keep their
    # newer part. A damaged one made every prune fail, so nothing was ever pruned again.
    from datetime import UTC, datetime, timedelta

    from ipguard.ledger import records, retention, runs
    from ipguard.ledger.store import Store
    from ipguard.model import ScanResult
    from tests.fakes import seen

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def batch(at: datetime, hosts: range) -> ScanResult:
        found = [seen(f"198.18.0.{n}", f"02:00:00:00:00:{n:02x}") for n in hosts]
        return ScanResult(observations=tuple(replace(o, seen_at=at) for o in found))

    store = Store(sqlite_url)
    with store.session() as session:
        run = runs.start(
            session, site="lab", interface="eth0", subnets=["198.18.0.0/24"], settings={},
            actor="tester", sensor="lab", version="0", now=now - timedelta(days=80),
            kind=runs.WATCH,
        )  # fmt: skip
        assert run.id is not None
        run.counts = {"heartbeat_at": now.isoformat()}
        for at, hosts in ((now - timedelta(days=70), range(10, 13)), (now, range(20, 22))):
            runs.store_results(session, run.id, batch(at, hosts), sighted=True)
        run_id = run.id
    with store.session() as session:
        damaged = sa.text("UPDATE run_records SET data = :data WHERE id = 1")
        session.execute(damaged, {"data": b"garbage"})
    with store.session() as session:
        dry = retention.prune(session, days=60, now=now, actor="tester", dry_run=True)
    with store.session() as session:
        done = retention.prune(session, days=60, now=now, actor="tester")
        assert dry.rows["observations"] == done.rows["observations"] == 3
        left = [r["ip"] for r in records.read(session, run_id, "observations")]
    store.close()
    assert left == ["198.18.0.20", "198.18.0.21"]
