"""Site-scoped registrations: a device record may belong to one site (empty: every site).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: SQLite and PostgreSQL both do it without
    # rewriting the table, and every existing record stays valid at every site.
    op.add_column("device", sa.Column("site", sa.String, nullable=False, server_default=""))
    op.create_index("ix_device_site", "device", ["site"])


def downgrade() -> None:
    op.drop_index("ix_device_site", table_name="device")
    with op.batch_alter_table("device") as batch:
        batch.drop_column("site")
