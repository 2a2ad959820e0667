"""What changed between two runs: hosts, addresses, services and names."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

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


def diff_results(older: ScanResult, newer: ScanResult) -> RunDiff:
    """Compare two runs' sightings.

    A MAC seen at a new IP is an IP change (a move), not a disappearance plus an appearance; an IP
    answering from a new MAC is a MAC change. Services and names are compared only for hosts both
    runs saw with the phase that collects them.
    """
    diff = RunDiff()
    before, after = _pairs(older), _pairs(newer)
    gone, new = before - after, after - before
    ips_by_mac_before: dict[str, set[str]] = defaultdict(set)
    ips_by_mac_after: dict[str, set[str]] = defaultdict(set)
    for ip, mac in gone:
        ips_by_mac_before[mac].add(ip)
    for ip, mac in new:
        ips_by_mac_after[mac].add(ip)
    moved = {mac for mac in ips_by_mac_before if mac and mac in ips_by_mac_after}
    for mac in sorted(moved):
        diff.ip_changed.append(
            {
                "mac": mac,
                "from": sorted(ips_by_mac_before[mac]),
                "to": sorted(ips_by_mac_after[mac]),
            }
        )
    gone = {(ip, mac) for ip, mac in gone if mac not in moved}
    new = {(ip, mac) for ip, mac in new if mac not in moved}
    macs_by_ip_before = {ip: mac for ip, mac in gone}
    rebound = {ip for ip, _ in new if ip in macs_by_ip_before}
    for ip, mac in sorted(new):
        if ip in rebound:
            diff.mac_changed.append({"ip": ip, "from": macs_by_ip_before[ip], "to": mac})
        else:
            diff.appeared.append({"ip": ip, "mac": mac or None})
    for ip, mac in sorted(gone):
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
    for ip, port in sorted(set(new_services) - set(old_services)):
        if ip in both:
            diff.services_opened.append(
                {"ip": ip, "port": port, "service": new_services[(ip, port)]}
            )
    for ip, port in sorted(set(old_services) - set(new_services)):
        if ip in both:
            diff.services_closed.append(
                {"ip": ip, "port": port, "service": old_services[(ip, port)]}
            )


def _compare_names(diff: RunDiff, older: ScanResult, newer: ScanResult, both: set[str]) -> None:
    old_names, new_names = _names(older), _names(newer)
    for ip in sorted(both):
        if ip in old_names and ip in new_names and old_names[ip] != new_names[ip]:
            diff.names_changed.append(
                {"ip": ip, "from": sorted(old_names[ip]), "to": sorted(new_names[ip])}
            )
