"""Benchmark: what a year of scan history costs, on SQLite and on PostgreSQL.

    python -m bench.history [--runs 24] [--hosts 5000] [--pg URL]
    python -m bench --only history

A campus of `--hosts` hosts (5,000) is scanned `--runs` times, 15 minutes apart, through the
real code path (`runs.start`, `runs.store_results` in its own committed transaction, as the scan's
storage phase does it, then `runs.finish`, which records the sightings): the same hosts each run
but for a few that leave, arrive or move (1 % of the addresses per run), with real vendors, times
spread over the sweep, round-trip times, open services on one host in ten, names on one in three.

The database grows by the same amount each run after the first (the first also fills the sightings
of every pair): bytes per run is that growth (every table and index, from `dbstat` on SQLite and
`pg_total_relation_size` on PostgreSQL, vacuumed after each run as autovacuum would), divided by
the hosts for bytes per observation, times 35,040 for a year of runs at 15 minutes (the cron
default) and the default 365-day retention.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import Log, Section, Target, log, table
from bench.storage import postgres
from ipguard.ledger import runs
from ipguard.ledger.store import Store
from ipguard.model import (
    NameObservation,
    NameSource,
    Observation,
    ObservationSource,
    RunStatus,
    ScanResult,
    ServiceObservation,
)

RUNS_A_YEAR = 365 * 24 * 4  # every 15 minutes, kept 365 days
VENDORS = (
    ("00:1b:21", "Intel Corporate"),
    ("3c:52:82", "Hewlett Packard"),
    ("f8:bc:12", "Dell Inc."),
    ("00:50:56", "VMware, Inc."),
    ("a4:83:e7", "Apple, Inc."),
    ("b8:27:eb", "Raspberry Pi Foundation"),
    ("00:0c:29", "VMware, Inc."),
    ("70:85:c2", "ASRock Incorporation"),
)
SERVICES = (
    ("tcp", 22, "ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.10", "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3"),
    ("tcp", 80, "http", "nginx", "1.18.0", ""),
    ("tcp", 443, "https", "nginx", "1.18.0", ""),
    ("tcp", 3389, "ms-wbt-server", "Microsoft Terminal Services", "", ""),
    ("tcp", 445, "microsoft-ds", "", "", ""),
)


class Campus:
    """The hosts of a campus and how they change from one run to the next (seeded: repeatable)."""

    def __init__(self, hosts: int, seed: int = 15) -> None:
        self.random = random.Random(seed)
        self.space = [f"198.18.{n >> 8 & 255}.{n & 255}" for n in range(1, 2 * hosts)]
        self.hosts = {ip: self._device() for ip in self.random.sample(self.space, hosts)}

    def _device(self) -> tuple[str, str]:
        prefix, vendor = self.random.choice(VENDORS)
        tail = ":".join(f"{self.random.randrange(256):02x}" for _ in range(3))
        return f"{prefix}:{tail}", vendor

    def churn(self, share: float = 0.01) -> None:
        """A few hosts leave, as many arrive (new devices, or old ones on a new address)."""
        for ip in self.random.sample(sorted(self.hosts), int(len(self.hosts) * share)):
            device = self.hosts.pop(ip)
            free = self.random.choice([a for a in self.space if a not in self.hosts])
            self.hosts[free] = device if self.random.random() < 0.5 else self._device()

    def scan(self, at: datetime) -> ScanResult:
        """What one sweep saw, as the scanner hands it to the ledger."""
        pick = self.random
        seen, services, names = [], [], []
        for n, (ip, (mac, vendor)) in enumerate(sorted(self.hosts.items())):
            when = at + timedelta(seconds=n * 0.004, microseconds=pick.randrange(1000))
            seen.append(
                Observation(
                    ip,
                    mac,
                    when,
                    ObservationSource.ARP,
                    ttl=pick.choice((64, 128)),
                    rtt_ms=round(pick.uniform(0.2, 9.0), 3),
                    vendor=vendor,
                )
            )
            if n % 10 == 0:
                for proto, port, name, product, version, banner in SERVICES[: 2 + n % 3]:
                    services.append(
                        ServiceObservation(ip, proto, port, name, product, version, banner)
                    )
            if n % 3 == 0:
                name = f"pc-{mac[9:].replace(':', '')}.campus.example"
                names.append(NameObservation(ip, name, NameSource.DNS))
        return ScanResult(observations=tuple(seen), services=tuple(services), names=tuple(names))


def stored_bytes(store: Store) -> dict[str, int]:
    """Bytes of every table and index of the ledger, by table (indexes counted with their table)."""
    with store.session(write=False) as session:
        if session.connection().dialect.name == "postgresql":
            query = "SELECT relname, pg_total_relation_size(relid) FROM pg_statio_user_tables"
            return {name: int(size) for name, size in session.execute(sa.text(query))}
        names = dict(session.execute(sa.text("SELECT name, tbl_name FROM sqlite_master")).all())
        sizes: dict[str, int] = {}
        for name, size in session.execute(
            sa.text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
        ):
            owner = names.get(name, name)
            sizes[owner] = sizes.get(owner, 0) + int(size)
        return sizes


def vacuum(store: Store) -> None:
    """What autovacuum does between runs on a live server: the rows a run's sightings replaced
    (one per pair seen again) become free space that the next run reuses, not growth."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM"))


def measure(url: str, hosts: int, count: int, log: Log) -> dict[str, Any]:
    """Store `count` runs of the campus; growth per run, by table, and the storage times."""
    store, campus = Store(url), Campus(hosts)
    started_at = datetime(2026, 11, 1, tzinfo=UTC)
    store_s, finish_s, observations = [], [], 0
    try:
        after_first: dict[str, int] = {}
        for number in range(count):
            at = started_at + timedelta(minutes=15 * number)
            result = campus.scan(at)
            with store.session() as session:
                run = runs.start(
                    session, site="campus", interface="eth0", subnets=["198.18.0.0/19"],
                    settings={"phases": ["sweep", "services"]}, actor="bench", sensor="bench",
                    version="bench", now=at,
                )  # fmt: skip
                assert run.id is not None
                run_id = run.id
            clock = time.perf_counter()
            with store.session() as session:
                counts = runs.store_results(session, run_id, result)
            store_s.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            with store.session() as session:
                runs.finish(session, run_id, RunStatus.COMPLETE, counts=counts, now=at)
            finish_s.append(time.perf_counter() - clock)
            if url.startswith("postgresql"):
                vacuum(store)
            if number == 0:
                after_first = stored_bytes(store)
            else:
                observations += len(result.observations)
            campus.churn()
        final = stored_bytes(store)
    finally:
        store.close()
    growth = {name: size - after_first.get(name, 0) for name, size in final.items()}
    per_run = sum(growth.values()) / (count - 1)
    log(f"{url.split(':')[0]}: {per_run:,.0f} bytes per run")
    return {
        "per_run": per_run,
        "per_observation": sum(growth.values()) / observations,
        "per_year": per_run * RUNS_A_YEAR,
        "store_s": statistics.median(store_s[1:]),
        "finish_s": statistics.median(finish_s[1:]),
        "tables": {name: size / (count - 1) for name, size in growth.items() if size > 0},
    }


def run_all(hosts: int, count: int, pg: str | None, log: Log) -> dict[str, dict[str, Any]]:
    """The measurement on a fresh SQLite file and a fresh PostgreSQL database."""
    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as scratch, postgres(pg) as fresh_pg:
        backends: list[tuple[str, Callable[[], str]]] = [
            ("SQLite", lambda: f"sqlite:///{Path(scratch) / 'history.db'}"),
            ("PostgreSQL", fresh_pg),
        ]
        return {name: measure(fresh(), hosts, count, log) for name, fresh in backends}


def render(figures: dict[str, dict[str, Any]], hosts: int) -> str:
    """The section's Markdown: the totals, then where the bytes go."""
    rows = [
        [
            name,
            f"{f['per_observation']:.1f}",
            f"{f['per_run'] / 1e6:.3f}",
            f"{f['per_year'] / 1e9:.2f}",
            f"{f['store_s'] * 1000:.0f}",
            f"{f['finish_s'] * 1000:.0f}",
        ]
        for name, f in figures.items()
    ]
    where = [
        [name, table_name, f"{size / 1e3:,.1f}"]
        for name, f in figures.items()
        for table_name, size in sorted(f["tables"].items(), key=lambda item: -item[1])
    ]
    return "\n\n".join(
        [
            f"A campus of {hosts:,} hosts scanned every 15 minutes (1 % churn per run, services on "
            "one host in ten, names on one in three), stored through `runs.store_results`.",
            table(
                ["database", "bytes/observation", "MB/run", "GB/year", "store ms", "finish ms"],
                rows,
                "lrrrrr",
            ),
            "Growth per run, by table (indexes included), kB:",
            table(["database", "table", "kB/run"], where, "llr"),
        ]
    )


def history_section(runs_: int, context: dict[str, Any], log: Log) -> Section:
    """The bench section `history`."""
    hosts, count = 5000, 12 if runs_ == 1 else 48
    figures = run_all(hosts, count, None, log)
    targets = [
        Target(
            what=f"a year of history, {name}",
            goal="at most a quarter of 25 GB (the format before session 7)",
            measured=f"{f['per_year'] / 1e9:.2f} GB",
            met=f["per_year"] <= 25e9 / 4,
        )
        for name, f in figures.items()
    ]
    return Section(
        name="history",
        title="11. Scan history: a year at 15-minute runs",
        markdown=render(figures, hosts),
        targets=targets,
        data={"hosts": hosts, "runs_stored": count, "figures": figures},
    )


def main(argv: list[str] | None = None) -> int:
    """Measure and print the section's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24, help="runs stored (15 minutes apart)")
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--pg", help="PostgreSQL server URL to use instead of starting one")
    args = parser.parse_args(argv)
    print(render(run_all(args.hosts, args.runs, args.pg, log), args.hosts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
