"""The ledger: devices, pools and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ACTIVE_ONLY = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "device",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("mac", sa.String, nullable=False),
        sa.Column("hostname", sa.String, nullable=False, server_default=""),
        sa.Column("owner", sa.String, nullable=False, server_default=""),
        sa.Column("department", sa.String, nullable=False, server_default=""),
        sa.Column("location", sa.String, nullable=False, server_default=""),
        sa.Column("switch_port", sa.String, nullable=False, server_default=""),
        sa.Column("asset_tag", sa.String, nullable=False, server_default=""),
        sa.Column("roles", sa.String, nullable=False, server_default="host"),
        sa.Column("allowed_services", sa.String, nullable=False, server_default=""),
        sa.Column("status", sa.String, nullable=False, server_default="active"),
        sa.Column("isolated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("guest_until", sa.Date, nullable=True),
        sa.Column("approval_ref", sa.String, nullable=False, server_default=""),
        sa.Column("notes", sa.String, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended', 'retired')", name="ck_device_status"),
    )
    op.create_index("ix_device_ip", "device", ["ip"])
    op.create_index("ix_device_mac", "device", ["mac"])
    # An active IP belongs to exactly one record; retired history may repeat it.
    op.create_index(
        "uq_device_active_ip",
        "device",
        ["ip"],
        unique=True,
        sqlite_where=ACTIVE_ONLY,
        postgresql_where=ACTIVE_ONLY,
    )

    op.create_table(
        "pool",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("department", sa.String, nullable=False),
        sa.Column("cidr", sa.String, nullable=False, unique=True),
        sa.Column("description", sa.String, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_pool_department", "pool", ["department"])

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("entity", sa.String, nullable=False),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("alt_key", sa.String, nullable=False, server_default=""),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_key", "audit", ["key"])
    op.create_index("ix_audit_alt_key", "audit", ["alt_key"])
    _protect_audit()


def _protect_audit() -> None:
    """Make the database itself refuse to change or delete audit rows."""
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit "
                "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )


def downgrade() -> None:
    op.drop_table("audit")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table("pool")
    op.drop_table("device")
