"""Static IPv6 addresses of a device: a `;`-separated list of canonical addresses, empty for none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite on either database, and every existing record has no
    # static IPv6 (it may use any address its MAC is given, as before).
    op.add_column("device", sa.Column("ipv6", sa.String, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.drop_column("ipv6")
