"""Switch ports from the switches' own forwarding tables: wrong-port and unmanaged-switch.

Only polls of devices that answered are judged (a half-read table proves nothing). Ports are named
`SWITCH:IFNAME` as the ledger's `switch_port` reads them (`core-1:Gi1/0/3`, compared ignoring
case and how the interface type is spelled: Gi1/0/3, GigabitEthernet1/0/3 and GE1/0/3 are one
port). A port is an uplink, never an access port, when an LLDP neighbour was announced on it or
it carries more than `uplink_min_macs` MACs; uplinks raise nothing. A logical unit, as Junos learns
MACs on (`ge-0/0/1.0`), stands for its physical port (`ge-0/0/1`), which administrators register
and LLDP announces.

- `wrong-port` (medium): an active record's MAC learnt on an access port other than the record's
  `switch_port` (records without one, or at another site, are not judged). Subject: the record's
  IP, the MAC and the port where it was learnt.
- `unmanaged-switch` (high): an access port with more than `max_macs_per_port` MACs behind it,
  unless the port is registered (`switch_port`) to a device with role switch or access-point.
  The detail lists every MAC behind the port and whom each is registered to. Subject: the port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ipguard.model import Binding, DeviceStatus, Finding, FindingKind, Role, SnmpPoll
from ipguard.policies.base import PolicySettingsLike, RunFacts, registration, severity_of, who
from ipguard.policies.sightings import Sightings

EXEMPT_ROLES = (Role.SWITCH, Role.ACCESS_POINT)
_UNIT = re.compile(r"\.\d+$")  # a logical unit's suffix: ge-0/0/1.0, ae0.100
_IFNAME = re.compile(r"([a-z][a-z-]*?)[\s-]*(\d.*)")  # type, then the numbers: Gi1/0/3
# An interface type as configurations spell it, and as status tables and ifName shorten it
# (Cisco IOS and NX-OS, Huawei VRP, H3C Comware).
_TYPES = {
    "gigabitethernet": ("gi", "g", "ge", "gig"),
    "fastethernet": ("fa", "f", "fe"),
    "tengigabitethernet": ("te", "ten", "tengige", "xge", "xgigabitethernet"),
    "twogigabitethernet": ("tw", "twogige"),
    "fivegigabitethernet": ("fi", "fivegige"),
    "twentyfivegige": ("twe", "25ge"),
    "fortygigabitethernet": ("fo", "fortygige", "40ge"),
    "hundredgige": ("hu", "hundredgigabitethernet", "100ge"),
    "ethernet": ("eth", "et", "e"),
    "port-channel": ("po", "portchannel"),
}
_TYPE_OF = {short: full for full, shorts in _TYPES.items() for short in (full, *shorts)}


def port_key(name: str) -> str:
    """`SWITCH:IFNAME` compared: casefolded, the interface type spelled out (Gi1/0/3 and
    GigabitEthernet1/0/3 are one port)."""
    switch, colon, interface = name.strip().casefold().rpartition(":")
    spelled = _IFNAME.fullmatch(interface.strip())
    if spelled is None or spelled.group(1) not in _TYPE_OF:
        return f"{switch}{colon}{interface.strip()}"
    return f"{switch}{colon}{_TYPE_OF[spelled.group(1)]}{spelled.group(2)}"


def names_of(key: str) -> set[str]:
    """A port's `port_key` and, for a logical unit, its physical port's."""
    key = port_key(key)
    return {key, _UNIT.sub("", key)}


@dataclass
class Port:
    """One switch port as the forwarding tables show it."""

    device: str
    if_name: str
    macs: set[str] = field(default_factory=set)
    vlans: set[int] = field(default_factory=set)
    lldp: bool = False

    @property
    def name(self) -> str:
        """`SWITCH:IFNAME`, as the ledger writes it."""
        return f"{self.device}:{self.if_name}"


def ports(polls: Iterable[SnmpPoll]) -> dict[str, Port]:
    """Every port of the answered polls, keyed by casefolded `SWITCH:IFNAME`."""
    found: dict[str, Port] = {}

    def port(device: str, if_name: str) -> Port:
        key = port_key(f"{device}:{if_name}")  # one port, as FDB and LLDP may spell it
        if key not in found:
            found[key] = Port(device, if_name)
        return found[key]

    for poll in polls:
        if not poll.answered:
            continue
        for entry in poll.fdb:
            learnt = port(poll.device, entry.if_name)
            learnt.macs.add(entry.mac)
            if entry.vlan is not None:
                learnt.vlans.add(entry.vlan)
        for neighbour in poll.lldp:
            port(poll.device, neighbour.local_if_name).lldp = True
    announced = {key for key, found_port in found.items() if found_port.lldp}
    for key, found_port in found.items():
        found_port.lldp = found_port.lldp or bool(names_of(key) & announced)
    return found


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every wrong-port and unmanaged-switch finding of the run."""
    if not facts.snmp:
        return []
    every = ports(facts.snmp)
    access = {
        key: port
        for key, port in every.items()
        if not port.lldp and len(port.macs) <= settings.uplink_min_macs
    }
    records = [
        record
        for record in facts.ledger
        if record.status is DeviceStatus.ACTIVE and (not record.site or record.site == facts.site)
    ]
    by_mac: dict[str, list[Binding]] = {}
    owners: dict[str, list[Binding]] = {}  # by any of its MACs: whom a MAC behind a hub is
    for record in records:
        # Its own MAC only: a bond's other NICs (alt_macs) sit on other ports than the record's.
        by_mac.setdefault(record.mac, []).append(record)
        for mac in record.macs:
            owners.setdefault(mac, []).append(record)
    return [
        *_wrong_ports(access, by_mac, settings),
        *_unmanaged(access, records, owners, settings),
    ]


def _wrong_ports(
    access: Mapping[str, Port], by_mac: Mapping[str, list[Binding]], settings: PolicySettingsLike
) -> list[Finding]:
    found = []
    for key, port in sorted(access.items()):
        for mac in sorted(port.macs):
            registered = [record for record in by_mac.get(mac, ()) if record.switch_port.strip()]
            if not registered or any(
                port_key(record.switch_port) in names_of(key) for record in registered
            ):
                continue
            record = registered[0]
            found.append(
                Finding(
                    kind=FindingKind.WRONG_PORT,
                    severity=severity_of(FindingKind.WRONG_PORT, settings),
                    ip=record.ip,
                    mac=mac,
                    port=port.name,
                    summary=(
                        f"{mac} ({who(record)}) is registered to switch port "
                        f"{record.switch_port.strip()} but was learnt on {port.name}"
                    ),
                    detail={
                        "device": port.device,
                        "learnt_on": port.name,
                        "registered_port": record.switch_port.strip(),
                        "vlans": sorted(port.vlans),
                        "registration": registration(record),
                    },
                )
            )
    return found


def _unmanaged(
    access: Mapping[str, Port],
    records: list[Binding],
    by_mac: Mapping[str, list[Binding]],
    settings: PolicySettingsLike,
) -> list[Finding]:
    exempt = {
        port_key(record.switch_port)
        for record in records
        if record.switch_port.strip() and record.has_role(*EXEMPT_ROLES)
    }
    found = []
    for key, port in sorted(access.items()):
        if len(port.macs) <= settings.max_macs_per_port or names_of(key) & exempt:
            continue
        behind = [
            {
                "mac": mac,
                "registered_to": [registration(record) for record in by_mac.get(mac, ())],
            }
            for mac in sorted(port.macs)
        ]
        found.append(
            Finding(
                kind=FindingKind.UNMANAGED_SWITCH,
                severity=severity_of(FindingKind.UNMANAGED_SWITCH, settings),
                ip=None,
                mac=None,
                port=port.name,
                summary=(
                    f"{len(port.macs)} MACs behind access port {port.name} (at most "
                    f"{settings.max_macs_per_port} allowed): a private hub or switch"
                ),
                detail={
                    "device": port.device,
                    "port": port.name,
                    "macs": behind,
                    "vlans": sorted(port.vlans),
                    "max_macs_per_port": settings.max_macs_per_port,
                },
            )
        )
    return found
