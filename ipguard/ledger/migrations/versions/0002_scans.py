"""Scan history: runs, what each saw, and findings with their lifecycle.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN_ONLY = sa.text("state <> 'resolved'")


def _run_fk() -> sa.Column[int]:
    return sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("scan_run.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "scan_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String, nullable=False),
        sa.Column("interface", sa.String, nullable=False, server_default=""),
        sa.Column("subnets", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("version", sa.String, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("sensor", sa.String, nullable=False, server_default=""),
        sa.Column("error", sa.String, nullable=False, server_default=""),
        sa.CheckConstraint(
            "status IN ('running', 'complete', 'aborted', 'failed')", name="ck_scan_run_status"
        ),
    )
    op.create_index("ix_scan_run_site_started", "scan_run", ["site", "started_at"])
    op.create_index("ix_scan_run_status", "scan_run", ["status"])

    op.create_table(
        "observation",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("mac", sa.String, nullable=True),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=False),
        sa.Column("replies", sa.Integer, nullable=False, server_default="1"),
        sa.Column("ttl", sa.Integer, nullable=True),
        sa.Column("rtt_ms", sa.Float, nullable=True),
        sa.Column("vendor", sa.String, nullable=True),
    )
    op.create_index("ix_observation_run", "observation", ["run_id"])
    op.create_index("ix_observation_ip", "observation", ["ip"])
    op.create_index("ix_observation_mac", "observation", ["mac"])

    op.create_table(
        "service_observation",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("proto", sa.String, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("service", sa.String, nullable=False, server_default=""),
        sa.Column("product", sa.String, nullable=False, server_default=""),
        sa.Column("version", sa.String, nullable=False, server_default=""),
        sa.Column("banner", sa.String, nullable=False, server_default=""),
    )
    op.create_index("ix_service_observation_run", "service_observation", ["run_id"])
    op.create_index("ix_service_observation_ip", "service_observation", ["ip"])

    op.create_table(
        "dhcp_offer",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("server_ip", sa.String, nullable=False),
        sa.Column("server_mac", sa.String, nullable=False),
        sa.Column("offered_ip", sa.String, nullable=False),
        sa.Column("router", sa.String, nullable=True),
        sa.Column("dns", sa.JSON, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_dhcp_offer_run", "dhcp_offer", ["run_id"])

    op.create_table(
        "proxy_check",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("relays", sa.Boolean, nullable=False),
        sa.Column("detail", sa.String, nullable=False, server_default=""),
    )
    op.create_index("ix_proxy_check_run", "proxy_check", ["run_id"])

    op.create_table(
        "name_observation",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("source", sa.String, nullable=False),
    )
    op.create_index("ix_name_observation_run", "name_observation", ["run_id"])

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True),
        _run_fk(),
        sa.Column("ip", sa.String, nullable=False),
        sa.Column("mac", sa.String, nullable=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("points_to", sa.String, nullable=False),
        sa.Column("detail", sa.String, nullable=False, server_default=""),
    )
    op.create_index("ix_evidence_run", "evidence", ["run_id"])

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("ip", sa.String, nullable=True),
        sa.Column("mac", sa.String, nullable=True),
        sa.Column("port", sa.String, nullable=True),
        sa.Column("severity", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("summary", sa.String, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("first_seen_at", sa.DateTime, nullable=False),
        sa.Column("first_run_id", sa.Integer, nullable=True),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("last_run_id", sa.Integer, nullable=True),
        sa.Column("report_due_at", sa.DateTime, nullable=True),
        sa.Column("ack_note", sa.String, nullable=False, server_default=""),
        sa.Column("ack_by", sa.String, nullable=False, server_default=""),
        sa.Column("ack_at", sa.DateTime, nullable=True),
        sa.Column("ack_until", sa.DateTime, nullable=True),
        sa.Column("resolved_at", sa.DateTime, nullable=True),
        sa.Column("resolved_run_id", sa.Integer, nullable=True),
        sa.Column("resolved_by", sa.String, nullable=False, server_default=""),
        sa.Column("alerted_severity", sa.String, nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved')", name="ck_finding_state"
        ),
    )
    # One live finding per (site, kind, subject); a resolved one that comes back is a new incident.
    op.create_index(
        "uq_finding_live",
        "finding",
        ["site", "kind", "subject"],
        unique=True,
        sqlite_where=OPEN_ONLY,
        postgresql_where=OPEN_ONLY,
    )
    op.create_index("ix_finding_state", "finding", ["state"])
    op.create_index("ix_finding_last_seen", "finding", ["last_seen_at"])


def downgrade() -> None:
    for table in (
        "finding",
        "evidence",
        "name_observation",
        "proxy_check",
        "dhcp_offer",
        "service_observation",
        "observation",
        "scan_run",
    ):
        op.drop_table(table)
