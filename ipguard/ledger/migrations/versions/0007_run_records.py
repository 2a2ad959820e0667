"""What runs saw, packed: one `run_records` row per run and kind instead of a row per record.

Every run in the six per-record tables (observation, service_observation, dhcp_offer,
proxy_check, name_observation, evidence) is packed, run by run in id order, as the ledger now
stores it (`ipguard.ledger.records`, format 1 of `ipguard.ledger.packing`); then those tables go.
A watcher's run becomes one row per kind. Read back, every run gives the same records in the same
order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

from ipguard.ledger import packing

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# kind: (old table, its columns as format 1 packs them, with the types to read them by)
_STR, _INT = sa.String, sa.Integer
OLD: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "observations": (
        "observation",
        (("ip", _STR), ("mac", _STR), ("source", _STR), ("seen_at", sa.DateTime),
         ("replies", _INT), ("ttl", _INT), ("rtt_ms", sa.Float), ("vendor", _STR)),
    ),
    "services": (
        "service_observation",
        (("ip", _STR), ("proto", _STR), ("port", _INT), ("service", _STR), ("product", _STR),
         ("version", _STR), ("banner", _STR)),
    ),
    "dhcp_offers": (
        "dhcp_offer",
        (("server_ip", _STR), ("server_mac", _STR), ("offered_ip", _STR), ("router", _STR),
         ("dns", sa.JSON), ("seen_at", sa.DateTime)),
    ),
    "proxy_checks": (
        "proxy_check",
        (("ip", _STR), ("port", _INT), ("method", _STR), ("relays", sa.Boolean), ("detail", _STR)),
    ),
    "names": ("name_observation", (("ip", _STR), ("name", _STR), ("source", _STR))),
    "evidence": (
        "evidence",
        (("ip", _STR), ("mac", _STR), ("kind", _STR), ("points_to", _STR), ("detail", _STR)),
    ),
}  # fmt: skip
RECORDS = sa.table(
    "run_records",
    sa.column("run_id", _INT),
    sa.column("kind", _STR),
    sa.column("entries", _INT),
    sa.column("first_seen_at", sa.DateTime),
    sa.column("data", sa.LargeBinary),
)


def _old(kind: str) -> sa.TableClause:
    name, columns = OLD[kind]
    return sa.table(name, sa.column("id", _INT), sa.column("run_id", _INT), *(
        sa.column(column, kind_) for column, kind_ in columns
    ))  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "run_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("scan_run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("first_seen_at", sa.DateTime, nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_run_records_run_id", "run_records", ["run_id"])
    connection = op.get_bind()
    run_ids = connection.execute(sa.text("SELECT id FROM scan_run ORDER BY id")).scalars().all()
    for run_id in run_ids:  # a run at a time: the memory a run takes, whatever the history
        for kind, (_name, columns) in OLD.items():
            old = _old(kind)
            fields = [name for name, _type in columns]
            query = sa.select(*(old.c[name] for name in fields)).where(old.c.run_id == run_id)
            rows = connection.execute(query.order_by(old.c.id)).all()
            if not rows:
                continue
            records = [_aware(dict(zip(fields, row, strict=True))) for row in rows]
            first = packing.first_time(records, "seen_at") if "seen_at" in fields else None
            connection.execute(
                RECORDS.insert().values(
                    run_id=run_id,
                    kind=kind,
                    entries=len(records),
                    first_seen_at=first.replace(tzinfo=None) if first else None,
                    data=packing.pack(records, fields),
                )
            )
    for _name, (table, _columns) in reversed(OLD.items()):
        op.drop_table(table)


def _aware(record: dict[str, Any]) -> dict[str, Any]:
    """A row as packed: its times (stored naive, in UTC) aware; its DNS servers a list."""
    if record.get("seen_at") is not None:
        record["seen_at"] = record["seen_at"].replace(tzinfo=UTC)
    if "dns" in record:
        record["dns"] = list(record["dns"] or [])
    return record


def downgrade() -> None:
    for kind, (table, columns) in OLD.items():
        op.create_table(
            table,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "run_id",
                sa.Integer,
                sa.ForeignKey("scan_run.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            *(sa.Column(name, type_, nullable=True) for name, type_ in columns),
        )
        query = sa.select(RECORDS.c.run_id, RECORDS.c.data).where(RECORDS.c.kind == kind)
        connection = op.get_bind()
        for run_id, data in connection.execute(query.order_by(sa.text("id"))).all():
            rows = [
                {**record, "run_id": run_id, **_naive(record)} for record in packing.unpack(data)
            ]
            connection.execute(_old(kind).insert(), rows)
    op.drop_table("run_records")


def _naive(record: dict[str, Any]) -> dict[str, Any]:
    when = record.get("seen_at")
    return {"seen_at": when.replace(tzinfo=None)} if when is not None else {}
