"""What a policy judges and the helpers every finding family shares.

A policy is a pure function: `RunFacts` (what one run saw, a ledger snapshot and the history it
needs) and the `[policy]` settings in, findings out. No I/O, no clock: the run's time is
`facts.now`.

Addresses are taken as canonical text, the way the ledger stores them and the scanners report them
(IPs as `ipaddress` prints them, MACs lowercase with colons); policies compare them as given.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from ipguard.model import (
    Binding,
    Dhcp6Advert,
    DhcpOffer,
    Evidence,
    FindingKind,
    NameObservation,
    Observation,
    ProxyVerdict,
    Role,
    RouterAdvert,
    Service,
    ServiceObservation,
    Severity,
    SnmpPoll,
)


@dataclass(frozen=True)
class PoolRange:
    """An address range a department was given (`ipguard pools add DEPARTMENT CIDR`)."""

    department: str
    cidr: str


@dataclass(frozen=True)
class RunFacts:
    """Everything one run saw, the ledger as it stood, and the history the policies need."""

    now: datetime  # the run's time (UTC, aware)
    subnets: tuple[str, ...]  # what this run covered (CIDRs)
    observations: tuple[Observation, ...]  # every ARP/ICMP reply, duplicates included
    services: tuple[ServiceObservation, ...] = ()
    dhcp_offers: tuple[DhcpOffer, ...] = ()
    proxies: tuple[ProxyVerdict, ...] = ()
    names: tuple[NameObservation, ...] = ()
    evidence: tuple[Evidence, ...] = ()  # router / access-point evidence
    ledger: tuple[Binding, ...] = ()  # every record, any status
    pools: tuple[PoolRange, ...] = ()
    # (ip, mac) of a binding -> when an earlier run last saw it (absent: never)
    last_seen: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    # (kind, subject) of a finding already open -> when it was first seen
    first_seen: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    # The site this run reports as; records scoped to other sites authorise nothing here
    # (`policies.sightings`). Empty: every record counts, whatever its site.
    site: str = ""
    # What each configured switch and router said (phase snmp): FDB and LLDP for switchports.
    snmp: tuple[SnmpPoll, ...] = ()
    # What the ipv6 phase heard: router advertisements and DHCPv6 ADVERTISEs.
    router_adverts: tuple[RouterAdvert, ...] = ()
    dhcp6_adverts: tuple[Dhcp6Advert, ...] = ()


class PolicySettingsLike(Protocol):
    """The `[policy]` settings policies read; `ipguard.config.PolicySettings` is one."""

    @property
    def default_allowed_services(self) -> Collection[Service]:
        """Services allowed on every registered device."""
        ...

    @property
    def hostname_rule(self) -> str:
        """A regular expression with `{field}` placeholders; empty: no rule."""
        ...

    @property
    def stale_after_days(self) -> int:
        """Unseen longer than this, an active record is stale."""
        ...

    @property
    def unregistered_grace_days(self) -> int:
        """Open longer than this, an unregistered host escalates one level."""
        ...

    @property
    def severity(self) -> Mapping[FindingKind, Severity]:
        """Per-kind overrides of the default severities."""
        ...

    @property
    def randomized_mac_severity(self) -> Severity | None:
        """Severity of an unregistered host with a randomized MAC (None: unregistered-host's)."""
        ...

    @property
    def max_macs_per_port(self) -> int:
        """More MACs than this on an access port: unmanaged-switch."""
        ...

    @property
    def uplink_min_macs(self) -> int:
        """More MACs than this on a port make it an uplink."""
        ...

    @property
    def timezone(self) -> tzinfo:
        """The administrators' calendar: the zone whose days `guest_until` and summaries mean."""
        ...


# DESIGN.md, "Finding kinds"; the order is also the order findings of equal severity are listed in.
DEFAULT_SEVERITY: Mapping[FindingKind, Severity] = {
    FindingKind.UNREGISTERED_HOST: Severity.HIGH,
    FindingKind.IP_MAC_MISMATCH: Severity.HIGH,
    FindingKind.MAC_MOVED: Severity.MEDIUM,
    FindingKind.DUPLICATE_IP: Severity.HIGH,
    FindingKind.UNEXPECTED_SERVICE: Severity.MEDIUM,
    FindingKind.OPEN_PROXY: Severity.HIGH,
    FindingKind.ROGUE_DHCP: Severity.CRITICAL,
    FindingKind.ROGUE_ROUTER: Severity.HIGH,
    FindingKind.ROGUE_AP: Severity.HIGH,
    FindingKind.OUT_OF_POOL: Severity.MEDIUM,
    FindingKind.HOSTNAME_POLICY: Severity.LOW,
    FindingKind.STALE_REGISTRATION: Severity.LOW,
    FindingKind.GUEST_EXPIRED: Severity.MEDIUM,
    FindingKind.SUSPENDED_DEVICE_ONLINE: Severity.MEDIUM,
    FindingKind.ISOLATED_DEVICE_ONLINE: Severity.CRITICAL,
    FindingKind.WRONG_PORT: Severity.MEDIUM,
    FindingKind.UNMANAGED_SWITCH: Severity.HIGH,
    FindingKind.ROGUE_RA: Severity.CRITICAL,
}
KIND_ORDER: Mapping[FindingKind, int] = {kind: rank for rank, kind in enumerate(DEFAULT_SEVERITY)}

# Escalations, recorded in a finding's detail under "escalation" so that a reader sees why.
GATEWAY_SPOOFING = "gateway-spoofing"  # the address belongs to a router/gateway: always critical
PAST_GRACE = "past-grace"  # open longer than the grace period: one level up

_LEVELS = list(Severity)
ROUTING_ROLES = frozenset({Role.ROUTER, Role.GATEWAY})


def severity_of(
    kind: FindingKind, settings: PolicySettingsLike, escalation: str | None = None
) -> Severity:
    """The severity of a finding: the configured override or the default, then any escalation.

    An override replaces the default; escalations apply on top of it, so gateway spoofing is
    critical even when `ip-mac-mismatch` is configured lower.
    """
    base = settings.severity.get(kind, DEFAULT_SEVERITY[kind])
    if escalation == GATEWAY_SPOOFING:
        return Severity.CRITICAL
    if escalation == PAST_GRACE:
        return escalated(base)
    return base


def escalated(severity: Severity) -> Severity:
    """One level more severe (critical stays critical)."""
    return _LEVELS[min(severity.rank + 1, len(_LEVELS) - 1)]


def is_gateway(record: Binding | None) -> bool:
    """True for a record whose address others must never claim: a router or gateway."""
    return record is not None and not record.roles.isdisjoint(ROUTING_ROLES)


def utc(moment: datetime) -> datetime:
    """An aware UTC time; naive times (as SQLite returns them) are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 text for a finding's detail."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = utc(moment)
    return moment.isoformat().replace("+00:00", "Z")


def address(ip: str) -> tuple[int, int] | None:
    """(version, integer value) of a canonical address, or None when it is not one.

    Dotted IPv4 text is converted by hand: `ipaddress` costs ten times more, and a run compares
    tens of thousands of addresses.
    """
    octets = ip.split(".")
    if len(octets) == 4:
        value = 0
        for octet in octets:
            if not octet.isdigit() or len(octet) > 3:
                return None
            number = int(octet)
            if number > 255:
                return None
            value = value << 8 | number
        return (4, value)
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return (parsed.version, int(parsed))


def who(record: Binding) -> str:
    """The owner and department of a record, for a summary: "Li Wei, math"."""
    parts = [part for part in (record.owner, record.department) if part]
    return ", ".join(parts) if parts else "no owner recorded"


_ROLE_NAMES: dict[frozenset[Role], tuple[str, ...]] = {}


def role_names(roles: frozenset[Role]) -> list[str]:
    """Role names in alphabetical order (a ledger has few distinct role sets: remember them)."""
    names = _ROLE_NAMES.get(roles)
    if names is None:
        names = _ROLE_NAMES[roles] = tuple(sorted(role.value for role in roles))
    return list(names)


def registration(record: Binding) -> dict[str, Any]:
    """A record as a finding's detail shows it to an administrator."""
    return {
        "ip": record.ip,
        "ipv6": list(record.ipv6),
        "mac": record.mac,
        "hostname": record.hostname,
        "owner": record.owner,
        "department": record.department,
        "location": record.location,
        "switch_port": record.switch_port,
        "asset_tag": record.asset_tag,
        "roles": role_names(record.roles),
        "status": record.status.value,
        "approval_ref": record.approval_ref,
        "site": record.site,
    }


class AddressRanges:
    """A set of networks, as merged integer ranges per IP version, searched by bisection."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {}
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                continue  # the ledger refuses bad pools; a policy has nobody to tell
            first, last = int(network.network_address), int(network.broadcast_address)
            spans.setdefault(network.version, []).append((first, last))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, ranges in spans.items():
            starts: list[int] = []
            ends: list[int] = []
            for first, last in sorted(ranges):
                if ends and first <= ends[-1] + 1:
                    ends[-1] = max(ends[-1], last)
                else:
                    starts.append(first)
                    ends.append(last)
            self._starts[version] = starts
            self._ends[version] = ends

    def __contains__(self, ip: object) -> bool:
        parsed = address(ip) if isinstance(ip, str) else None
        if parsed is None:
            return False
        version, value = parsed
        starts = self._starts.get(version)
        if not starts:
            return False
        index = bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[version][index]


# First-hop redundancy protocols answer for a gateway's address from a virtual MAC (RFC 5798,
# RFC 2281 and Cisco's HSRPv2 and GLBP; CARP borrows VRRP's), not from a router's own.
_VIRTUAL_ROUTER_PREFIXES = (
    ("00:00:5e:00:01:", "VRRP"),
    ("00:00:5e:00:02:", "VRRP"),
    ("00:00:0c:07:ac:", "HSRP"),
    ("00:00:0c:9f:f", "HSRP"),
    ("00:07:b4:0", "GLBP"),
)


def virtual_router(mac: str | None) -> str | None:
    """The redundancy protocol whose virtual MAC this is (VRRP, HSRP, GLBP), or None."""
    for prefix, protocol in _VIRTUAL_ROUTER_PREFIXES:
        if mac and mac.startswith(prefix):
            return protocol
    return None


def is_randomized(mac: str | None) -> bool:
    """True for a locally administered unicast MAC, as phones and laptops make up per network."""
    if not mac or len(mac) < 2:
        return False
    try:
        first = int(mac[:2], 16)
    except ValueError:
        return False
    return bool(first & 0x02) and not first & 0x01
