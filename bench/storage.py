"""Benchmark: the ledger's two big writes on SQLite and on PostgreSQL.

    python -m bench.storage [--runs 3] [--devices 100000] [--observations 65536] [--pg URL]

- import: a 100,000-row CSV ledger into an empty ledger, as `ipguard ledger import` does it (read
  and validate the file, plan against the ledger, write the records and their audit rows, commit),
  without the interpreter's start-up;
- storage: what a /16 sweep stored, 65,536 observations, through `ipguard.ledger.runs.store_results`
  in one committed transaction (the run's "storage" phase).

Each is timed on a fresh database per run; the table shows the median and the fastest of the runs.
SQLite is a file in a temporary directory (WAL, synchronous=NORMAL, as ipguard opens it).
PostgreSQL is a cluster started for the benchmark on 127.0.0.1 with production durability (fsync
on), or the server given with --pg (a URL without the database name; databases are created there).
Needs root to start the cluster (as the postgres user).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ipguard.ledger import files, importer, runs
from ipguard.ledger.store import Store
from ipguard.model import LEDGER_FIELDS, Observation, ObservationSource, ScanResult


def ledger_csv(path: Path, devices: int) -> Path:
    """A ledger file with `devices` distinct records, every column filled the way a site would."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(LEDGER_FIELDS)
        for n in range(1, devices + 1):
            a, b, c = n >> 16 & 255, n >> 8 & 255, n & 255
            writer.writerow(
                [
                    f"10.{a}.{b}.{c}",
                    "",  # no static IPv6
                    f"02:00:00:{a:02x}:{b:02x}:{c:02x}",
                    f"dept{n % 40}-pc{n}",
                    f"用户{n}",
                    f"dept{n % 40}",
                    f"building {n % 7}",
                    f"Gi{n % 4 + 1}/0/{n % 48 + 1}",
                    f"PC-{n}",
                    "host",
                    "tcp/22;tcp/3389",
                    "active",
                    "false",
                    "",
                    f"APP-{n}",
                    "",
                    f"site{n % 8}",
                ]
            )
    return path


def sweep_of_a_slash_16(count: int) -> ScanResult:
    """What an ARP sweep of 10.30.0.0/16 saw: `count` hosts, one reply each."""
    now = datetime.now(UTC)
    return ScanResult(
        observations=tuple(
            Observation(
                f"10.30.{n >> 8 & 255}.{n & 255}",
                f"02:30:00:00:{n >> 8 & 255:02x}:{n & 255:02x}",
                now,
                ObservationSource.ARP,
                rtt_ms=0.4,
            )
            for n in range(count)
        )
    )


def time_import(url: str, path: Path) -> float:
    """Seconds to import the file into the (empty) ledger at `url`."""
    store = Store(url)
    try:
        started = time.perf_counter()
        rows = files.read_rows(str(path), "csv")
        with store.session() as session:
            plan = importer.plan_import(session, str(path), rows, "merge")
            importer.apply(session, plan, actor="bench")
        took = time.perf_counter() - started
        assert plan.counts()["added"] == len(rows)
        return took
    finally:
        store.close()


def time_storage(url: str, result: ScanResult) -> float:
    """Seconds to store the run's observations (one transaction, committed)."""
    store = Store(url)
    try:
        with store.session() as session:
            run = runs.start(
                session,
                site="bench",
                interface="eth0",
                subnets=["10.30.0.0/16"],
                settings={},
                actor="bench",
                sensor="bench",
                version="bench",
            )
        assert run.id is not None
        started = time.perf_counter()
        with store.session() as session:
            counts = runs.store_results(session, run.id, result)
        took = time.perf_counter() - started
        assert counts["hosts_seen"] == len(result.observations)
        return took
    finally:
        store.close()


@contextmanager
def postgres(given: str | None) -> Iterator[Callable[[], str]]:
    """A function that makes a fresh PostgreSQL database and returns its URL."""
    from tests.pg import create_database, postgres_cluster

    if given:
        yield lambda: create_database(given)
        return
    with postgres_cluster(durable=True) as server:
        yield lambda: create_database(server)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table of median and fastest times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh databases per measurement")
    parser.add_argument("--devices", type=int, default=100_000, help="rows of the imported ledger")
    parser.add_argument("--observations", type=int, default=65_536, help="hosts the sweep saw")
    parser.add_argument("--pg", help="PostgreSQL server URL to use instead of starting one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as scratch, postgres(args.pg) as fresh_pg:
        root = Path(scratch)
        ledger = ledger_csv(root / "ledger.csv", args.devices)
        sweep = sweep_of_a_slash_16(args.observations)
        counter = iter(range(1_000_000))

        def fresh_sqlite() -> str:
            return f"sqlite:///{root / f'ledger-{next(counter)}.db'}"

        rows = []
        for label, measure in (
            (f"import {args.devices:,} devices", lambda url: time_import(url, ledger)),
            (f"store {args.observations:,} observations", lambda url: time_storage(url, sweep)),
        ):
            for backend, fresh in (("SQLite", fresh_sqlite), ("PostgreSQL", fresh_pg)):
                times = [measure(fresh()) for _ in range(args.runs)]
                rows.append((label, backend, statistics.median(times), min(times)))
                print(f"{label:<30} {backend:<11} {times}", file=sys.stderr, flush=True)

    print(f"{'measurement':<30} {'database':<11} {'median s':>9} {'fastest s':>10}")
    for label, backend, median, fastest in rows:
        print(f"{label:<30} {backend:<11} {median:>9.2f} {fastest:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
