"""Who may configure hosts over IPv6 on the link: rogue-ra, and rogue-dhcp for DHCPv6.

Every host autoconfigures from any router advertisement it hears, so one laptop sharing its
connection becomes the IPv6 default gateway of the whole VLAN. What the ipv6 phase heard is judged
by MAC, the only identity a link-local sender has (its address is derived from the MAC or random):

- `rogue-ra` (router link-local address, MAC): an RA whose MAC (the source link-layer option, else
  the frame's source) is no active record with role router or gateway, critical, and so is one
  whose link-layer option names a registered router but whose frame came from a MAC without the
  role; an RA from a registered router announcing a prefix outside `[scan] subnets` (the IPv6
  prefixes there), high (a misconfigured router, not an intruder). Each router's RAs give one
  finding, with prefixes, M/O flags, router lifetime and source in its detail, and `evasion`: the
  IPv6 extension headers its RAs came behind ("hop-by-hop", "fragment", …), the way past a
  switch's RA Guard (RFC 7113).
- `rogue-dhcp` (server link-local address, MAC) with `"family": 6`: a DHCPv6 server answering our
  SOLICIT whose MAC is no active record with role dhcp-server. A registered router's answer is a
  relay agent's when the server DUID in it (DUID-LLT or DUID-LL) names another MAC with role
  dhcp-server: no finding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from ipguard.model import (
    Binding,
    Dhcp6Advert,
    Finding,
    FindingKind,
    Role,
    RouterAdvert,
    Severity,
)
from ipguard.policies.base import (
    ROUTING_ROLES,
    PolicySettingsLike,
    RunFacts,
    registration,
    severity_of,
)
from ipguard.policies.sightings import LedgerIndex, Sightings

_RANKED = list(Severity)
# What an RA's M and O flags send hosts to ask DHCPv6 for (mitm6's RA has these and nothing else).
_DHCP6 = {
    (True, True): "addresses and other configuration from DHCPv6",
    (True, False): "addresses from DHCPv6",
    (False, True): "other configuration from DHCPv6",
    (False, False): "",
}


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every rogue-ra finding and every DHCPv6 rogue-dhcp finding of the run."""
    return [
        *rogue_ra(facts.router_adverts, facts.subnets, settings, seen.ledger),
        *rogue_dhcp6(facts.dhcp6_adverts, settings, seen.ledger),
    ]


def rogue_ra(
    adverts: Iterable[RouterAdvert],
    subnets: Sequence[str],
    settings: PolicySettingsLike,
    ledger: LedgerIndex,
) -> list[Finding]:
    """One rogue-ra per advertising router (link-local address, MAC) that may not advertise."""
    allowed = [
        network
        for network in (ipaddress.ip_network(text) for text in subnets)
        if isinstance(network, ipaddress.IPv6Network)
    ]
    by_router: dict[tuple[str, str], list[RouterAdvert]] = {}
    for advert in adverts:
        by_router.setdefault((advert.source_ip, _sender(advert, ledger)), []).append(advert)
    kind = FindingKind.ROGUE_RA
    found = []
    for (ip, mac), heard in by_router.items():
        roles = ledger.roles_of(mac)
        named = sorted({advert.source_mac for advert in heard} - {mac})
        if not roles & ROUTING_ROLES:
            reason = "lacks role router or gateway"
            if named:  # its link-layer option names a router: hosts send to it, take the rest
                reason += f" (sent from {mac} in the name of router {', '.join(named)})"
            severity = severity_of(kind, settings)
        else:
            prefixes = {prefix for advert in heard for prefix in advert.prefixes}
            foreign = sorted(p for p in prefixes if not _inside(p, allowed))
            if not foreign:
                continue
            reason = f"announces {', '.join(foreign)}, outside [scan] subnets"
            severity = _at_most(severity_of(kind, settings), Severity.HIGH)
        finding = _ra_finding(ip, mac, heard, reason, roles, ledger)
        if named:
            finding.detail["link_layer_option"] = named
        found.append(Finding(kind, severity, ip, mac, None, finding.summary, finding.detail))
    return found


class _Said(NamedTuple):
    summary: str
    detail: dict[str, Any]


def _ra_finding(
    ip: str,
    mac: str,
    heard: Sequence[RouterAdvert],
    reason: str,
    roles: frozenset[Role],
    ledger: LedgerIndex,
) -> _Said:
    """A rogue-ra's summary and detail: what the router's RAs offer hosts, and how they came."""
    prefixes = sorted({prefix for advert in heard for prefix in advert.prefixes})
    evasion = sorted({header for advert in heard for header in advert.evasion})
    dns = sorted({server for advert in heard for server in advert.dns_servers})
    routes = sorted({route for advert in heard for route in advert.routes})
    managed = any(advert.managed for advert in heard)
    other = any(advert.other for advert in heard)
    offered = [", ".join(prefixes), _DHCP6[managed, other], _listed("DNS server", dns)]
    withdrawn = sorted({prefix for advert in heard for prefix in advert.withdrawn})
    offered.append(_listed("route", routes))
    offered.append(f"withdrawing {', '.join(withdrawn)}" if withdrawn else "")
    summary = (
        f"IPv6 router advertisement from {ip} ({mac}) "
        f"announcing {', '.join(part for part in offered if part) or 'no prefix'} {reason}"
        + (f", behind {', '.join(evasion)} headers (RA Guard evasion)" if evasion else "")
    )
    detail: dict[str, Any] = {
        "prefixes": prefixes,
        "managed": managed,
        "other": other,
        "router_lifetime": heard[-1].router_lifetime,
        "source_ip": ip,
        "source_mac": mac,
        "frame_macs": sorted({advert.frame_mac or mac for advert in heard}),
        "adverts": len(heard),
        "reason": reason,
        "registered": [registration(record) for record in ledger.active_by_mac.get(mac, [])],
        "roles": sorted(role.value for role in roles),
    }
    if evasion:
        detail["evasion"] = evasion
    if dns or routes:
        detail["dns_servers"], detail["routes"] = dns, routes
    if withdrawn:
        detail["withdrawn"] = withdrawn
    return _Said(summary, detail)


def router_link_locals(adverts: Iterable[RouterAdvert], ledger: LedgerIndex) -> dict[str, str]:
    """Link-local address -> MAC of each registered router's own RAs (option and frame from its
    MAC, role router or gateway): the address hosts reach their default router at."""
    found: dict[str, str] = {}
    for advert in adverts:
        ip, mac = advert.source_ip, advert.source_mac
        if advert.frame_mac and advert.frame_mac != mac:
            continue
        if ledger.roles_of(mac) & ROUTING_ROLES and ipaddress.IPv6Address(ip).is_link_local:
            found.setdefault(ip, mac)
    return found


def with_router_addresses(
    records: tuple[Binding, ...],
    routers: Mapping[str, str],
    site: str,
    index: LedgerIndex | None = None,
) -> tuple[Binding, ...]:
    """The ledger with each router's link-local address among its addresses (on the first active
    record of its MAC with role router or gateway valid at the site), so that another MAC
    answering there is judged as at any registered address: the gateway impersonated. The ledger
    cannot hold link-local addresses (every router has fe80::1 on every VLAN)."""
    if not routers:
        return records
    index = LedgerIndex(records, site) if index is None else index  # of `records` at `site`
    extra: dict[int, list[str]] = {}
    for ip, mac in routers.items():
        routing = [r for r in index.active_by_mac.get(mac, ()) if r.roles & ROUTING_ROLES]
        if routing and ip not in index.active_by_ip:
            extra.setdefault(id(routing[0]), []).append(ip)
    return tuple(
        replace(record, ipv6=(*record.ipv6, *extra[id(record)])) if id(record) in extra else record
        for record in records
    )


def _listed(what: str, items: Sequence[str]) -> str:
    """``DNS server fd00::53`` / ``DNS servers a, b``, or "" for none."""
    return f"{what}{'s' if len(items) > 1 else ''} {', '.join(items)}" if items else ""


def _sender(advert: RouterAdvert, ledger: LedgerIndex) -> str:
    """Whose right to advertise an RA is judged by: the MAC of its link-layer option (the one
    hosts will send to), unless that is a router's and the frame came from a MAC that is not: a
    non-router speaking in a registered router's name."""
    option, frame = advert.source_mac, advert.frame_mac
    spoofed = frame and ledger.roles_of(option) & ROUTING_ROLES
    return frame if spoofed and not ledger.roles_of(frame) & ROUTING_ROLES else option


def rogue_dhcp6(
    adverts: Iterable[Dhcp6Advert], settings: PolicySettingsLike, ledger: LedgerIndex
) -> list[Finding]:
    """One rogue-dhcp (family 6) per DHCPv6 server whose MAC lacks role dhcp-server."""
    by_server: dict[tuple[str, str], list[Dhcp6Advert]] = {}
    for advert in adverts:
        by_server.setdefault((advert.server_ip, advert.server_mac), []).append(advert)
    kind = FindingKind.ROGUE_DHCP
    found = []
    for (ip, mac), heard in by_server.items():
        roles = ledger.roles_of(mac)
        if Role.DHCP_SERVER in roles or (roles & ROUTING_ROLES and _relayed(heard, mac, ledger)):
            continue
        records = ledger.active_by_mac.get(mac, [])
        reason = "lacks role dhcp-server" if records else "is not registered"
        servers = sorted({duid_mac(advert.server_duid) or mac for advert in heard} - {mac})
        if roles & ROUTING_ROLES and servers:  # a relay agent: the server behind it is unknown
            named = ", ".join(servers)
            reason = f"relays for DHCPv6 server {named} (its DUID), no registered dhcp-server"
        offered = sorted({address for advert in heard for address in advert.addresses})
        summary = (
            f"DHCPv6 server {ip} ({mac}) advertised {', '.join(offered) or 'no address'} "
            f"and {reason}"
        )
        detail: dict[str, Any] = {
            "family": 6,
            "offered_ips": offered,
            "server_duids": sorted({advert.server_duid for advert in heard if advert.server_duid}),
            "offers": len(heard),
            "reason": reason,
            "registered": [registration(record) for record in records],
            "roles": sorted(role.value for role in roles),
        }
        if servers:
            detail["duid_macs"] = servers
        found.append(Finding(kind, severity_of(kind, settings), ip, mac, None, summary, detail))
    return found


def _relayed(heard: Sequence[Dhcp6Advert], router: str, ledger: LedgerIndex) -> bool:
    """True when a router's ADVERTISEs all carry the DUID of a registered dhcp-server (another
    MAC): a relay agent (RFC 8415 section 19) sends the server's answer from its own address and
    MAC, as a DHCPv4 relay does. A DUID naming no MAC (DUID-EN, DUID-UUID) proves nothing."""
    for advert in heard:
        server = duid_mac(advert.server_duid)
        if server is None or server == router or Role.DHCP_SERVER not in ledger.roles_of(server):
            return False
    return True


def duid_mac(duid: str) -> str | None:
    """The Ethernet MAC a DUID-LLT or DUID-LL (hex) was made from (RFC 8415 11.2, 11.4), or None."""
    try:
        raw = bytes.fromhex(duid)
    except ValueError:
        return None
    kind, hardware = int.from_bytes(raw[:2], "big"), raw[2:4]
    address = raw[8:] if kind == 1 else raw[4:] if kind == 3 else b""
    if hardware != b"\x00\x01" or len(address) != 6:  # Ethernet only: 6 bytes
        return None
    return address.hex(":")


def _inside(prefix: str, allowed: Sequence[ipaddress.IPv6Network]) -> bool:
    network = ipaddress.IPv6Network(prefix, strict=False)
    return any(network.subnet_of(scope) for scope in allowed)


def _at_most(severity: Severity, ceiling: Severity) -> Severity:
    return _RANKED[min(severity.rank, ceiling.rank)]
