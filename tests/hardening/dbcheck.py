"""Print what a SQLite ledger holds, as JSON, without changing it (run inside a mount namespace).

python -m tests.hardening.dbcheck /path/ledger.db
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections import Counter
from datetime import datetime
from typing import Any

from ipguard.ledger import packing


def facts(path: str) -> dict[str, object]:
    """Integrity verdict, runs, rows per table: the things fault tests compare."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:

        def rows(sql: str) -> list[list[object]]:
            return [list(row) for row in db.execute(sql)]

        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        counted = ("device", "audit", "run_records", "finding", "scan_run", "pool")
        seen = observations(db) if "run_records" in tables else []
        return {
            "integrity": db.execute("PRAGMA integrity_check").fetchone()[0],
            "foreign_keys": rows("PRAGMA foreign_key_check"),
            "counts": {
                name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                for name in counted
                if name in tables
            },
            "runs": rows("SELECT id, status, counts, error FROM scan_run ORDER BY id")
            if "scan_run" in tables
            else [],
            "observations": dict(Counter(run_id for run_id, _status, _kind, _seen in seen)),
            # When each (ip, mac) was last seen, as kept, and as the complete runs' history says.
            "sightings": rows("SELECT ip, mac, seen_at FROM sighting ORDER BY ip, mac")
            if "sighting" in tables
            else [],
            "sightings_of_runs": last_seen_of_runs(seen) if "sighting" in tables else [],
        }


def observations(db: sqlite3.Connection) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(run id, run status, run kind, observation) of every stored observation, in run order."""
    query = (
        "SELECT r.id, r.status, r.kind, o.data FROM run_records o JOIN scan_run r"
        " ON r.id = o.run_id WHERE o.kind = 'observations' ORDER BY r.id, o.id"
    )
    return [
        (run_id, status, kind, seen)
        for run_id, status, kind, data in db.execute(query)
        for seen in packing.unpack(data)
    ]


def last_seen_of_runs(seen: list[tuple[int, str, str, dict[str, Any]]]) -> list[list[object]]:
    """[ip, mac, latest time as SQLite keeps it] of each pair a complete run or a watcher saw."""
    latest: dict[tuple[str, str], datetime] = {}
    for _run_id, status, kind, record in seen:
        if (status == "complete" or kind == "watch") and record["mac"] is not None:
            key = (record["ip"], record["mac"])
            latest[key] = max(latest.get(key, record["seen_at"]), record["seen_at"])
    return [
        [ip, mac, when.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")]
        for (ip, mac), when in sorted(latest.items())
    ]


if __name__ == "__main__":
    print(json.dumps(facts(sys.argv[1])))
