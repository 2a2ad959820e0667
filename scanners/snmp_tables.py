"""What a switch's or router's MIB tables mean: walked columns in, ARP, FDB and LLDP rows out.

Pure functions of the walked `(OID, value)` pairs, so that every vendor's layout is tested from
recorded walks (tests/scanners/snmp_walks/). Vendors fill these MIBs differently:

- ARP: IP-MIB ipNetToPhysicalTable (RFC 4293), or only the deprecated ipNetToMediaTable (older
  Cisco IOS, D-Link, ZTE); some agents leave the InetAddress length out of the index.
- FDB: Q-BRIDGE-MIB dot1qTpFdbTable indexed by FID (VLAN-aware switches: HPE, Huawei, H3C,
  Ruijie), or only BRIDGE-MIB dot1dTpFdbTable (older D-Link; Cisco per VLAN through
  community@VLAN). A FID is mapped to its VLAN through dot1qVlanFdbId where the agent fills it.
  Some Huawei firmware fills neither: its learnt MACs are in HUAWEI-L2MAM-MIB hwDynFdbTable.
- Ports: a bridge port is mapped to an ifIndex by dot1dBasePortIfIndex; agents that leave that
  empty (some Huawei and H3C firmware) number bridge ports by ifIndex. Names come from IF-MIB
  ifName, or ifDescr where ifName is missing.
Rows whose status says invalid (or, for an ARP entry, incomplete) are left out.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ipguard.model import ArpEntry, FdbEntry, LldpNeighbour, SnmpSystem
from ipguard.scanners.snmp_ber import Oid, oid_text, parse_oid

SYSTEM = {
    "sys_descr": parse_oid("1.3.6.1.2.1.1.1.0"),
    "sys_object_id": parse_oid("1.3.6.1.2.1.1.2.0"),
    "uptime": parse_oid("1.3.6.1.2.1.1.3.0"),
    "sys_name": parse_oid("1.3.6.1.2.1.1.5.0"),
}
# The columns a poll walks, by name. Order matters only for reading walks in tests.
COLUMNS: dict[str, Oid] = {
    name: parse_oid(text)
    for name, text in {
        "ifDescr": "1.3.6.1.2.1.2.2.1.2",
        "ifName": "1.3.6.1.2.1.31.1.1.1.1",
        "ipNetToPhysicalPhysAddress": "1.3.6.1.2.1.4.35.1.4",
        "ipNetToPhysicalType": "1.3.6.1.2.1.4.35.1.6",
        "ipNetToPhysicalState": "1.3.6.1.2.1.4.35.1.7",
        "ipNetToMediaPhysAddress": "1.3.6.1.2.1.4.22.1.2",
        "ipNetToMediaType": "1.3.6.1.2.1.4.22.1.4",
        "dot1dBasePortIfIndex": "1.3.6.1.2.1.17.1.4.1.2",
        "dot1dTpFdbPort": "1.3.6.1.2.1.17.4.3.1.2",
        "dot1dTpFdbStatus": "1.3.6.1.2.1.17.4.3.1.3",
        "dot1qTpFdbPort": "1.3.6.1.2.1.17.7.1.2.2.1.2",
        "dot1qTpFdbStatus": "1.3.6.1.2.1.17.7.1.2.2.1.3",
        "dot1qVlanFdbId": "1.3.6.1.2.1.17.7.1.4.2.1.3",
        "lldpLocPortIdSubtype": "1.0.8802.1.1.2.1.3.7.1.2",
        "lldpLocPortId": "1.0.8802.1.1.2.1.3.7.1.3",
        "lldpLocPortDesc": "1.0.8802.1.1.2.1.3.7.1.4",
        "lldpRemChassisIdSubtype": "1.0.8802.1.1.2.1.4.1.1.4",
        "lldpRemChassisId": "1.0.8802.1.1.2.1.4.1.1.5",
        "lldpRemPortIdSubtype": "1.0.8802.1.1.2.1.4.1.1.6",
        "lldpRemPortId": "1.0.8802.1.1.2.1.4.1.1.7",
        "lldpRemSysName": "1.0.8802.1.1.2.1.4.1.1.9",
        "vtpVlanState": "1.3.6.1.4.1.9.9.46.1.3.1.1.2",
        "hwDynFdbPort": "1.3.6.1.4.1.2011.5.25.42.2.1.3.1.4",
    }.items()
}
ARP_INVALID_TYPE = 2  # ipNetToPhysicalType / ipNetToMediaType invalid(2)
_ADDRESS_SIZES = {1: 4, 2: 16}  # InetAddressType ipv4(1), ipv6(2): octets
ARP_DEAD_STATES = frozenset({5, 7})  # ipNetToPhysicalState invalid(5), incomplete(7)
FDB_SKIPPED_STATUS = frozenset({2, 4})  # invalid(2), self(4): the switch's own addresses
LLDP_MAC_SUBTYPES = {"chassis": 4, "port": 3}  # macAddress(4) for chassis IDs, (3) for port IDs

Walked = Mapping[str, list[tuple[Oid, Any]]]


def column(walked: Walked, name: str) -> dict[Oid, Any]:
    """A walked column as {index: value}, the index being the OID after the column's."""
    depth = len(COLUMNS[name])
    return {oid[depth:]: value for oid, value in walked.get(name, ())}


def text(value: Any) -> str:
    """An OCTET STRING as text (UTF-8, or Latin-1 when it is not), control characters removed."""
    if isinstance(value, bytes):
        try:
            decoded = value.decode()
        except UnicodeDecodeError:
            decoded = value.decode("latin-1")
        return "".join(ch for ch in decoded if ch.isprintable()).strip()
    if isinstance(value, tuple):
        return oid_text(value)
    return "" if value is None else str(value)


def mac(value: Any) -> str | None:
    """A MAC from a PhysAddress (six octets) or, as a few agents send it, from text."""
    if isinstance(value, tuple) and len(value) == 6:  # a MAC taken from an OID index
        value = bytes(value)
    if isinstance(value, bytes) and len(value) == 6:
        if value == b"\x00" * 6 or value[0] & 1:
            return None  # all-zero, or a group MAC (a router's broadcast or multicast entries)
        return value.hex(":")
    if isinstance(value, bytes):
        from ipguard.addresses import AddressError, parse_mac

        # As text: C firmware's trailing NUL, and the spaced hex net-snmp prints, allowed
        text = value.rstrip(b"\x00").strip().replace(b" ", b":")
        try:
            return parse_mac(text.decode("ascii", "replace"))
        except AddressError:
            return None
    return None


def system(values: Mapping[Oid, Any]) -> SnmpSystem:
    """The system group from a GET of `SYSTEM`."""
    uptime = values.get(SYSTEM["uptime"])
    return SnmpSystem(
        sys_name=text(values.get(SYSTEM["sys_name"])),
        sys_descr=text(values.get(SYSTEM["sys_descr"])),
        sys_object_id=text(values.get(SYSTEM["sys_object_id"])),
        uptime=uptime if isinstance(uptime, int) else 0,
    )


@dataclass
class Interfaces:
    """IF-MIB names and BRIDGE-MIB port numbers of one device."""

    names: dict[int, str] = field(default_factory=dict)  # ifIndex -> ifName (or ifDescr)
    base_ports: dict[int, int] = field(default_factory=dict)  # bridge port -> ifIndex

    @classmethod
    def from_walk(cls, walked: Walked) -> Interfaces:
        """Names from ifName, falling back to ifDescr per interface."""
        names = {index[0]: text(value) for index, value in column(walked, "ifDescr").items()}
        for index, value in column(walked, "ifName").items():
            if text(value):
                names[index[0]] = text(value)
        ports = {
            index[0]: value
            for index, value in column(walked, "dot1dBasePortIfIndex").items()
            if len(index) == 1 and isinstance(value, int) and value > 0
        }
        return cls(names, ports)

    def name(self, if_index: int | None) -> str:
        """The interface's name, or `ifIndex N` when the agent names none."""
        if if_index is None:
            return ""
        return self.names.get(if_index) or f"ifIndex {if_index}"

    def port_if_index(self, port: int) -> int | None:
        """The ifIndex of a bridge port (the port itself where the agent numbers ports so)."""
        if port in self.base_ports:
            return self.base_ports[port]
        if not self.base_ports and port in self.names:
            return port
        return None


def _inet_address(index: Oid) -> str | None:
    """ipNetToPhysicalNetAddress from an index tail `type.len.octets` (or `type.octets`)."""
    size = _ADDRESS_SIZES.get(index[0]) if index else None
    if size is None:
        return None
    rest = index[2:] if len(index) == size + 2 and index[1] == size else index[1:]
    try:
        packed = bytes(rest)  # ValueError for a subidentifier above 255
    except ValueError:
        return None
    if len(packed) != size:
        return None
    if size == 4:
        return socket.inet_ntoa(packed)  # the dotted quad, without ipaddress for every row
    return str(ipaddress.IPv6Address(packed))  # ipaddress's text, as everywhere in ipguard


def arp_entries(walked: Walked, interfaces: Interfaces) -> list[ArpEntry]:
    """The ARP table: ipNetToPhysicalTable where the agent has it, else ipNetToMediaTable."""
    entries: dict[tuple[str, str, int], ArpEntry] = {}
    kinds = column(walked, "ipNetToPhysicalType")
    states = column(walked, "ipNetToPhysicalState")
    names: dict[int, str] = {}  # a router has tens of thousands of rows on a few interfaces
    for index, value in column(walked, "ipNetToPhysicalPhysAddress").items():
        if kinds.get(index) == ARP_INVALID_TYPE or states.get(index) in ARP_DEAD_STATES:
            continue
        ip, found = _inet_address(index[1:]), mac(value)
        if ip is not None and found is not None:
            if_index = index[0]
            name = names.get(if_index)
            if name is None:
                name = names[if_index] = interfaces.name(if_index)
            entries[(ip, found, if_index)] = ArpEntry(ip, found, if_index, name)
    if entries:
        return list(entries.values())
    media_kinds = column(walked, "ipNetToMediaType")
    for index, value in column(walked, "ipNetToMediaPhysAddress").items():
        if media_kinds.get(index) == ARP_INVALID_TYPE or len(index) != 5:
            continue
        ip, found = _inet_address((1, *index[1:])), mac(value)
        if ip is not None and found is not None:
            entries[(ip, found, index[0])] = ArpEntry(
                ip, found, index[0], interfaces.name(index[0])
            )
    return list(entries.values())


def fdb_entries(walked: Walked, interfaces: Interfaces, vlan: int | None = None) -> list[FdbEntry]:
    """The forwarding table: dot1qTpFdbTable, or dot1dTpFdbTable where the agent fills only that.

    `vlan` is the VLAN of a Cisco per-VLAN walk (community@VLAN or context vlan-N).
    """
    found: list[FdbEntry] = []
    fids: dict[int, int] = {}
    for index, value in column(walked, "dot1qVlanFdbId").items():
        if len(index) == 2 and isinstance(value, int) and value > 0:
            fids.setdefault(value, index[1])  # shared FIDs keep the first VLAN
    statuses = column(walked, "dot1qTpFdbStatus")
    for index, port in column(walked, "dot1qTpFdbPort").items():
        if len(index) != 7 or statuses.get(index) in FDB_SKIPPED_STATUS:
            continue
        entry = _fdb_entry(index[1:], port, fids.get(index[0], index[0]), interfaces)
        if entry is not None:
            found.append(entry)
    if found:
        return found
    statuses = column(walked, "dot1dTpFdbStatus")
    for index, port in column(walked, "dot1dTpFdbPort").items():
        if len(index) != 6 or statuses.get(index) in FDB_SKIPPED_STATUS:
            continue
        entry = _fdb_entry(index, port, vlan, interfaces)
        if entry is not None:
            found.append(entry)
    return found or huawei_fdb_entries(walked, interfaces)


def huawei_fdb_entries(walked: Walked, interfaces: Interfaces) -> list[FdbEntry]:
    """The learnt MACs of a Huawei switch that fills neither forwarding table of the BRIDGE-MIBs,
    from HUAWEI-L2MAM-MIB hwDynFdbTable.

    Its index is hwDynFdbMac (six octets), hwDynFdbVlanId (0 for a MAC learnt in a VPLS VSI rather
    than a VLAN) and hwDynFdbVsiName (length, then the name's octets; length 0 in a VLAN); the
    value of hwDynFdbPort is the ifIndex of the port, not a bridge port (0: not on a port).
    """
    bridge_ports = {if_index: port for port, if_index in interfaces.base_ports.items()}
    found: list[FdbEntry] = []
    for index, if_index in column(walked, "hwDynFdbPort").items():
        vsi = index[7:]
        if len(index) < 7 or (vsi and vsi[0] != len(vsi) - 1):
            continue  # not MAC.VLAN.VSI: a layout this parser does not know
        address = mac(index[:6]) if all(octet < 256 for octet in index[:6]) else None
        if address is None or not isinstance(if_index, int) or if_index <= 0:
            continue
        port = bridge_ports.get(if_index, if_index)  # bridge port where the agent maps one
        found.append(FdbEntry(address, index[6] or None, port, if_index, interfaces.name(if_index)))
    return found


def _fdb_entry(
    mac_index: Oid, port: Any, vlan: int | None, interfaces: Interfaces
) -> FdbEntry | None:
    address = mac(mac_index) if all(octet < 256 for octet in mac_index) else None
    if address is None or not isinstance(port, int) or port <= 0:
        return None  # port 0: learnt but not on a port (the CPU, or aged out mid-walk)
    if_index = interfaces.port_if_index(port)
    name = interfaces.name(if_index) if if_index is not None else f"port {port}"
    return FdbEntry(address, vlan, port, if_index, name)


def lldp_neighbours(walked: Walked, interfaces: Interfaces) -> list[LldpNeighbour]:
    """LLDP neighbours, each on the local interface its lldpLocPortNum stands for."""
    local = _lldp_local_names(walked, interfaces)
    chassis_kinds = column(walked, "lldpRemChassisIdSubtype")
    port_kinds = column(walked, "lldpRemPortIdSubtype")
    ports = column(walked, "lldpRemPortId")
    names = column(walked, "lldpRemSysName")
    found = []
    for index, chassis in sorted(column(walked, "lldpRemChassisId").items()):
        if len(index) != 3:
            continue
        port_num = index[1]
        found.append(
            LldpNeighbour(
                local_if_name=local.get(port_num) or interfaces.name(port_num),
                remote_chassis_id=_lldp_id(chassis, chassis_kinds.get(index), "chassis"),
                remote_port_id=_lldp_id(ports.get(index), port_kinds.get(index), "port"),
                remote_sys_name=text(names.get(index)),
            )
        )
    return found


def _lldp_id(value: Any, subtype: Any, what: str) -> str:
    if subtype == LLDP_MAC_SUBTYPES[what] or (isinstance(value, bytes) and len(value) == 6):
        address = mac(value)
        if address is not None:
            return address
    return text(value)


def _lldp_local_names(walked: Walked, interfaces: Interfaces) -> dict[int, str]:
    """lldpLocPortNum -> ifName: by the port's ID or description where either is an interface
    name, else as a bridge port number."""
    by_name = {name: name for name in interfaces.names.values()}
    port_ids = column(walked, "lldpLocPortId")
    descriptions = column(walked, "lldpLocPortDesc")
    local: dict[int, str] = {}
    for index in set(port_ids) | set(descriptions):
        if len(index) != 1:
            continue
        for candidate in (text(port_ids.get(index)), text(descriptions.get(index))):
            if candidate in by_name:
                local[index[0]] = candidate
                break
        else:
            if_index = interfaces.base_ports.get(index[0])
            if if_index is not None:
                local[index[0]] = interfaces.name(if_index)
            else:
                local[index[0]] = text(descriptions.get(index)) or text(port_ids.get(index))
    return local


def cisco_vlans(walked: Walked) -> list[int]:
    """VLANs a Cisco switch keeps a BRIDGE-MIB instance for (vtpVlanState operational(1)),
    without the reserved FDDI/Token Ring VLANs 1002-1005 and what is no VLAN ID (1-4094): an
    agent listing a million "VLANs" would otherwise get a million walks, each a task here."""
    return sorted(
        {
            index[-1]
            for index, state in column(walked, "vtpVlanState").items()
            if state == 1 and 1 <= index[-1] <= 4094 and not 1002 <= index[-1] <= 1005
        }
    )


def read_snmprec(lines: Iterable[str]) -> dict[str, list[tuple[Oid, Any]]]:
    """A recorded walk in snmprec form (`OID|TYPE|VALUE`, as snmpsim and LibreNMS keep them),
    sorted into the columns above. Types: 2 integer, 4 string, 4x hex string, 6 OID, 64 IpAddress,
    65/66/67/70 counters, gauges, timeticks."""
    walked: dict[str, list[tuple[Oid, Any]]] = {}
    by_prefix = sorted(COLUMNS.items(), key=lambda item: -len(item[1]))
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        oid_part, kind, raw = line.split("|", 2)
        oid = parse_oid(oid_part)
        value: Any
        if kind == "4x":
            value = bytes.fromhex(raw)
        elif kind == "4":
            value = raw.encode()
        elif kind == "6":
            value = parse_oid(raw)
        elif kind == "64":
            value = bytes(int(part) for part in raw.split("."))
        else:
            value = int(raw)
        for name, prefix in by_prefix:
            if oid[: len(prefix)] == prefix:
                walked.setdefault(name, []).append((oid, value))
                break
        else:
            walked.setdefault(oid_text(oid), []).append((oid, value))
    return walked
