"""Plain data for policy tests: a few addresses and MACs, and one call from facts to findings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ipguard.config import PolicySettings
from ipguard.model import (
    Binding,
    DeviceStatus,
    Finding,
    FindingKind,
    Observation,
    Role,
    Service,
    Severity,
)
from ipguard.policies import evaluate
from ipguard.policies.base import RunFacts

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
SUBNET = "10.20.0.0/16"

IP1, IP2, IP3, IP4, IP5 = (f"10.20.1.{n}" for n in range(1, 6))
FREE = "10.20.9.9"  # registered to nobody
ELSEWHERE = "10.99.0.1"  # outside the run's subnets

A, B, C, D, E = (f"00:11:22:33:44:0{n}" for n in "abcde")
X, Y = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"  # registered nowhere

# What a test asserts: the findings as (kind, ip, mac, port, severity) tuples.
Key = tuple[str, str | None, str | None, str | None, str]


def device(ip: str, mac: str, *roles: str, **fields: Any) -> Binding:
    """A ledger record; roles by name, any other field by keyword (status, isolated, …)."""
    if "status" in fields:
        fields["status"] = DeviceStatus(fields["status"])
    if "allowed_services" in fields:
        fields["allowed_services"] = frozenset(service(spec) for spec in fields["allowed_services"])
    if isinstance(fields.get("guest_until"), str):
        fields["guest_until"] = date.fromisoformat(fields["guest_until"])
    fields.setdefault("owner", f"owner of {ip}")
    role_set = frozenset(Role(role) for role in roles) or frozenset({Role.HOST})
    return Binding(ip, mac, roles=role_set, **fields)


def service(spec: str) -> Service:
    """`tcp/8080` as a Service."""
    proto, port = spec.split("/")
    return Service(proto, int(port))


def arp(ip: str, mac: str, **fields: Any) -> Observation:
    """An ARP reply: `ip` answered from `mac`."""
    return Observation(ip, mac, NOW, "arp", **fields)


def icmp(ip: str) -> Observation:
    """An echo reply from a routed segment: no MAC."""
    return Observation(ip, None, NOW, "icmp", ttl=63)


def settings(**changes: Any) -> PolicySettings:
    """The default [policy] settings with some changed; `severity` takes kind and level names."""
    if "severity" in changes:
        changes["severity"] = {
            FindingKind(kind): Severity(level) for kind, level in changes["severity"].items()
        }
    # Pinned to UTC: the default zone is the machine's, and these tables are written in UTC days.
    return replace(PolicySettings(), **{"timezone": UTC, **changes})


def facts(
    ledger: Iterable[Binding] = (),
    observations: Iterable[Observation] = (),
    *,
    last_seen: Mapping[tuple[str, str], datetime] | None = None,
    subnets: tuple[str, ...] = (SUBNET,),
    **more: Any,
) -> RunFacts:
    """A run's facts. Unless told otherwise, every record was seen by a run an hour ago."""
    ledger = tuple(ledger)
    if last_seen is None:
        last_seen = {(record.ip, record.mac): NOW - timedelta(hours=1) for record in ledger}
    for name in ("services", "dhcp_offers", "proxies", "names", "evidence", "pools"):
        if name in more:
            more[name] = tuple(more[name])
    return RunFacts(
        now=NOW,
        subnets=subnets,
        observations=tuple(observations),
        ledger=ledger,
        last_seen=last_seen,
        **more,
    )


def findings(
    ledger: Iterable[Binding] = (),
    observations: Iterable[Observation] = (),
    policy: PolicySettings | None = None,
    **more: Any,
) -> list[Finding]:
    """Every finding the policies raise for these facts."""
    return evaluate(facts(ledger, observations, **more), policy or settings())


def judge(
    ledger: Iterable[Binding] = (),
    observations: Iterable[Observation] = (),
    policy: PolicySettings | None = None,
    **more: Any,
) -> set[Key]:
    """The findings as a set of (kind, ip, mac, port, severity)."""
    return {key(finding) for finding in findings(ledger, observations, policy, **more)}


def key(finding: Finding) -> Key:
    """What tests compare about a finding."""
    return (finding.kind.value, finding.ip, finding.mac, finding.port, finding.severity.value)


def only(found: list[Finding], kind: str) -> Finding:
    """The one finding of a kind (fails when there is not exactly one)."""
    matching = [finding for finding in found if finding.kind.value == kind]
    assert len(matching) == 1, f"expected one {kind}, got {[key(f) for f in found]}"
    return matching[0]
