"""What a watcher remembers of its IPv6 neighbours between frames, bounded.

Two things a single Neighbor Advertisement cannot say by itself:

- Which address is a host's stable one. A host holds several IPv6 addresses and takes a new
  temporary one every day (RFC 8981), so the claims of a MAC that is no active record here
  (unregistered-host, mac-moved) are folded as a scan folds them, one finding per MAC: each IPv6
  claim is judged beside the MAC's stable address, the subject of its open finding of those kinds
  (the scan's IPv4 or link-local address, or the first address the watcher reported it at), else
  its link-local address when it claimed one (heard even where link-local claims are not judged:
  a watcher whose subnets hold no IPv6 prefix).
- Which link-local address is a registered router's. Hosts reach their default router at the
  link-local address its Router Advertisements come from, so an NA claiming that address from
  another MAC (THC-IPv6's parasite6 or fake_advertise6, the IPv6 form of ARP spoofing the
  gateway) takes the whole link's traffic. The ledger cannot hold link-local addresses (every
  router has fe80::1 on every VLAN), so the watcher learns them from the RAs of registered
  routers (link-layer option and frame from the router's MAC) and judges the address as one of
  that router's records' addresses: another MAC claiming it is ip-mac-mismatch, critical.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ipguard.model import Binding, FindingKind, Observation, ObservationSource, RouterAdvert
from ipguard.policies import LedgerIndex
from ipguard.policies.base import ROUTING_ROLES
from ipguard.policies.ipv6 import with_router_addresses

MAX_REMEMBERED = 65_536  # MACs whose stable address is remembered, per kind of memory
MAX_ROUTER_ADDRESSES = 4  # link-local addresses learned per router MAC (a spoofed RA adds few)
MAX_ROUTERS = 1_024
# What a MAC with no active record here is reported as: one finding per MAC, its IPv6 folded in.
FOLDED_KINDS = frozenset({FindingKind.UNREGISTERED_HOST.value, FindingKind.MAC_MOVED.value})


class Neighbours:
    """The stable address of each MAC, and the link-local addresses of registered routers."""

    def __init__(self) -> None:
        self.routers: dict[str, str] = {}  # a router's link-local address -> its MAC
        self._reported_at: dict[str, str] = {}  # MAC -> the address its open finding is at
        self._link_local: dict[str, str] = {}  # MAC -> the link-local address an NA claimed

    def reported(self, findings: Iterable[tuple[str, str]], *, afresh: bool = False) -> None:
        """Open findings, as (kind, subject): where each MAC's unregistered-host or mac-moved
        is (IPv4 first, then link-local, then the first address known)."""
        remembered = self._reported_at
        if afresh:
            remembered.clear()
        for kind, subject in findings:
            ip, _, rest = subject.partition("|")
            mac = rest.partition("|")[0]
            if kind not in FOLDED_KINDS or not ip or not mac:
                continue
            known = remembered.get(mac)
            if known is None or _stability(ip) < _stability(known):
                if known is None and len(remembered) >= MAX_REMEMBERED:
                    remembered.clear()
                remembered[mac] = ip

    def heard(self, ip: str, mac: str) -> None:
        """A claim outside the subnets of ``ip`` for ``mac``: kept if it is link-local."""
        if ":" in ip and _stability(ip) == 1:
            if len(self._link_local) >= MAX_REMEMBERED:
                self._link_local.clear()
            self._link_local[mac] = ip

    def anchored(
        self, claims: tuple[Observation, ...], index: LedgerIndex
    ) -> tuple[Observation, ...]:
        """The stable address of each MAC that claimed an IPv6 address and is no active record
        here, to judge first beside its claims so that the policies fold them into it (not to
        store: it was not heard now)."""
        taken = {claim.ip for claim in claims}
        anchors: dict[str, Observation] = {}
        for claim in claims:
            mac = claim.mac
            if ":" not in claim.ip or not mac or mac in index.active_by_mac:
                continue
            anchor = self._reported_at.get(mac) or self._link_local.get(mac)
            if anchor and anchor not in taken and anchor not in anchors:
                source = ObservationSource.NDP if ":" in anchor else ObservationSource.ARP
                anchors[anchor] = Observation(anchor, mac, claim.seen_at, source)
        return tuple(anchors.values())

    def learn_router(self, advert: RouterAdvert, index: LedgerIndex) -> bool:
        """Remember the link-local address a registered router advertises from; True when new."""
        ip, mac = advert.source_ip, advert.source_mac
        if ip in self.routers or (advert.frame_mac and advert.frame_mac != mac):
            return False
        if not index.roles_of(mac) & ROUTING_ROLES or not is_link_local(ip):
            return False
        if len(self.routers) >= MAX_ROUTERS:
            return False
        if sum(known == mac for known in self.routers.values()) >= MAX_ROUTER_ADDRESSES:
            return False
        self.routers[ip] = mac
        return True

    def with_routers(self, ledger: tuple[Binding, ...], site: str) -> tuple[Binding, ...]:
        """The ledger with each learned link-local address among its router's addresses."""
        return with_router_addresses(ledger, self.routers, site)


def _stability(ip: str) -> int:
    """How long a host keeps an address, as a rank: 0 IPv4, 1 IPv6 link-local, 2 any other IPv6
    (a temporary address lasts a day)."""
    if ":" not in ip:
        return 0
    return 1 if is_link_local(ip) else 2


def is_link_local(ip: str) -> bool:
    """True for an IPv6 link-local address (fe80::/10); False for anything else."""
    if ":" not in ip:
        return False
    try:
        return ipaddress.IPv6Address(ip).is_link_local
    except ValueError:
        return False
