"""Scan runs in the ledger: their lifecycle, what each saw, and reading that back."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from ipguard.errors import DamagedHistory, NotFound
from ipguard.ledger import records, sightings
from ipguard.ledger.scan_tables import ScanRun
from ipguard.ledger.tables import utcnow
from ipguard.model import (
    DhcpOffer,
    Evidence,
    EvidenceKind,
    KnownHost,
    NameObservation,
    NameSource,
    Observation,
    ObservationSource,
    Phase,
    PointsTo,
    ProxyMethod,
    ProxyVerdict,
    RunStatus,
    ScanResult,
    ServiceObservation,
)


def abort_dead(session: Session, site: str, *, now: datetime | None = None) -> list[int]:
    """Mark scan runs of a site still `running` as aborted; call only while holding its lock.

    Watch runs are left alone: a watcher takes no lock and runs beside scans (see `abort_stale`).
    """
    dead = list(
        session.exec(
            select(ScanRun).where(
                ScanRun.site == site,
                ScanRun.status == RunStatus.RUNNING.value,
                ScanRun.kind == SCAN,
            )
        )
    )
    for run in dead:
        run.status = RunStatus.ABORTED.value
        run.finished_at = now or utcnow()
        run.error = run.error or "the scan process died before finishing"
        session.add(run)
    return [run.id for run in dead if run.id is not None]


SCAN = "scan"  # ScanRun.kind of one sweep
WATCH = "watch"  # ScanRun.kind of a passive watcher's lifetime


def start(
    session: Session,
    *,
    site: str,
    interface: str,
    subnets: Sequence[str],
    settings: dict[str, Any],
    actor: str,
    sensor: str,
    version: str,
    now: datetime | None = None,
    kind: str = SCAN,
) -> ScanRun:
    """Record a new run as `running`."""
    run = ScanRun(
        site=site,
        interface=interface,
        subnets=list(subnets),
        started_at=now or utcnow(),
        status=RunStatus.RUNNING.value,
        settings=settings,
        counts={},
        version=version,
        actor=actor,
        sensor=sensor,
        kind=kind,
    )
    session.add(run)
    session.flush()
    return run


def finish(
    session: Session,
    run_id: int,
    status: RunStatus,
    *,
    counts: dict[str, Any] | None = None,
    error: str = "",
    now: datetime | None = None,
) -> ScanRun:
    """Close a run with its outcome; a scan run completing makes what it saw count as sighted."""
    run = get(session, run_id)
    if status is RunStatus.COMPLETE and run.kind == SCAN and run.status != status.value:
        sightings.record_run(session, run_id)
    run.status = status.value
    run.finished_at = now or utcnow()
    if counts is not None:
        run.counts = counts
    run.error = error
    session.add(run)
    session.flush()
    return run


def find_spooled(
    session: Session, run_id: int | None, site: str, started_at: datetime
) -> ScanRun | None:
    """The run a spool file was written for, if this ledger holds it (same id, site and start)."""
    run = session.get(ScanRun, run_id) if run_id is not None else None
    if run is None or run.site != site or abs((run.started_at - started_at).total_seconds()) > 1:
        return None
    return run


def clear_results(session: Session, run: ScanRun) -> None:
    """Remove what a run saw (to store it again), keeping the run itself."""
    if run.id is not None:
        records.clear(session, run.id)


def get(session: Session, run_id: int) -> ScanRun:
    """One run by id."""
    # An id past the database's 64-bit integers names nothing (and the driver would overflow).
    run = session.get(ScanRun, run_id) if 0 < run_id < 2**63 else None
    if run is None:
        raise NotFound(f"no scan run {run_id}; `ipguard runs list` shows the runs")
    return run


def list_runs(session: Session, *, site: str | None = None, limit: int = 50) -> list[ScanRun]:
    """Newest runs first."""
    query = select(ScanRun).order_by(col(ScanRun.id).desc()).limit(min(limit, 2**31))
    if site:
        query = query.where(ScanRun.site == site)
    return list(session.exec(query))


def last_complete(session: Session, *, site: str | None = None, count: int = 2) -> list[ScanRun]:
    """The newest complete scan runs, newest first (a watcher's lifetime is no sweep to compare)."""
    query = (
        select(ScanRun)
        .where(ScanRun.status == RunStatus.COMPLETE.value, ScanRun.kind == SCAN)
        .order_by(col(ScanRun.id).desc())
        .limit(count)
    )
    if site:
        query = query.where(ScanRun.site == site)
    return list(session.exec(query))


def last_calendar(session: Session, site: str) -> tuple[int, str, str] | None:
    """(run id, sensor, zone) of the site's newest complete scan that recorded the zone its days
    were judged in (`[policy] timezone`); None when none did."""
    for run in last_complete(session, site=site, count=20):
        zone = run.settings.get("timezone")
        if isinstance(zone, str) and zone:
            assert run.id is not None
            return run.id, run.sensor, zone
    return None


# Text from the network is stored as the host sent it, except what no database can hold or nobody
# should have to: NUL characters (PostgreSQL refuses them) and lone surrogates become visible
# escapes (\u0000), and text longer than NETWORK_TEXT_LIMIT characters is cut, with a marker.
NETWORK_TEXT_LIMIT = 4096
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` as the ledger keeps it (see NETWORK_TEXT_LIMIT)."""
    if len(text) > NETWORK_TEXT_LIMIT:
        text = f"{text[:NETWORK_TEXT_LIMIT]}… [cut: {len(text):,} characters in all]"
    if _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text


def storable(result: ScanResult) -> ScanResult:
    """The result with every text field storable (a copy; untouched when nothing needs it)."""

    def clean(item: Any) -> Any:
        changes: dict[str, Any] = {}
        for name, value in vars(item).items():
            if isinstance(value, str):
                fixed: Any = storable_text(value)
            elif isinstance(value, tuple) and value and isinstance(value[0], str):
                fixed = tuple(storable_text(part) for part in value)
            else:
                continue
            if fixed != value:
                changes[name] = fixed
        return replace(item, **changes) if changes else item

    groups = ("observations", "services", "dhcp_offers", "proxies", "names", "evidence")
    cleaned: dict[str, Any] = {
        name: tuple(clean(item) for item in getattr(result, name)) for name in groups
    }
    return replace(result, **cleaned)


def store_results(
    session: Session, run_id: int, result: ScanResult, *, sighted: bool = False
) -> dict[str, Any]:
    """Write what a run saw (one bulk insert per table); returns the counts stored.

    `sighted`: the observations count as sightings at once (a watcher's batch); a scan run's
    count only when it completes (`finish`).
    """
    replies: Counter[tuple[str, str | None, str]] = Counter()
    first: dict[tuple[str, str | None, str], Observation] = {}
    for seen in result.observations:
        key = (seen.ip, seen.mac, seen.source)
        replies[key] += 1
        first.setdefault(key, seen)
    kept: dict[str, list[dict[str, Any]]] = {
        "observations": [
            {**_fields(seen, Observation), "replies": replies[key]} for key, seen in first.items()
        ],
        "services": [_fields(item, ServiceObservation) for item in result.services],
        "dhcp_offers": [_fields(item, DhcpOffer) for item in result.dhcp_offers],
        "proxy_checks": [_fields(item, ProxyVerdict) for item in result.proxies],
        "names": [_fields(item, NameObservation) for item in result.names],
        "evidence": [_fields(item, Evidence) for item in result.evidence],
    }
    records.write(session, run_id, kept)
    if sighted:
        sightings.record_rows(session, kept["observations"])
    return {
        **host_counts(result.observations),
        "replies": len(result.observations),
        "services": len(result.services),
        "dhcp_offers": len(result.dhcp_offers),
        "proxies_relaying": sum(1 for item in result.proxies if item.relays),
        "names": len(result.names),
        "evidence": len(result.evidence),
        "service_mode": str(result.service_mode or ""),  # "" when no service scan ran
        "services_rescanned": result.services_rescanned,
        # Replies read and not kept (a flood, a spoofer), by reason; absent when there were none.
        **(
            {"ignored_replies": {str(k): n for k, n in result.ignored.items()}}
            if result.ignored
            else {}
        ),
        # Replies the kernel dropped (receive buffer full), by sweep; absent when there were none.
        **({"replies_dropped": dict(result.replies_dropped)} if result.replies_dropped else {}),
    }


def host_counts(observations: Iterable[Observation]) -> dict[str, int]:
    """`hosts_seen`: the IPv4 addresses that answered, plus the devices (MACs) that answered over
    IPv6 only, so a dual-stack host with a link-local, a SLAAC and a privacy address counts once.
    With IPv6 replies, the addresses of each family as well (`ipv4_addresses`, `ipv6_addresses`).
    """
    ipv4: set[str] = set()
    ipv6: set[str] = set()
    macs4: set[str | None] = set()
    hosts6: set[str] = set()  # by MAC; an IPv6 reply without one (none on a link) by address
    for seen in observations:
        if ":" in seen.ip:
            ipv6.add(seen.ip)
            hosts6.add(seen.mac or seen.ip)
        else:
            ipv4.add(seen.ip)
            macs4.add(seen.mac)
    if not ipv6:
        return {"hosts_seen": len(ipv4)}
    return {
        "hosts_seen": len(ipv4) + len(hosts6 - macs4),
        "ipv4_addresses": len(ipv4),
        "ipv6_addresses": len(ipv6),
    }


def _fields(item: Any, kind: type) -> dict[str, Any]:
    names = kind.__dataclass_fields__  # type: ignore[attr-defined]
    return {name: getattr(item, name) for name in names}


def load_results(session: Session, run: ScanRun) -> ScanResult:
    """What a stored run saw, as the plain types (one Observation per stored record)."""
    assert run.id is not None
    run_id = run.id

    def kept(kind: str) -> list[dict[str, Any]]:
        return records.read(session, run_id, kind)

    return ScanResult(
        observations=tuple(_observation(record) for record in kept("observations")),
        services=tuple(ServiceObservation(**record) for record in kept("services")),
        dhcp_offers=tuple(
            DhcpOffer(**{**record, "dns": tuple(record["dns"])}) for record in kept("dhcp_offers")
        ),
        proxies=tuple(
            ProxyVerdict(**{**record, "method": ProxyMethod(record["method"])})
            for record in kept("proxy_checks")
        ),
        names=tuple(
            NameObservation(**{**record, "source": NameSource(record["source"])})
            for record in kept("names")
        ),
        evidence=tuple(
            Evidence(
                **{
                    **record,
                    "kind": EvidenceKind(record["kind"]),
                    "points_to": PointsTo(record["points_to"]),
                }
            )
            for record in kept("evidence")
        ),
        phases=frozenset(Phase(name) for name in run.settings.get("phases", ["sweep"])),
    )


def _observation(record: dict[str, Any]) -> Observation:
    """A stored observation as the plain type (its count of replies is not part of it)."""
    fields = {name: value for name, value in record.items() if name != "replies"}
    return Observation(**{**fields, "source": ObservationSource(record["source"])})


def last_seen(session: Session) -> dict[tuple[str, str], datetime]:
    """When each (ip, mac) pair was last seen by any complete run, or any watcher, of any site."""
    return sightings.last_seen(session)


def service_baseline(
    session: Session, site: str, *, full_since: datetime, lookback: int = 200
) -> dict[str, KnownHost] | None:
    """What the site's latest service scan knew, by IP; None when a full scan is due.

    A full service scan is due when none of the site's recent complete runs did one since
    `full_since`. Otherwise the latest run that scanned services (fully or incrementally) is the
    baseline: every host it saw, with its MAC then and its open services (possibly none). A
    baseline whose history cannot be read back (a damaged row) is none: a full scan is due.
    """
    recent = list(
        session.exec(
            select(ScanRun)
            .where(
                ScanRun.site == site,
                ScanRun.status == RunStatus.COMPLETE.value,
                ScanRun.kind == SCAN,
            )
            .order_by(col(ScanRun.id).desc())
            .limit(lookback)
        )
    )
    with_services = [
        run for run in recent if run.counts.get("service_mode") in ("full", "incremental")
    ]
    full = next((run for run in with_services if run.counts.get("service_mode") == "full"), None)
    if full is None or full.started_at < full_since or not with_services:
        return None
    latest = with_services[0]
    assert latest.id is not None
    try:
        seen = records.read(session, latest.id, "observations", ("ip", "mac"))
        found = records.read(session, latest.id, "services")
    except DamagedHistory:
        return None  # a baseline that cannot be read: a full scan, whose history is the next one
    macs: dict[str, str | None] = {}
    for record in seen:
        macs.setdefault(record["ip"], record["mac"])
    services: dict[str, list[ServiceObservation]] = {ip: [] for ip in macs}
    for record in found:
        services.setdefault(record["ip"], []).append(ServiceObservation(**record))
    return {ip: KnownHost(macs.get(ip), tuple(found)) for ip, found in services.items()}
