"""Print what a SQLite ledger holds, as JSON, without changing it (run inside a mount namespace).

python -m tests.hardening.dbcheck /path/ledger.db
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys


def facts(path: str) -> dict[str, object]:
    """Integrity verdict, runs, rows per table: the things fault tests compare."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:

        def rows(sql: str) -> list[list[object]]:
            return [list(row) for row in db.execute(sql)]

        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        counted = ("device", "audit", "observation", "finding", "scan_run", "pool")
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
            "observations": dict(
                rows("SELECT run_id, count(*) FROM observation GROUP BY run_id ORDER BY run_id")
            )
            if "observation" in tables
            else {},
            # When each (ip, mac) was last seen, as kept, and as the complete runs' history says.
            "sightings": rows("SELECT ip, mac, seen_at FROM sighting ORDER BY ip, mac")
            if "sighting" in tables
            else [],
            "sightings_of_runs": rows(
                "SELECT o.ip, o.mac, max(o.seen_at) FROM observation o JOIN scan_run r"
                " ON r.id = o.run_id WHERE (r.status = 'complete' OR r.kind = 'watch')"
                " AND o.mac IS NOT NULL GROUP BY o.ip, o.mac ORDER BY o.ip, o.mac"
            )
            if "sighting" in tables
            else [],
        }


if __name__ == "__main__":
    print(json.dumps(facts(sys.argv[1])))
