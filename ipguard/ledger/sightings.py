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

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ipguard.ledger import records
from ipguard.ledger.scan_tables import SightingRow

_SIGHTING: sa.Table = SightingRow.__table__  # type: ignore[attr-defined]


# One statement for a whole run's pairs, in the order given: a row per pair sent through the
# driver's executemany, each time converted by SQLAlchemy, took 30-45 ms of the 40-60 a 5,000-pair
# run spent here on SQLite and 90 of 130 on PostgreSQL (bench/history.py, measured under load).
_SQLITE_UPSERT = sa.text(
    "INSERT INTO sighting (ip, mac, seen_at) SELECT json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(:pairs) WHERE true "
    "ON CONFLICT (ip, mac) DO UPDATE SET seen_at = excluded.seen_at "
    "WHERE sighting.seen_at < excluded.seen_at"
)
_POSTGRESQL_UPSERT = sa.text(
    "INSERT INTO sighting (ip, mac, seen_at) SELECT ip, mac, seen_at FROM unnest("
    "CAST(:ips AS VARCHAR[]), CAST(:macs AS VARCHAR[]), CAST(:times AS TIMESTAMP[])) "
    "WITH ORDINALITY AS pair (ip, mac, seen_at, n) ORDER BY n "
    "ON CONFLICT (ip, mac) DO UPDATE SET seen_at = excluded.seen_at "
    "WHERE sighting.seen_at < excluded.seen_at"
)


def last_seen(session: Session) -> dict[tuple[str, str], datetime]:
    """When each (ip, mac) pair was last seen by any complete run, or any watcher, of any site."""
    query = sa.select(_SIGHTING.c.ip, _SIGHTING.c.mac, _SIGHTING.c.seen_at)
    return {(ip, mac): when for ip, mac, when in session.execute(query)}


def record_run(session: Session, run_id: int) -> None:
    """Count what a completing scan run stored (call in the transaction that completes it)."""
    _record(
        session, records.read_columns(session, run_id, "observations", ("ip", "mac", "seen_at"))
    )


def record_rows(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Count stored observations (ip, mac, seen_at) at once: a run's or a watcher's batch.

    In (ip, mac) order, code-point order whatever the database's collation: two sensors meeting
    the same pairs lock them in the same order (no deadlock).
    """
    _record(session, ((row["ip"], row["mac"], row["seen_at"]) for row in rows))


def _record(session: Session, seen: Iterable[tuple[str, str | None, datetime]]) -> None:
    """Count (ip, mac, seen_at) observations; those without a MAC do not count."""
    latest: dict[tuple[str, str], datetime] = {}
    for ip, mac, when in seen:
        if mac is None:
            continue
        known = latest.get((ip, mac))
        if known is None or known < when:
            latest[ip, mac] = when
    if not latest:
        return
    pairs = sorted(latest.items())
    times = [when.astimezone(UTC).replace(tzinfo=None) for _pair, when in pairs]  # as stored
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        ips, macs = [ip for (ip, _mac), _when in pairs], [mac for (_ip, mac), _when in pairs]
        connection.execute(_POSTGRESQL_UPSERT, {"ips": ips, "macs": macs, "times": times})
        return
    # SQLAlchemy's SQLite DATETIME text, which the stored times compare with as strings.
    texts = [when.isoformat(sep=" ", timespec="microseconds") for when in times]
    values = [[ip, mac, text] for ((ip, mac), _when), text in zip(pairs, texts, strict=True)]
    connection.execute(_SQLITE_UPSERT, {"pairs": json.dumps(values)})
