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


class ObservationRow(SQLModel, table=True):
    """An IP that answered from a MAC in a run (repeated replies counted, not repeated)."""

    __tablename__ = "observation"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    ip: str
    mac: str | None = None
    source: str
    seen_at: datetime = Field(sa_type=UTCDateTime)
    replies: int = 1
    ttl: int | None = None
    rtt_ms: float | None = None
    vendor: str | None = None


class ServiceRow(SQLModel, table=True):
    """An open port on a live host in a run."""

    __tablename__ = "service_observation"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    ip: str
    proto: str
    port: int
    service: str = ""
    product: str = ""
    version: str = ""
    banner: str = ""


class DhcpOfferRow(SQLModel, table=True):
    """A DHCP offer received in a run."""

    __tablename__ = "dhcp_offer"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    server_ip: str
    server_mac: str
    offered_ip: str
    router: str | None = None
    dns: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProxyCheckRow(SQLModel, table=True):
    """The outcome of asking a host to relay to our canary."""

    __tablename__ = "proxy_check"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    ip: str
    port: int
    method: str
    relays: bool
    detail: str = ""


class NameRow(SQLModel, table=True):
    """A hostname a host went by in a run."""

    __tablename__ = "name_observation"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    ip: str
    name: str
    source: str


class EvidenceRow(SQLModel, table=True):
    """A sign of routing or of a wireless access point, seen in a run."""

    __tablename__ = "evidence"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_id()
    ip: str
    mac: str | None = None
    kind: str
    points_to: str
    detail: str = ""


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
