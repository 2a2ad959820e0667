"""Benchmark: `ipguard prune` of a year of history, on SQLite and on PostgreSQL.

    python -m bench.prune [--observations 1000000] [--per-run 4096] [--pg URL]

A ledger gets `--observations` observations in complete runs of `--per-run` hosts each (through
the ledger's own functions), all of them older than the retention, and one recent run that stays;
then the real command, `ipguard --db … prune`, runs as a child process: the table shows its wall
time and its peak memory (the child's maximum resident set size). REQUIREMENTS section 8: the
history of a year is pruned by an explicit command, in one transaction (all or nothing), and its
memory must not grow with the history (the deletes run in the database, not in Python).
PostgreSQL is a cluster started for the benchmark with production durability, or --pg.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.storage import postgres
from ipguard.ledger import runs
from ipguard.ledger.store import Store
from ipguard.model import Observation, ObservationSource, RunStatus, ScanResult

IPGUARD = Path(sys.executable).with_name("ipguard")


def history(url: str, observations: int, per_run: int) -> int:
    """Runs of `per_run` hosts, 15 minutes apart, 500 days ago; one run today. Returns the runs."""
    store = Store(url)
    old = datetime.now(UTC) - timedelta(days=500)
    count = -(-observations // per_run)
    try:
        for number in range(count + 1):
            at = old + timedelta(minutes=15 * number) if number < count else datetime.now(UTC)
            hosts = min(per_run, observations - number * per_run) if number < count else 1
            seen = tuple(
                Observation(
                    f"198.18.{n >> 8 & 255}.{n & 255}",
                    f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                    at,
                    ObservationSource.ARP.value,
                )
                for n in range(hosts)
            )
            with store.session() as session:
                run = runs.start(
                    session, site="lab", interface="eth0", subnets=["198.18.0.0/16"],
                    settings={}, actor="bench", sensor="bench", version="0", now=at,
                )  # fmt: skip
                assert run.id is not None
                runs.store_results(session, run.id, ScanResult(observations=seen))
                runs.finish(session, run.id, RunStatus.COMPLETE, now=at)
    finally:
        store.close()
    return count


def prune(url: str, work: Path) -> tuple[float, float, str]:
    """Run `ipguard prune`; its seconds, its peak memory in MB and what it printed."""
    started = time.monotonic()
    child = subprocess.Popen(
        [str(IPGUARD), "--db", url, "prune"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "IPGUARD_ACTOR": "bench"},
    )
    assert child.stdout is not None
    printed = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - started
    if child.returncode != 0:
        raise RuntimeError(f"ipguard prune exited {child.returncode}")
    return took, usage.ru_maxrss / 1024, printed.strip()


def main(argv: list[str] | None = None) -> int:
    """Fill a ledger of each kind, prune it, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--per-run", type=int, default=4096)
    parser.add_argument("--pg", help="PostgreSQL server URL to use instead of starting one")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as scratch, postgres(args.pg) as fresh_pg:
        work = Path(scratch)
        for backend, url in (("SQLite", f"sqlite:///{work / 'ledger.db'}"), ("PostgreSQL", None)):
            url = url or fresh_pg()
            filled = time.monotonic()
            count = history(url, args.observations, args.per_run)
            filled = time.monotonic() - filled
            took, peak, printed = prune(url, work)
            print(f"{backend}: filled in {filled:.0f} s; {printed}", file=sys.stderr, flush=True)
            rows.append((backend, count, took, peak))
    print("| database | runs pruned | observations | prune s | peak MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for backend, count, took, peak in rows:
        print(f"| {backend} | {count:,} | {args.observations:,} | {took:.1f} | {peak:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
