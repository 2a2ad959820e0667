"""Scan history tables: runs, what each run saw, and findings with their lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ipguard.ledger.tables import UTCDateTime


class ScanRun(SQLModel, table=True):
    """One sweep of a site's subnets: who ran it, with what settings, and how it ended."""

    __tablename__ = "scan_run"

    id: int | None = Field(default=None, primary_key=True)
    site: str
    interface: str = ""
    subnets: list[str] = Field(sa_type=sa.JSON)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str
    settings: dict[str, Any] = Field(sa_type=sa.JSON)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    version: str
    actor: str
    sensor: str = ""
    error: str = ""
    kind: str = "scan"  # "scan" (one sweep) or "watch" (a passive watcher's lifetime)


def _run_id() -> Any:
    return Field(foreign_key="scan_run.id", ondelete="CASCADE", index=True)


class RunRecordsRow(SQLModel, table=True):
    """What a run saw of one kind (observations, services, ...), packed (see `ledger.records`).

    A scan stores one row per kind; a watcher one per kind and batch.
    """

    __tablename__ = "run_records"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    kind: str
    entries: int  # records packed in `data`
    first_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # timed kinds only
    data: bytes = Field(sa_type=sa.LargeBinary)


class SightingRow(SQLModel, table=True):
    """When an (ip, mac) pair was last seen by a complete scan run or a watcher, of any site.

    One row per pair, kept as runs complete and watchers store batches, so reading it costs the
    number of pairs, not the length of the history. Pruning old runs leaves it alone.
    """

    __tablename__ = "sighting"
    __table_args__ = (sa.UniqueConstraint("ip", "mac", name="uq_sighting_ip_mac"),)

    id: int | None = Field(default=None, primary_key=True)
    ip: str
    mac: str
    seen_at: datetime = Field(sa_type=UTCDateTime)


class DhcpFingerprintRow(SQLModel, table=True):
    """What a device's DHCP client asks for (options 55 and 60), as a passive watcher saw it."""

    __tablename__ = "dhcp_fingerprint"

    id: int | None = Field(default=None, primary_key=True)
    site: str
    mac: str
    ip: str | None = None
    hostname: str = ""
    parameters: str = ""  # option 55, the codes in the client's order: "1,3,6,15"
    vendor_class: str = ""  # option 60, e.g. "MSFT 5.0", "android-dhcp-14"
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class FindingRow(SQLModel, table=True):
    """A finding through its lifecycle: open → acknowledged → resolved."""

    __tablename__ = "finding"

    id: int | None = Field(default=None, primary_key=True)
    site: str
    kind: str
    subject: str
    ip: str | None = None
    mac: str | None = None
    port: str | None = None
    severity: str
    state: str
    summary: str
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    first_run_id: int | None = None
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_run_id: int | None = None
    report_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ack_note: str = ""
    ack_by: str = ""
    ack_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ack_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_run_id: int | None = None
    resolved_by: str = ""
    alerted_severity: str | None = None
