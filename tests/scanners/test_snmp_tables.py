"""The MIB-table parsers on the table layouts of real vendors (tests/scanners/snmp_walks/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipguard.scanners import snmp_tables as tables
from ipguard.scanners.snmp import parse

WALKS = Path(__file__).with_name("snmp_walks")


def walked(name: str) -> dict[str, list[tuple[tuple[int, ...], Any]]]:
    """A device's walk, with Cisco's per-VLAN instances (`NAME@VLAN.snmprec`)."""
    found = tables.read_snmprec((WALKS / f"{name}.snmprec").read_text().splitlines())
    for path in sorted(WALKS.glob(f"{name}@*.snmprec")):
        vlan = int(path.stem.split("@")[1])
        found[f"vlan {vlan}"] = []
        for column, rows in tables.read_snmprec(path.read_text().splitlines()).items():
            found[f"{column}@{vlan}"] = rows
    return found


CASES: dict[str, dict[str, set[tuple[Any, ...]]]] = {
    "cisco_ios_c2960": {
        "arp": {
            ("198.18.10.1", "00:00:0c:9f:f0:01", "Vl10"),
            ("198.18.10.21", "3c:52:82:aa:00:21", "Vl10"),
            ("198.18.10.22", "3c:52:82:aa:00:22", "Vl10"),
        },
        "fdb": {
            ("00:00:0c:9f:f0:01", 1, "Gi0/24"),  # the switch's own MAC (self) left out
            ("00:00:0c:9f:f0:01", 10, "Gi0/24"),
            ("3c:52:82:aa:00:21", 10, "Gi0/1"),
            ("3c:52:82:aa:00:22", 10, "Gi0/2"),
            ("3c:52:82:aa:00:23", 20, "Gi0/3"),  # :24 is invalid(2)
        },
        "lldp": set(),
    },
    "hpe_procurve_2530": {
        "arp": {
            ("198.18.30.1", "b4:b5:2f:00:00:01", "DEFAULT_VLAN"),
            ("198.18.30.40", "a0:48:1c:0a:0b:0c", "DEFAULT_VLAN"),
        },
        "fdb": {
            ("a0:48:1c:0a:0b:0c", 1, "1"),
            ("b4:b5:2f:00:00:01", 1, "26"),
            ("a0:48:1c:0a:0b:0d", 30, "2"),
        },
        "lldp": {("26", "b4:b5:2f:00:00:01", "Gi1/0/48", "core-1")},
    },
    "huawei_s5720": {
        "arp": {("198.18.40.10", "f4:55:9c:11:22:33", "Vlanif10")},  # invalid and 00:… left out
        "fdb": {
            ("f4:55:9c:11:22:33", 10, "GigabitEthernet0/0/1"),
            ("f4:55:9c:11:22:44", 10, "GigabitEthernet0/0/2"),
            ("70:7a:8b:00:00:01", 10, "XGigabitEthernet0/0/1"),
            ("70:7a:8b:00:00:01", 20, "XGigabitEthernet0/0/1"),
        },
        "lldp": set(),
    },
    "huawei_s5735_l2mam": {  # BRIDGE-MIB and Q-BRIDGE-MIB empty: HUAWEI-L2MAM-MIB
        "arp": {("198.18.30.1", "28:6e:d4:01:00:0a", "Vlanif30")},
        "fdb": {
            ("28:6e:d4:01:00:0a", 30, "GigabitEthernet0/0/1"),
            ("28:6e:d4:01:00:0b", 30, "GigabitEthernet0/0/2"),
            ("28:6e:d4:01:00:0c", 30, "Eth-Trunk1"),
            ("28:6e:d4:01:00:0c", 40, "Eth-Trunk1"),
            ("28:6e:d4:01:00:0d", None, "XGigabitEthernet0/0/1"),  # learnt in VSI "vsi-a"
        },  # 02:00:00:00:00:99 is on port 0 (not on a port): left out
        "lldp": set(),
    },
    "h3c_s5130": {
        "arp": {
            ("198.18.50.7", "7c:1e:06:aa:bb:07", "Vlan100"),
            ("fd00::7", "7c:1e:06:aa:bb:07", "Vlan100"),  # .8 is incomplete(7)
        },
        "fdb": {("7c:1e:06:aa:bb:07", 100, "GE1/0/1"), ("7c:1e:06:aa:bb:09", 100, "GE1/0/2")},
        "lldp": set(),
    },
    "ruijie_s2910": {
        "arp": {("198.18.60.5", "58:69:6c:01:02:05", "VLAN 1")},
        "fdb": {("58:69:6c:01:02:05", 1, "GigabitEthernet 0/2")},
        "lldp": set(),
    },
    "zte_zxr10": {
        "arp": {("198.18.70.1", "00:19:c6:00:70:01", "gei_1/28")},
        "fdb": {("00:19:c6:00:70:01", None, "gei_1/28"), ("00:19:c6:00:70:02", None, "gei_1/2")},
        "lldp": set(),
    },
    "dlink_des3026": {
        "arp": set(),
        "fdb": {
            ("00:1e:58:01:02:03", 400, "RMON Port 10 on Unit 1"),
            ("00:1e:58:01:02:04", 400, "RMON Port 24 on Unit 1"),
        },
        "lldp": set(),
    },
}


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_vendor_layouts(vendor: str) -> None:
    found = parse(walked(vendor))
    expected = CASES[vendor]
    assert {(e.ip, e.mac, e.if_name) for e in found["arp"]} == expected["arp"]  # type: ignore[attr-defined]
    assert {(e.mac, e.vlan, e.if_name) for e in found["fdb"]} == expected["fdb"]  # type: ignore[attr-defined]
    lldp = {
        (n.local_if_name, n.remote_chassis_id, n.remote_port_id, n.remote_sys_name)  # type: ignore[attr-defined]
        for n in found["lldp"]
    }
    assert lldp == expected["lldp"]


def test_huawei_l2mam_read_only_when_the_bridge_tables_are_empty() -> None:
    """hwDynFdbPort is an ifIndex: with dot1dBasePortIfIndex filled, the entry names the bridge
    port that maps to it; a device that fills Q-BRIDGE-MIB is read from Q-BRIDGE-MIB alone."""
    device = walked("huawei_s5735_l2mam")
    device["dot1dBasePortIfIndex"] = [((*tables.COLUMNS["dot1dBasePortIfIndex"], 3), 54)]
    trunk = [e for e in parse(device)["fdb"] if e.if_name == "Eth-Trunk1"]  # type: ignore[attr-defined]
    assert {(e.port, e.if_index, e.vlan) for e in trunk} == {(3, 54, 30), (3, 54, 40)}  # type: ignore[attr-defined]
    both = walked("huawei_s5720")
    both.update({k: v for k, v in device.items() if k == "hwDynFdbPort"})
    assert {e.mac for e in parse(both)["fdb"]} == {m for m, _v, _n in CASES["huawei_s5720"]["fdb"]}  # type: ignore[attr-defined]


def test_cisco_vlans_leave_out_the_reserved_ones() -> None:
    assert tables.cisco_vlans(walked("cisco_ios_c2960")) == [1, 10, 20]


def test_cisco_vlans_are_vlan_ids() -> None:
    """vtpVlanState rows past 4094 (a broken or hostile agent listing 100,000) are no VLANs to
    walk one by one; a VLAN listed in two management domains is walked once."""
    state = tables.COLUMNS["vtpVlanState"]
    rows = [((*state, 1, vlan), 1) for vlan in (0, 10, 4094, 4095, *range(5000, 105_000))]
    rows.append(((*state, 2, 10), 1))
    assert tables.cisco_vlans({"vtpVlanState": rows}) == [10, 4094]


def test_system_group() -> None:
    device = walked("huawei_s5720")
    values = {oid: value for rows in device.values() for oid, value in rows}
    system = tables.system(values)
    assert system.sys_name == "HW-S5720-B2"
    assert system.sys_object_id == "1.3.6.1.4.1.2011.2.23.418"
    assert system.uptime == 5551212 and system.sys_descr.startswith("S5720-28X-LI-AC")


@pytest.mark.parametrize(
    ("index", "address"),
    [
        ((1, 4, 198, 18, 0, 9), "198.18.0.9"),  # length-prefixed, as RFC 4293 says
        ((1, 198, 18, 0, 9), "198.18.0.9"),  # some agents leave the length out
        ((2, 16, 253, *([0] * 14), 1), "fd00::1"),
        ((1, 4, 300, 1, 1, 1), None),
        ((3, 4, 1, 2, 3, 4), None),  # ipv4z: not an address ipguard can judge
    ],
)
def test_inet_address_index(index: tuple[int, ...], address: str | None) -> None:
    assert tables._inet_address(index) == address


def test_unnamed_interface_and_unknown_port() -> None:
    interfaces = tables.Interfaces({1: "Gi0/1"}, {1: 1})
    entry = tables._fdb_entry((2, 0, 0, 0, 0, 1), 7, 10, interfaces)
    assert entry is not None and entry.if_name == "port 7" and entry.if_index is None
    assert tables.Interfaces({}, {}).name(12) == "ifIndex 12"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\x00\x1a\x2b\x3c\x4d\x5e", "00:1a:2b:3c:4d:5e"),
        (b"00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e"),  # as text (some D-Link, HPE firmware)
        (b"00 1A 2B 3C 4D 5E", "00:1a:2b:3c:4d:5e"),  # spaced hex text
        (b"00:1a:2b:3c:4d:5e\x00", "00:1a:2b:3c:4d:5e"),  # a C string's terminator sent along
        (b"\xff" * 6, None),  # a router's subnet-broadcast entry
        (b"\x01\x00\x5e\x00\x00\x16", None),  # a multicast group's entry (224.0.0.22)
        (b"\x00" * 6, None),
        (b"", None),  # an incomplete entry's empty PhysAddress
        (b"\x00\x1a\x2b\x3c\x4d\x5e\x00\x00", None),  # eight octets: not an Ethernet MAC
    ],
)
def test_mac_forms(value: bytes, expected: str | None) -> None:
    assert tables.mac(value) == expected


def test_router_broadcast_and_multicast_entries_are_not_hosts() -> None:
    """Windows (and some routers) list static ARP entries for the subnet broadcast and for
    multicast groups in ipNetToMediaTable: a group MAC is no host, and must not become an
    observation (it did in its six-octet form, while the text form was refused)."""
    address, kind = tables.COLUMNS["ipNetToMediaPhysAddress"], tables.COLUMNS["ipNetToMediaType"]
    rows = {
        (198, 18, 10, 7): b"\x00\x1a\x2b\x3c\x4d\x5e",
        (198, 18, 10, 255): b"\xff" * 6,
        (224, 0, 0, 22): b"\x01\x00\x5e\x00\x00\x16",
    }
    walk = {
        "ipNetToMediaPhysAddress": [((*address, 12, *ip), value) for ip, value in rows.items()],
        "ipNetToMediaType": [((*kind, 12, *ip), 4) for ip in rows],  # static(4)
    }
    entries = tables.arp_entries(walk, tables.Interfaces({12: "Ethernet0"}))
    assert [(e.ip, e.mac, e.if_name) for e in entries] == [
        ("198.18.10.7", "00:1a:2b:3c:4d:5e", "Ethernet0")
    ]


def test_hostile_strings_arrive_as_printable_text() -> None:
    """sysDescr, ifName, LLDP names: escapes and invalid UTF-8 from the agent become printable
    str (the outputs escape what is left at display), 10 kB kept whole."""
    hostile = b"\x1b[31mcore\x07\r\n\xff\xfe\xe2\x80\xae" + b"A" * 10_000
    found = tables.text(hostile)
    assert isinstance(found, str) and found.isprintable()
    assert found.startswith("[31mcore") and found.endswith("A" * 10_000)
