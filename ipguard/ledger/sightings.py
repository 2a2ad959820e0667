"""Sightings: when each (ip, mac) pair was last seen by a complete scan run or by a watcher.

A scan's facts need this for every pair ever seen (a registration unseen for long is stale). It is
kept in one row per pair, updated where observations become final, so reading it costs the number
of pairs, not the age of the ledger:
- a scan run's observations count when the run completes, in the transaction that completes it
  (an aborted or failed run's never do);
- a watcher's count as each batch is stored (its run stays `running` for its whole life).
Observations without a MAC do not count. Pruning old runs leaves sightings alone: a pair seen
long ago is still known to have been seen then.

Concurrent sensors writing to one PostgreSQL ledger upsert keeping the later time, in (ip, mac)
order so that two transactions lock the rows they share in the same order (no deadlock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from ipguard.ledger import records
from ipguard.ledger.scan_tables import SightingRow

_SIGHTING: sa.Table = SightingRow.__table__  # type: ignore[attr-defined]


def last_seen(session: Session) -> dict[tuple[str, str], datetime]:
    """When each (ip, mac) pair was last seen by any complete run, or any watcher, of any site."""
    query = sa.select(_SIGHTING.c.ip, _SIGHTING.c.mac, _SIGHTING.c.seen_at)
    return {(ip, mac): when for ip, mac, when in session.execute(query)}


def record_run(session: Session, run_id: int) -> None:
    """Count what a completing scan run stored (call in the transaction that completes it)."""
    record_rows(session, records.read(session, run_id, "observations", ("ip", "mac", "seen_at")))


def record_rows(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Count stored observations (ip, mac, seen_at) at once: a run's or a watcher's batch.

    In (ip, mac) order, code-point order whatever the database's collation: two sensors meeting
    the same pairs lock them in the same order (no deadlock).
    """
    latest: dict[tuple[str, str], datetime] = {}
    for row in rows:
        if row["mac"] is None:
            continue
        key = (row["ip"], row["mac"])
        if key not in latest or latest[key] < row["seen_at"]:
            latest[key] = row["seen_at"]
    if latest:
        values = [
            {"ip": ip, "mac": mac, "seen_at": when} for (ip, mac), when in sorted(latest.items())
        ]
        session.connection().execute(_upsert(session), values)


def _upsert(session: Session) -> Any:
    """An INSERT into sighting that, for a pair already known, keeps the later of the two times."""
    dialect = session.connection().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_SIGHTING)
    return insert.on_conflict_do_update(
        index_elements=[_SIGHTING.c.ip, _SIGHTING.c.mac],
        set_={"seen_at": insert.excluded.seen_at},
        where=_SIGHTING.c.seen_at < insert.excluded.seen_at,
    )
