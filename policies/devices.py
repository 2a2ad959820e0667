"""Devices nobody may connect without approval: open-proxy, rogue-dhcp, rogue-router, rogue-ap.

These judge any host, registered or not: an unregistered host that also relays, serves DHCP or
routes gets both findings, because each is a separate breach of the rules. A device's roles are
those of every active record of its MAC (`Sightings.host`, `LedgerIndex.roles_of`).

- `open-proxy` (ip, MAC, "tcp/3128"): a `ProxyVerdict` with `relays` on a host without role proxy;
  one finding per (ip, port), listing every method that relayed.
- `rogue-dhcp` (server ip, server MAC): offers (or a watcher's ACKs and NAKs: `naks` counts
  the clients refused) from a server that is not an active record with role
  dhcp-server; one finding per (server ip, server MAC). The offer must come from the registered MAC
  of the server's IP, or from a registered router/gateway MAC (an offer relayed by a DHCP relay
  agent carries the router's MAC). Its detail keeps how long each offer took
  (`seconds_to_offer`, seconds after the probe's first DISCOVER).
- `rogue-router` / `rogue-ap` (ip, MAC): enough evidence pointing at a router (without role router
  or gateway) or at an access point (without role access-point). Enough means one strong sign
  (forwarding, icmp-redirect, upnp-igd, ssdp-ap, nat) or at least two distinct weak ones (ttl,
  http-title, vendor, mac-adjacency; a kind this module does not know counts as weak). A vendor
  OUI or a neighbouring MAC alone proves nothing: plenty of ordinary hosts have both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ipguard.model import DhcpOffer, Evidence, Finding, FindingKind, ProxyVerdict, Role
from ipguard.policies.base import PolicySettingsLike, RunFacts, registration, severity_of
from ipguard.policies.sightings import Sightings

STRONG_EVIDENCE = frozenset({"forwarding", "icmp-redirect", "upnp-igd", "ssdp-ap", "nat"})
WEAK_EVIDENCE = frozenset({"ttl", "http-title", "vendor", "mac-adjacency"})

_POINTS_TO: dict[str, tuple[FindingKind, frozenset[Role], str]] = {
    "router": (
        FindingKind.ROGUE_ROUTER,
        frozenset({Role.ROUTER, Role.GATEWAY}),
        "a router",
    ),
    "access-point": (
        FindingKind.ROGUE_AP,
        frozenset({Role.ACCESS_POINT}),
        "a wireless access point",
    ),
}


def is_convincing(kinds: Iterable[str]) -> bool:
    """One strong kind of evidence, or two distinct weak ones."""
    distinct = set(kinds)
    return bool(distinct & STRONG_EVIDENCE) or len(distinct - STRONG_EVIDENCE) >= 2


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every open-proxy, rogue-dhcp, rogue-router and rogue-ap finding of the run."""
    return [
        *_open_proxies(facts.proxies, settings, seen),
        *_rogue_dhcp(facts.dhcp_offers, settings, seen),
        *_rogue_routers_and_aps(facts.evidence, settings, seen),
    ]


def _open_proxies(
    verdicts: Iterable[ProxyVerdict], settings: PolicySettingsLike, seen: Sightings
) -> list[Finding]:
    by_port: dict[tuple[str, int], list[ProxyVerdict]] = {}
    for verdict in verdicts:
        by_port.setdefault((verdict.ip, verdict.port), []).append(verdict)
    found = []
    kind = FindingKind.OPEN_PROXY
    for (ip, port), tries in by_port.items():
        methods = sorted({verdict.method for verdict in tries if verdict.relays})
        if not methods:
            continue
        host = seen.host(ip)
        if Role.PROXY in host.roles:
            continue
        summary = (
            f"{ip} ({seen.label(host)}) relayed a connection on tcp/{port} "
            f"({', '.join(methods)}) but lacks role proxy"
        )
        detail = {
            "methods": methods,
            "attempts": [
                {"method": verdict.method, "relays": verdict.relays, "detail": verdict.detail}
                for verdict in tries
            ],
            "registered": None if host.record is None else registration(host.record),
            "roles": sorted(role.value for role in host.roles),
        }
        found.append(
            Finding(kind, severity_of(kind, settings), ip, host.mac, f"tcp/{port}", summary, detail)
        )
    return found


def _rogue_dhcp(
    offers: Iterable[DhcpOffer], settings: PolicySettingsLike, seen: Sightings
) -> list[Finding]:
    by_server: dict[tuple[str, str | None], list[DhcpOffer]] = {}
    for offer in offers:
        by_server.setdefault((offer.server_ip, offer.server_mac or None), []).append(offer)
    ledger = seen.ledger
    found = []
    kind = FindingKind.ROGUE_DHCP
    for (ip, mac), server_offers in by_server.items():
        record = ledger.active_by_ip.get(ip)
        if record is None:
            reason = "is not registered"
        elif mac not in record.macs and mac not in ledger.router_macs:
            reason = f"is registered to {record.mac}, not to {mac or 'an unknown MAC'}"
        elif Role.DHCP_SERVER not in ledger.roles_of(record.mac):
            reason = "lacks role dhcp-server"
        else:
            continue
        # A NAK, or an ACK to a DHCPINFORM, carries no address ("0.0.0.0"): nothing offered.
        offered = sorted({o.offered_ip for o in server_offers if o.offered_ip != "0.0.0.0"})
        refused = sum(1 for offer in server_offers if offer.message == "nak")
        # How long the server took to offer (from our first DISCOVER): ping-checking servers ~3 s.
        latencies = sorted(o.latency for o in server_offers if o.latency is not None)
        after = f" after {latencies[0]:.1f} s" if latencies else ""
        said = [f"offered {', '.join(offered)}{after}"] if offered else []
        if refused:
            said.append(f"refused {refused} client request{'s' if refused != 1 else ''} (DHCPNAK)")
        summary = (
            f"DHCP server {ip} ({mac or 'MAC unknown'}) "
            f"{', '.join(said) or 'answered a client'} and {reason}"
        )
        detail: dict[str, Any] = {
            "offered_ips": offered,
            "routers": sorted({offer.router for offer in server_offers if offer.router}),
            "dns": sorted({dns for offer in server_offers for dns in offer.dns}),
            "offers": len(server_offers),
            "reason": reason,
            "registered": None if record is None else registration(record),
        }
        if latencies:  # offers read back from a stored run have none
            detail["seconds_to_offer"] = latencies
        if refused:
            detail["naks"] = refused
        found.append(Finding(kind, severity_of(kind, settings), ip, mac, None, summary, detail))
    return found


def _rogue_routers_and_aps(
    evidence: Iterable[Evidence], settings: PolicySettingsLike, seen: Sightings
) -> list[Finding]:
    by_host: dict[tuple[str, str], list[Evidence]] = {}
    for item in evidence:
        if item.points_to in _POINTS_TO:
            by_host.setdefault((item.ip, item.points_to), []).append(item)
    found = []
    for (ip, points_to), items in by_host.items():
        kinds = sorted({item.kind for item in items})
        if not is_convincing(kinds):
            continue
        kind, allowed, what = _POINTS_TO[points_to]
        host = seen.host(ip)
        macs = sorted({item.mac for item in items if item.mac})
        mac = macs[0] if macs else host.mac
        roles = seen.ledger.roles_of(mac) if macs else host.roles
        if roles & allowed:
            continue
        needed = " or ".join(sorted(role.value for role in allowed))
        summary = (
            f"{ip} ({seen.label(host)}) shows signs of {what} ({', '.join(kinds)}) "
            f"but lacks role {needed}"
        )
        detail = {
            "points_to": points_to,
            "evidence": [
                {
                    "kind": item.kind,
                    "strength": "strong" if item.kind in STRONG_EVIDENCE else "weak",
                    "detail": item.detail,
                    "mac": item.mac,
                }
                for item in items
            ],
            "rule": "one strong sign, or two distinct weak ones",
            "registered": None if host.record is None else registration(host.record),
            "roles": sorted(role.value for role in roles),
        }
        found.append(Finding(kind, severity_of(kind, settings), ip, mac, None, summary, detail))
    return found
