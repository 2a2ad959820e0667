"""Sightings: when each (ip, mac) pair was last seen, one row per pair, backfilled from history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sighting",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("mac", sa.String, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("ip", "mac", name="uq_sighting_ip_mac"),
    )
    # What the scans' facts read until now: every complete scan run and every watcher (whatever
    # its end), observations with a MAC only.
    op.execute(
        "INSERT INTO sighting (ip, mac, seen_at) "
        "SELECT o.ip, o.mac, max(o.seen_at) FROM observation o "
        "JOIN scan_run r ON r.id = o.run_id "
        "WHERE (r.status = 'complete' OR r.kind = 'watch') AND o.mac IS NOT NULL "
        "GROUP BY o.ip, o.mac"
    )


def downgrade() -> None:
    op.drop_table("sighting")
