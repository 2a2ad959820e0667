"""The append-only audit trail: every change to the ledger, who made it, before and after."""

from __future__ import annotations

import getpass
import os
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, or_, select

from ipguard.ledger import bulk
from ipguard.ledger.tables import AuditEntry, utcnow


def current_actor(explicit: str | None = None) -> str:
    """Who is making changes: `--actor`, `IPGUARD_ACTOR`, or the operating-system user."""
    if explicit:
        return explicit
    if env := os.environ.get("IPGUARD_ACTOR"):
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return f"uid:{os.getuid()}"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    key: str,
    alt_key: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one audit row in the caller's transaction."""
    session.add(
        AuditEntry(
            at=at or utcnow(),
            actor=actor,
            action=action,
            entity=entity,
            key=key,
            alt_key=alt_key,
            before=before,
            after=after,
        )
    )


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Append many audit rows at once (imports); each dict holds AuditEntry's columns."""
    bulk.insert_many(session, AuditEntry.__table__, rows)  # type: ignore[attr-defined]


def history(session: Session, key: str, limit: int | None = None) -> list[AuditEntry]:
    """Every audit row about an IP, MAC or pool CIDR, oldest first."""
    query = (
        select(AuditEntry)
        .where(or_(col(AuditEntry.key) == key, col(AuditEntry.alt_key) == key))
        .order_by(col(AuditEntry.id))
    )
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def since(session: Session, start: datetime, end: datetime | None = None) -> list[AuditEntry]:
    """Audit rows in a time range, oldest first (for reports)."""
    query = select(AuditEntry).where(col(AuditEntry.at) >= start)
    if end is not None:
        query = query.where(col(AuditEntry.at) < end)
    return list(session.exec(query.order_by(col(AuditEntry.id))))


def count_action(session: Session, action: str) -> int:
    """How many audit rows record this action (e.g. `ledger.import`): did one just commit?"""
    query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    return int(session.exec(query).one())


CHANGES = ("device.edit", "device.import.update")  # a record changed in place


def paired_since(
    session: Session, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When each (ip, mac) pair was first given to an existing device record (an edit or an
    import's update: a new address or network card), from the audit rows about it."""
    found: dict[tuple[str, str], datetime] = {}
    ips = sorted({ip for ip, _mac in pairs})
    for start in range(0, len(ips), 500):  # within every database's limit of bound values
        query = (
            select(AuditEntry.key, AuditEntry.alt_key, func.min(AuditEntry.at))
            .where(
                AuditEntry.entity == "device",
                col(AuditEntry.action).in_(CHANGES),
                col(AuditEntry.key).in_(ips[start : start + 500]),
            )
            .group_by(col(AuditEntry.key), col(AuditEntry.alt_key))
        )
        for ip, mac, first in session.exec(query):
            if (ip, mac) in pairs and first is not None:
                found[(ip, mac)] = first
    return found
