"""Passive watching: a run's kind (a scan or a watch), and the DHCP fingerprints of devices.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: both databases add the column without rewriting scan_run, and every
    # earlier run is what it was, a scan.
    op.add_column("scan_run", sa.Column("kind", sa.String, nullable=False, server_default="scan"))
    op.create_index("ix_scan_run_site_kind_status", "scan_run", ["site", "kind", "status"])
    op.create_table(
        "dhcp_fingerprint",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String, nullable=False),
        sa.Column("mac", sa.String, nullable=False),
        sa.Column("ip", sa.String, nullable=True),
        sa.Column("hostname", sa.String, nullable=False, server_default=""),
        sa.Column("parameters", sa.String, nullable=False, server_default=""),
        sa.Column("vendor_class", sa.String, nullable=False, server_default=""),
        sa.Column("first_seen_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("site", "mac", name="uq_dhcp_fingerprint_site_mac"),
    )


def downgrade() -> None:
    op.drop_table("dhcp_fingerprint")
    op.drop_index("ix_scan_run_site_kind_status", table_name="scan_run")
    with op.batch_alter_table("scan_run") as batch:
        batch.drop_column("kind")
