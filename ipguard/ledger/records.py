"""What each run saw, kept packed (see `packing`): one `run_records` row per store and kind.

A scan stores once per run; a watcher once per batch, so its run holds many rows of a kind, read
back in the order they were stored. The kinds, as `prune` reports them: observations, services,
dhcp_offers, proxy_checks, names, evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from ipguard.errors import DamagedHistory
from ipguard.ledger import packing
from ipguard.ledger.scan_tables import RunRecordsRow

# The fields each kind keeps, in the order packed. An observation keeps how many times it replied
# (the repeats are counted, not stored); an offer's latency is kept in its rogue-dhcp finding.
FIELDS: dict[str, tuple[str, ...]] = {
    "observations": ("ip", "mac", "source", "seen_at", "replies", "ttl", "rtt_ms", "vendor"),
    "services": ("ip", "proto", "port", "service", "product", "version", "banner"),
    "dhcp_offers": ("server_ip", "server_mac", "offered_ip", "router", "dns", "seen_at"),
    "proxy_checks": ("ip", "port", "method", "relays", "detail"),
    "names": ("ip", "name", "source"),
    "evidence": ("ip", "mac", "kind", "points_to", "detail"),
}
KINDS = tuple(FIELDS)
TIMED = ("observations", "dhcp_offers")  # the kinds whose records carry a `seen_at`
_RECORDS: sa.Table = RunRecordsRow.__table__  # type: ignore[attr-defined]


def row(run_id: int, kind: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The `run_records` row that keeps `records` of `kind` for the run."""
    return {
        "run_id": run_id,
        "kind": kind,
        "entries": len(records),
        "first_seen_at": packing.first_time(records, "seen_at") if kind in TIMED else None,
        "data": packing.pack(records, FIELDS[kind]),
    }


def write(
    session: Session, run_id: int, records: Mapping[str, Sequence[Mapping[str, Any]]]
) -> None:
    """Keep what a run (or a watcher's batch) saw: one row per kind that has records."""
    rows = [row(run_id, kind, found) for kind, found in records.items() if found]
    if rows:
        session.connection().execute(_RECORDS.insert(), rows)


def read(
    session: Session, run_id: int, kind: str, fields: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The records of `kind` a run kept, in the order they were stored (only `fields`, if given)."""
    query = (
        sa.select(_RECORDS.c.data)
        .where(_RECORDS.c.run_id == run_id, _RECORDS.c.kind == kind)
        .order_by(_RECORDS.c.id)
    )
    return [
        record
        for (data,) in session.execute(query)
        for record in _unpacked(run_id, kind, data, fields)
    ]


def read_columns(
    session: Session, run_id: int, kind: str, fields: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """`fields` of each record of `kind` a run kept, as tuples in that order, in stored order."""
    query = (
        sa.select(_RECORDS.c.data)
        .where(_RECORDS.c.run_id == run_id, _RECORDS.c.kind == kind)
        .order_by(_RECORDS.c.id)
    )
    for (data,) in session.execute(query).all():
        columns = _columns(run_id, kind, data, fields)
        yield from zip(*(columns[name] for name in fields), strict=True)


def _columns(
    run_id: int, kind: str, data: bytes, fields: Iterable[str] | None
) -> dict[str, list[Any]]:
    """One packed row's columns; a damaged row is named to the user, not a traceback."""
    try:
        return packing.unpack_columns(data, fields)
    except packing.Unreadable as error:
        raise DamagedHistory(
            f"run {run_id}: what it saw ({kind}) cannot be read back from the ledger: {error}; "
            "restore the ledger from a backup, or `ipguard prune` removes the run once it is "
            "older than the retention period"
        ) from None


def _unpacked(
    run_id: int, kind: str, data: bytes, fields: Iterable[str] | None
) -> list[dict[str, Any]]:
    """One packed row's records (see `_columns`)."""
    return packing.as_records(_columns(run_id, kind, data, fields))


def clear(session: Session, run_id: int) -> None:
    """Forget what a run saw (to store it again), keeping the run itself."""
    session.execute(sa.delete(_RECORDS).where(_RECORDS.c.run_id == run_id))


def count(session: Session, runs: Any, kind: str) -> int:
    """How many records of `kind` the runs selected by `runs` (a query of ids) kept."""
    query = sa.select(sa.func.coalesce(sa.func.sum(_RECORDS.c.entries), 0)).where(
        _RECORDS.c.kind == kind, _RECORDS.c.run_id.in_(runs)
    )
    return int(session.execute(query).scalar_one())


def drop_older(
    session: Session, run_ids: Iterable[int], kind: str, cutoff: datetime, *, dry_run: bool
) -> int:
    """Remove the records of `kind` seen before `cutoff` from the given (watchers') runs.

    Only rows holding some record that old are read, one at a time (a watcher's run holds a row per
    batch); each is rewritten with what is left, or removed (as a whole when it cannot be read
    back). Returns the records removed.
    """
    removed = 0
    for row_id, run_id, entries, data in _rows_older(session, list(run_ids), kind, cutoff):
        where = _RECORDS.c.id == row_id
        try:
            records = _unpacked(run_id, kind, data, None)
        except DamagedHistory:  # nobody can read it, and it began before the cutoff: it goes
            removed += entries
            if not dry_run:
                session.execute(sa.delete(_RECORDS).where(where))
            continue
        kept = [r for r in records if r["seen_at"] is None or r["seen_at"] >= cutoff]
        removed += len(records) - len(kept)
        if dry_run or len(kept) == len(records):
            continue
        if kept:
            session.execute(sa.update(_RECORDS).where(where).values(row(run_id, kind, kept)))
        else:
            session.execute(sa.delete(_RECORDS).where(where))
    return removed


def _rows_older(
    session: Session, run_ids: list[int], kind: str, cutoff: datetime
) -> Iterator[tuple[int, int, int, bytes]]:
    """(id, run id, entries, data) of each row of the runs whose earliest record of `kind` is
    before `cutoff`."""
    ids = list(
        session.execute(
            sa.select(_RECORDS.c.id).where(
                col(_RECORDS.c.run_id).in_(run_ids),
                _RECORDS.c.kind == kind,
                _RECORDS.c.first_seen_at < cutoff,
            )
        ).scalars()
    )
    for row_id in ids:
        query = sa.select(_RECORDS.c.run_id, _RECORDS.c.entries, _RECORDS.c.data).where(
            _RECORDS.c.id == row_id
        )
        run_id, entries, data = session.execute(query).one()
        yield row_id, run_id, entries, data
