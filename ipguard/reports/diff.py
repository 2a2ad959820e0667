"""What changed between two runs: hosts, addresses, services and names."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipguard.addresses import ip_sort_key
from ipguard.model import Phase, ScanResult


@dataclass
class RunDiff:
    """Differences from an older run A to a newer run B."""

    appeared: list[dict[str, Any]] = field(default_factory=list)
    disappeared: list[dict[str, Any]] = field(default_factory=list)
    ip_changed: list[dict[str, Any]] = field(default_factory=list)
    mac_changed: list[dict[str, Any]] = field(default_factory=list)
    services_opened: list[dict[str, Any]] = field(default_factory=list)
    services_closed: list[dict[str, Any]] = field(default_factory=list)
    names_changed: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, list[dict[str, Any]]]:
        """Every section, in a fixed order."""
        return {
            "appeared": self.appeared,
            "disappeared": self.disappeared,
            "ip_changed": self.ip_changed,
            "mac_changed": self.mac_changed,
            "services_opened": self.services_opened,
            "services_closed": self.services_closed,
            "names_changed": self.names_changed,
        }

    @property
    def empty(self) -> bool:
        """Nothing changed."""
        return not any(self.as_json().values())


def _pairs(result: ScanResult) -> set[tuple[str, str]]:
    return {(seen.ip, seen.mac or "") for seen in result.observations}


def _services(result: ScanResult) -> dict[tuple[str, str], str]:
    return {
        (item.ip, f"{item.proto}/{item.port}"): " ".join(
            part for part in (item.service, item.product, item.version) if part
        )
        for item in result.services
    }


def _names(result: ScanResult) -> dict[str, set[str]]:
    names: dict[str, set[str]] = defaultdict(set)
    for item in result.names:
        names[item.ip].add(item.name)
    return names


def _by_address(pair: tuple[str, str]) -> tuple[tuple[int, int, str], str]:
    """IPv4 before IPv6, numerically within each, then by MAC."""
    return ip_sort_key(pair[0]), pair[1] or ""


def _by_port(pair: tuple[str, str]) -> tuple[tuple[int, int, str], str, int]:
    """By address, then protocol, then port number (tcp/22 before tcp/1080)."""
    proto, _, port = pair[1].partition("/")
    return ip_sort_key(pair[0]), proto, int(port) if port.isdigit() else 0


def _looked_at_by_both(
    older: ScanResult, newer: ScanResult, subnets: tuple[Sequence[str], Sequence[str]]
) -> Callable[[str], bool]:
    """Whether both runs looked for an address: inside both runs' subnets, or (IPv6) both ran
    the ipv6 phase, which listens to the whole link. Runs without subnets restrict nothing."""
    both = [[ipaddress.ip_network(subnet) for subnet in side] for side in subnets]
    listened = Phase.IPV6 in older.phases & newer.phases

    def looked(ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        if address.version == 6 and listened:
            return True
        return all(not side or any(address in net for net in side) for side in both)

    return looked


def diff_results(
    older: ScanResult,
    newer: ScanResult,
    subnets: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> RunDiff:
    """Compare two runs' sightings, of the addresses both looked at (`subnets`: each run's).

    A MAC seen at a new IP is an IP change (a move), not a disappearance plus an appearance; an IP
    answering from a new MAC is a MAC change. Services and names are compared only for hosts both
    runs saw with the phase that collects them. A host outside the other run's subnets (a run of
    part of the site, `scan --subnet`) did not disappear or appear: nobody looked for it.
    """
    diff = RunDiff()
    looked = _looked_at_by_both(older, newer, subnets)
    before = {pair for pair in _pairs(older) if looked(pair[0])}
    after = {pair for pair in _pairs(newer) if looked(pair[0])}
    gone, new = before - after, after - before
    # A move stays within one address family: a dual-stack host that gains an IPv6 address kept
    # its IPv4 one, and a privacy address replacing another is the IPv6 move.
    ips_by_mac_before: dict[tuple[str, bool], set[str]] = defaultdict(set)
    ips_by_mac_after: dict[tuple[str, bool], set[str]] = defaultdict(set)
    for ip, mac in gone:
        ips_by_mac_before[(mac, ":" in ip)].add(ip)
    for ip, mac in new:
        ips_by_mac_after[(mac, ":" in ip)].add(ip)
    moved = {key for key in ips_by_mac_before if key[0] and key in ips_by_mac_after}
    for key in sorted(moved):
        diff.ip_changed.append(
            {
                "mac": key[0],
                "from": sorted(ips_by_mac_before[key], key=ip_sort_key),
                "to": sorted(ips_by_mac_after[key], key=ip_sort_key),
            }
        )
    gone = {(ip, mac) for ip, mac in gone if (mac, ":" in ip) not in moved}
    new = {(ip, mac) for ip, mac in new if (mac, ":" in ip) not in moved}
    macs_by_ip_before = {ip: mac for ip, mac in gone}
    rebound = {ip for ip, _ in new if ip in macs_by_ip_before}
    for ip, mac in sorted(new, key=_by_address):
        if ip in rebound:
            diff.mac_changed.append({"ip": ip, "from": macs_by_ip_before[ip], "to": mac})
        else:
            diff.appeared.append({"ip": ip, "mac": mac or None})
    for ip, mac in sorted(gone, key=_by_address):
        if ip not in rebound:
            diff.disappeared.append({"ip": ip, "mac": mac or None})

    both = {ip for ip, _ in before} & {ip for ip, _ in after}
    if Phase.SERVICES in older.phases & newer.phases:
        _compare_services(diff, older, newer, both)
    if Phase.NAMES in older.phases & newer.phases:
        _compare_names(diff, older, newer, both)
    return diff


def _compare_services(diff: RunDiff, older: ScanResult, newer: ScanResult, both: set[str]) -> None:
    old_services, new_services = _services(older), _services(newer)
    for ip, port in sorted(set(new_services) - set(old_services), key=_by_port):
        if ip in both:
            diff.services_opened.append(
                {"ip": ip, "port": port, "service": new_services[(ip, port)]}
            )
    for ip, port in sorted(set(old_services) - set(new_services), key=_by_port):
        if ip in both:
            diff.services_closed.append(
                {"ip": ip, "port": port, "service": old_services[(ip, port)]}
            )


def _compare_names(diff: RunDiff, older: ScanResult, newer: ScanResult, both: set[str]) -> None:
    old_names, new_names = _names(older), _names(newer)
    for ip in sorted(both, key=ip_sort_key):
        if ip in old_names and ip in new_names and old_names[ip] != new_names[ip]:
            diff.names_changed.append(
                {"ip": ip, "from": sorted(old_names[ip]), "to": sorted(new_names[ip])}
            )
