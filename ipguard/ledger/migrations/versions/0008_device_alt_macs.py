"""A device's other MACs: a `;`-separated list of canonical MACs, empty for none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite on either database, and every existing record answers
    # from its one MAC, as before.
    op.add_column("device", sa.Column("alt_macs", sa.String, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.drop_column("alt_macs")
