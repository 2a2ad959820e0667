"""Benchmark: a scan's "when was each (ip, mac) pair last seen" read, against the ledger's age.

    python -m bench.last_seen [--runs 50] [--repeat 5]

A SQLite ledger gets `--runs` complete scan runs of a /20 (4,096 observations each, through the
ledger's own functions); after the first and after the last, `runs.last_seen` (the sighting
table) and the read it replaced (every stored observation of every run, unpacked) are each timed
`--repeat` times in a fresh session; the table shows the fastest, in milliseconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ipguard.ledger import records, runs
from ipguard.ledger.scan_tables import ScanRun
from ipguard.ledger.store import Store
from ipguard.model import Observation, RunStatus, ScanResult

HOSTS = 4096  # a /20
START = datetime(2026, 9, 1, tzinfo=UTC)


def grouped(session: Any) -> dict[tuple[str, str], datetime]:
    """The read before the sighting table: every observation of every complete run or watcher."""
    run = ScanRun.__table__  # type: ignore[attr-defined]
    query = sa.select(run.c.id).where(
        sa.or_(run.c.status == RunStatus.COMPLETE.value, run.c.kind == runs.WATCH)
    )
    latest: dict[tuple[str, str], datetime] = {}
    for run_id in session.execute(query).scalars():
        for seen in records.read(session, run_id, "observations"):
            if seen["mac"] is not None:
                key = (seen["ip"], seen["mac"])
                latest[key] = max(latest.get(key, seen["seen_at"]), seen["seen_at"])
    return latest


def add_scan(store: Store, number: int) -> None:
    """One complete run that saw the whole /20, an hour after the previous one."""
    at = START + timedelta(hours=number)
    observations = tuple(
        Observation(
            f"198.18.{n >> 8}.{n & 255}", f"02:00:00:00:{n >> 8:02x}:{n & 255:02x}", at, "arp"
        )
        for n in range(HOSTS)
    )
    with store.session() as session:
        run = runs.start(
            session, site="lab", interface="eth0", subnets=["198.18.0.0/20"], settings={},
            actor="bench", sensor="bench", version="0", now=at,
        )  # fmt: skip
        assert run.id is not None
        runs.store_results(session, run.id, ScanResult(observations=observations))
        runs.finish(session, run.id, RunStatus.COMPLETE, now=at)


def fastest(store: Store, read: Callable[[Any], Any], repeat: int) -> float:
    """The fastest of `repeat` reads, in milliseconds."""
    times = []
    for _ in range(repeat):
        with store.session(write=False) as session:
            mark = time.perf_counter()
            read(session)
            times.append((time.perf_counter() - mark) * 1000)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Build the history, time both reads after 1 and after `--runs` runs, print a table."""
    parser = argparse.ArgumentParser(prog="python -m bench.last_seen")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as directory:
        store = Store(f"sqlite:///{Path(directory) / 'ledger.db'}")
        for number in range(args.runs):
            add_scan(store, number)
            if number + 1 in (1, args.runs):
                with store.session(write=False) as session:
                    assert runs.last_seen(session) == grouped(session)
                new = fastest(store, runs.last_seen, args.repeat)
                old = fastest(store, grouped, args.repeat)
                rows.append(f"| {number + 1} | {old:.1f} | {new:.1f} |")
        store.close()
    print("| earlier runs of the /20 | every run's observations, ms | sighting table, ms |")
    print("| ---: | ---: | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
