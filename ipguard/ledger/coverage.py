"""Which findings a run could have seen, and so may resolve when it did not see them again.

A finding is covered by a complete run when its address lies inside the run's subnets and the
phase that detects its kind ran; a finding about a host's ports, names or signs also needs the
host to have answered the sweep (those phases look at nobody else); one raised from an SNMP
device's data alone needs that device to have been polled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ipguard.ledger.scan_tables import FindingRow
from ipguard.model import FindingKind, ObservationSource, Phase, ScanResult

# The phase whose absence of a sighting proves a finding is gone.
DETECTED_BY: Mapping[FindingKind, Phase] = {
    FindingKind.UNEXPECTED_SERVICE: Phase.SERVICES,
    FindingKind.OPEN_PROXY: Phase.PROXY,
    FindingKind.ROGUE_DHCP: Phase.DHCP,
    FindingKind.HOSTNAME_POLICY: Phase.NAMES,
    FindingKind.ROGUE_ROUTER: Phase.EVIDENCE,
    FindingKind.ROGUE_AP: Phase.EVIDENCE,
    FindingKind.WRONG_PORT: Phase.SNMP,
    FindingKind.UNMANAGED_SWITCH: Phase.SNMP,
    FindingKind.ROGUE_RA: Phase.IPV6,
}
# Phases that look only at the hosts that answered the sweep: absent from them, a host's ports,
# names and signs were not looked at, so its findings of these phases stand.
PER_HOST = frozenset({Phase.SERVICES, Phase.PROXY, Phase.NAMES, Phase.EVIDENCE})
SNMP_SOURCE = ObservationSource.SNMP_ARP.value  # read from a router's ARP table
# Findings about a registered device answering, judged only when it answers: a night without it
# proves nothing about them.
BY_DEVICE = frozenset({FindingKind.OUT_OF_POOL.value})


@dataclass(frozen=True)
class Answered:
    """Who answered a run's sweep: the hosts its per-host phases looked at, and their MACs.

    A finding about a host's ports, names or signs (or its registration, out-of-pool) stands
    unless its host was looked at: its address answered, or its MAC did at another address (the
    device moved, and what it has there is judged there).
    """

    ips: frozenset[str]
    macs: frozenset[str]

    @classmethod
    def of(cls, result: ScanResult) -> Answered:
        """The hosts of a run's result that answered its sweep (`ScanResult.live_hosts`)."""
        ips = result.live_hosts
        macs = frozenset(o.mac for o in result.observations if o.mac and o.ip in ips)
        return cls(ips, macs)

    def holds(self, row: FindingRow) -> bool:
        """Whether the finding's host answered."""
        return row.ip in self.ips or (row.mac is not None and row.mac in self.macs)


# Findings about a record, whose subject is the record's own address wherever its device answered
# (`detail.seen_at`): a run must have looked there to say the device is gone.
BY_RECORD = frozenset(
    kind.value
    for kind in (
        FindingKind.SUSPENDED_DEVICE_ONLINE,
        FindingKind.ISOLATED_DEVICE_ONLINE,
        FindingKind.GUEST_EXPIRED,
    )
)


def covered(
    row: FindingRow,
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    phases: frozenset[Phase],
    partial_hosts: frozenset[str],
    snmp_polled: frozenset[str] = frozenset(),
    answered: Answered | None = None,
    same_link: bool | None = None,
) -> bool:
    """True when a complete run with these subnets, phases and hosts could have seen the finding
    (`answered` None: every host in the subnets answered). `same_link`: whether the run listened on
    the link where a DHCP server or router advertisement was last heard (None: not known); only
    such a run covers it, at any address."""
    devices = snmp_devices(row)
    if devices is not None:
        if Phase.SNMP not in phases or not devices & snmp_polled:
            return False
        # A router's ARP entry counts only inside the run's subnets; a switch port anywhere.
        return (
            row.ip is None
            or DETECTED_BY.get(FindingKind(row.kind)) is Phase.SNMP
            or bool(_switch_ports(row))
            or _in(row.ip, networks)
        )
    needed = DETECTED_BY.get(FindingKind(row.kind), Phase.SWEEP)
    if (row.detail or {}).get("family") == 6:  # a DHCPv6 server: heard by the ipv6 phase
        needed = Phase.IPV6
    host_bound = needed in PER_HOST or row.kind in BY_DEVICE
    if host_bound and answered is not None and not answered.holds(row):
        return False
    if row.kind in BY_RECORD:
        seen_at = (row.detail or {}).get("seen_at")
        if isinstance(seen_at, list) and seen_at:
            # Where the device answered, not its record's address, is where a run must look.
            return all(isinstance(ip, str) and _swept(ip, networks, phases) for ip in seen_at)
    if needed is Phase.SWEEP and row.ip is not None:
        return _swept(row.ip, networks, phases)
    if needed not in phases:
        return False
    if needed in (Phase.DHCP, Phase.IPV6) and same_link is not None:
        return same_link  # heard on one link, by a run that listened there
    if needed is Phase.IPV6:  # link-local senders: the run listened to the whole link
        return True
    if needed in (Phase.SERVICES, Phase.PROXY) and row.ip in partial_hosts:
        return False
    if row.ip is None:
        return True
    return _in(row.ip, networks)


def _swept(
    ip: str,
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    phases: frozenset[Phase],
) -> bool:
    """Whether the run looked for hosts at `ip`: an IPv4 address by the sweep, an IPv6 one by the
    ipv6 phase's discovery (a link-local one anywhere on the link)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6:
        return Phase.IPV6 in phases and (address.is_link_local or _in(ip, networks))
    return Phase.SWEEP in phases and _in(ip, networks)


def _in(ip: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def snmp_devices(row: FindingRow) -> set[str] | None:
    """The SNMP devices whose data alone raised a finding, or None when other phases saw it too.

    wrong-port and unmanaged-switch come from one switch (`detail.device`), and so does an
    isolated device that only switches learnt (`detail.learnt_on`, nothing `observed`); a binding
    finding comes from routers when every observation in its last evidence is an `snmp-arp` one.
    """
    if row.kind in (FindingKind.WRONG_PORT.value, FindingKind.UNMANAGED_SWITCH.value):
        device = (row.detail or {}).get("device")
        return {device} if isinstance(device, str) else set()
    ports = _switch_ports(row)
    if ports:
        return {port.get("device") or "" for port in ports}
    last = (row.evidence or {}).get("last") or {}
    seen = [
        item
        for item in last.get("observations") or []
        if row.mac is None or item.get("mac") == row.mac  # what raised this very pair
    ]
    if not seen or any(item.get("source") != SNMP_SOURCE for item in seen):
        return None
    return {item.get("device") or "" for item in seen}


def _switch_ports(row: FindingRow) -> list[dict[str, Any]]:
    """The switch ports an isolated device was learnt on, when nothing else saw it."""
    detail = row.detail or {}
    if row.kind != FindingKind.ISOLATED_DEVICE_ONLINE.value or detail.get("observed"):
        return []
    ports = detail.get("learnt_on")
    return [port for port in ports if isinstance(port, dict)] if isinstance(ports, list) else []
