"""Scan history written straight into a real ledger, at chosen times (no scanner, no policies).

Reports, retention and metrics read history that spans months; these helpers write it with the
ledger's own functions (runs.start/store_results/finish, findings.sync/acknowledge/resolve) and
explicit clocks, so tests can place a run exactly at a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ipguard.ledger import audit, findings, runs
from ipguard.ledger.scan_tables import FindingRow
from ipguard.ledger.store import Store
from ipguard.model import (
    DhcpOffer,
    Evidence,
    Finding,
    FindingKind,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    RunStatus,
    ScanResult,
    ServiceObservation,
    Severity,
)

SUBNET = "198.18.0.0/24"


def everything_seen(at: datetime, hosts: int = 1) -> ScanResult:
    """A run that saw one row of every kind per host (observation, service, offer, …)."""
    ips = [f"198.18.0.{10 + index}" for index in range(hosts)]
    return ScanResult(
        observations=tuple(
            Observation(
                ip=ip,
                mac=f"02:00:00:00:00:{10 + i:02x}",
                seen_at=at,
                source="arp",
                vendor="Lab Vendor",
            )
            for i, ip in enumerate(ips)
        ),
        services=tuple(ServiceObservation(ip=ip, proto="tcp", port=22) for ip in ips),
        dhcp_offers=tuple(
            DhcpOffer(server_ip=ip, server_mac="02:00:00:00:00:aa", offered_ip="198.18.0.200")
            for ip in ips
        ),
        proxies=tuple(
            ProxyVerdict(ip=ip, port=3128, method="http-connect", relays=False) for ip in ips
        ),
        names=tuple(
            NameObservation(ip=ip, name=f"pc-{i}", source="dns") for i, ip in enumerate(ips)
        ),
        evidence=tuple(Evidence(ip=ip, mac=None, kind="ttl", points_to="router") for ip in ips),
        phases=frozenset(Phase),
    )


def add_run(
    store: Store,
    started: datetime,
    *,
    site: str = "lab",
    hosts: int = 1,
    status: RunStatus = RunStatus.COMPLETE,
    found: Sequence[Finding] = (),
) -> int:
    """One run that started at `started`; complete runs also sync `found` as its findings."""
    result = everything_seen(started, hosts)
    with store.session() as session:
        run = runs.start(
            session,
            site=site,
            interface="eth0",
            subnets=[SUBNET],
            settings={},
            actor="tester",
            sensor="test",
            version="0",
            now=started,
        )
        assert run.id is not None
        counts: dict[str, Any] = runs.store_results(session, run.id, result)
        if status == RunStatus.COMPLETE:
            findings.sync(
                session,
                site=site,
                run_id=run.id,
                now=started,
                findings=found,
                subnets=[SUBNET],
                phases=frozenset(Phase),
                evidence=lambda f: {
                    "observations": [{"ip": f.ip, "mac": f.mac, "vendor": "Lab Vendor"}]
                },
            )
        runs.finish(session, run.id, status, counts=counts, now=started + timedelta(seconds=7))
        return run.id


def finding(
    kind: FindingKind,
    severity: Severity,
    ip: str,
    mac: str = "02:66:00:00:00:01",
    summary: str = "",
    port: str | None = None,
) -> Finding:
    """A finding as a policy would return it."""
    return Finding(
        kind=kind,
        severity=severity,
        ip=ip,
        mac=mac,
        port=port,
        summary=summary or f"{kind.value} at {ip}",
    )


def row(store: Store, kind: FindingKind, ip: str) -> FindingRow:
    """The stored finding of a kind at an IP."""
    with store.session(write=False) as session:
        (found,) = [r for r in findings.list_findings(session, kind=kind.value) if r.ip == ip]
        return found


def acknowledge(store: Store, finding_id: int | None, at: datetime, note: str = "known") -> None:
    assert finding_id is not None
    with store.session() as session:
        findings.acknowledge(session, finding_id, note=note, until=None, actor="tester", now=at)


def resolve(store: Store, finding_id: int | None, at: datetime) -> None:
    assert finding_id is not None
    with store.session() as session:
        findings.resolve(session, finding_id, actor="tester", now=at)


def audit_entry(
    store: Store,
    at: datetime,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    action: str = "device.edit",
    actor: str = "admin",
) -> None:
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action=action,
            entity="device",
            key=key,
            before=before,
            after=after,
            at=at,
        )
