"""A passive watcher in the ledger: its run, its heartbeat, its sightings and DHCP fingerprints.

A watcher's lifetime is one run of kind `watch`: `running` while it lives, its counts (frames
read, judged, ignored) and `heartbeat_at` refreshed every few seconds, `complete` when it stops.
It takes no scan lock, so scans never abort it; a watcher that starts marks the watch runs of its
site whose heartbeat stopped (killed ones) aborted instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ipguard.escape import one_line
from ipguard.ledger import devices, runs
from ipguard.ledger.scan_tables import DhcpFingerprintRow, ScanRun
from ipguard.ledger.tables import Device
from ipguard.model import DhcpOffer, Observation, RunStatus, ScanResult

HEARTBEAT = timedelta(seconds=5)
DEAD_AFTER = timedelta(seconds=60)  # a running watch run without a heartbeat for this long died


def start(
    session: Session,
    *,
    site: str,
    now: datetime,
    dead: Callable[[ScanRun], bool] = lambda _run: False,
    **details: Any,
) -> tuple[ScanRun, list[int]]:
    """Record a watcher as a `running` watch run; also returns the dead watch runs it aborted.

    A running watch run is dead when its heartbeat is older than DEAD_AFTER, or when `dead`
    says so (the caller knows, say, that its process is gone from this very machine).
    """
    running = list(
        session.exec(
            select(ScanRun).where(
                ScanRun.site == site,
                ScanRun.kind == runs.WATCH,
                ScanRun.status == RunStatus.RUNNING.value,
            )
        )
    )
    aborted = []
    for run in running:
        beat = run.counts.get("heartbeat_at")
        last = datetime.fromisoformat(beat) if isinstance(beat, str) else run.started_at
        if now - last > DEAD_AFTER or dead(run):
            run.status, run.finished_at = RunStatus.ABORTED.value, last
            run.error = run.error or "the watcher died (no heartbeat) before stopping"
            session.add(run)
            aborted += [run.id] if run.id is not None else []
    # details: interface, subnets, settings, actor, sensor, version, as `runs.start` takes them
    run = runs.start(session, site=site, now=now, kind=runs.WATCH, **details)
    return run, aborted


def beat(session: Session, run_id: int, counts: dict[str, Any], now: datetime) -> None:
    """Refresh a live watch run's counts and heartbeat."""
    run = runs.get(session, run_id)
    run.counts = {**counts, "heartbeat_at": now.isoformat()}
    session.add(run)


def stop(
    session: Session, run_id: int, counts: dict[str, Any], now: datetime, error: str = ""
) -> ScanRun:
    """Close a watch run: complete when it stopped as asked, failed with `error` otherwise."""
    status = RunStatus.FAILED if error else RunStatus.COMPLETE
    return runs.finish(
        session,
        run_id,
        status,
        counts={**counts, "heartbeat_at": now.isoformat()},
        error=error[:2000],
        now=now,
    )


def ledger_version(session: Session) -> tuple[int, str]:
    """Changes to the device table show here: its row count and newest `updated_at`."""
    table = Device.__table__  # type: ignore[attr-defined]
    count, newest = session.execute(
        sa.select(sa.func.count(), sa.func.max(table.c.updated_at))
    ).one()
    return int(count), str(newest)


def snapshot(session: Session) -> list[Any]:
    """Every record as a plain binding (the watcher's ledger snapshot)."""
    return devices.snapshot(session)


def store_sightings(
    session: Session,
    run_id: int,
    sightings: Sequence[Observation],
    offers: Sequence[DhcpOffer],
) -> None:
    """Write a batch of sightings and DHCP offers into the watch run."""
    if sightings or offers:
        cleaned = runs.storable(
            ScanResult(observations=tuple(sightings), dhcp_offers=tuple(offers))
        )
        runs.store_results(session, run_id, cleaned, sighted=True)


def store_fingerprints(session: Session, site: str, clients: Iterable[Any], now: datetime) -> None:
    """Keep each DHCP client's latest fingerprint (options 55 and 60), hostname and address."""
    for client in clients:
        row = session.exec(
            select(DhcpFingerprintRow).where(
                DhcpFingerprintRow.site == site, DhcpFingerprintRow.mac == client.mac
            )
        ).first()
        if row is None:
            row = DhcpFingerprintRow(site=site, mac=client.mac, first_seen_at=now, last_seen_at=now)
        row.ip = client.ip or row.ip
        row.hostname = runs.storable_text(client.hostname) or row.hostname
        row.parameters = ",".join(str(code) for code in client.parameters) or row.parameters
        row.vendor_class = runs.storable_text(client.vendor_class) or row.vendor_class
        row.last_seen_at = now
        session.add(row)


def fingerprints(session: Session, mac: str) -> list[DhcpFingerprintRow]:
    """The DHCP fingerprints watchers recorded for a MAC, one per site."""
    query = select(DhcpFingerprintRow).where(DhcpFingerprintRow.mac == mac)
    return list(session.exec(query.order_by(DhcpFingerprintRow.site)))


def fingerprint_json(session: Session, mac: str) -> list[dict[str, Any]]:
    """A MAC's DHCP fingerprints as plain values, for `findings show`."""
    return [
        {
            "site": row.site,
            "ip": row.ip,
            "hostname": row.hostname,
            "parameter_request_list": row.parameters,
            "vendor_class": row.vendor_class,
            "last_seen": row.last_seen_at.isoformat().replace("+00:00", "Z"),
        }
        for row in fingerprints(session, mac)
    ]


def fingerprint_notes(session: Session, records: Sequence[dict[str, str]]) -> None:
    """Append each record's DHCP fingerprint to its `notes` (`ledger export --dhcp-fingerprint`)."""
    by_mac: dict[str, list[DhcpFingerprintRow]] = {}
    for row in session.exec(select(DhcpFingerprintRow).order_by(DhcpFingerprintRow.site)):
        by_mac.setdefault(row.mac, []).append(row)
    for record in records:
        prints = by_mac.get(record["mac"], [])
        # The vendor class and hostname are what the client sent: shown as escapes, they can
        # neither act on a terminal nor make openpyxl refuse the cell (and lose the export).
        heard = [
            f"[DHCP at {row.site}: options {row.parameters or '-'}; vendor "
            f"{one_line(row.vendor_class or '-')}; hostname {one_line(row.hostname or '-')}]"
            for row in prints
        ]
        if heard:
            record["notes"] = " ".join([record["notes"], *heard]).strip()
