"""Who may configure hosts over IPv6 on the link: rogue-ra, and rogue-dhcp for DHCPv6.

Every host autoconfigures from any router advertisement it hears, so one laptop sharing its
connection becomes the IPv6 default gateway of the whole VLAN. What the ipv6 phase heard is judged
by MAC, the only identity a link-local sender has (its address is derived from the MAC or random):

- `rogue-ra` (router link-local address, MAC): an RA whose MAC (the source link-layer option, else
  the frame's source) is no active record with role router or gateway, critical; an RA from such a
  registered router announcing a prefix outside `[scan] subnets` (the IPv6 prefixes there), high
  (a misconfigured router, not an intruder). Each router's RAs give one finding, with prefixes,
  M/O flags, router lifetime and source in its detail, and `evasion`: the IPv6 extension headers
  its RAs came behind ("hop-by-hop", "fragment", …), the way past a switch's RA Guard (RFC 7113).
- `rogue-dhcp` (server link-local address, MAC) with `"family": 6`: a DHCPv6 server answering our
  SOLICIT whose MAC is no active record with role dhcp-server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from ipguard.model import (
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
        by_router.setdefault((advert.source_ip, advert.source_mac), []).append(advert)
    kind = FindingKind.ROGUE_RA
    found = []
    for (ip, mac), heard in by_router.items():
        roles = ledger.roles_of(mac)
        prefixes = sorted({prefix for advert in heard for prefix in advert.prefixes})
        if not roles & ROUTING_ROLES:
            reason = "lacks role router or gateway"
            severity = severity_of(kind, settings)
        else:
            foreign = [p for p in prefixes if not _inside(p, allowed)]
            if not foreign:
                continue
            reason = f"announces {', '.join(foreign)}, outside [scan] subnets"
            severity = _at_most(severity_of(kind, settings), Severity.HIGH)
        last = heard[-1]
        evasion = sorted({header for advert in heard for header in advert.evasion})
        summary = (
            f"IPv6 router advertisement from {ip} ({mac}) "
            f"announcing {', '.join(prefixes) or 'no prefix'} {reason}"
            + (f", behind {', '.join(evasion)} headers (RA Guard evasion)" if evasion else "")
        )
        records = ledger.active_by_mac.get(mac, [])
        detail: dict[str, Any] = {
            "prefixes": prefixes,
            "managed": any(advert.managed for advert in heard),
            "other": any(advert.other for advert in heard),
            "router_lifetime": last.router_lifetime,
            "source_ip": ip,
            "source_mac": mac,
            "frame_macs": sorted({advert.frame_mac or mac for advert in heard}),
            "adverts": len(heard),
            "reason": reason,
            "registered": [registration(record) for record in records],
            "roles": sorted(role.value for role in roles),
        }
        if evasion:
            detail["evasion"] = evasion
        found.append(Finding(kind, severity, ip, mac, None, summary, detail))
    return found


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
        if Role.DHCP_SERVER in roles:
            continue
        records = ledger.active_by_mac.get(mac, [])
        reason = "lacks role dhcp-server" if records else "is not registered"
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
        found.append(Finding(kind, severity_of(kind, settings), ip, mac, None, summary, detail))
    return found


def _inside(prefix: str, allowed: Sequence[ipaddress.IPv6Network]) -> bool:
    network = ipaddress.IPv6Network(prefix, strict=False)
    return any(network.subnet_of(scope) for scope in allowed)


def _at_most(severity: Severity, ceiling: Severity) -> Severity:
    return _RANKED[min(severity.rank, ceiling.rank)]
