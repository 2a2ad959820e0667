"""wrong-port and unmanaged-switch: switch forwarding tables judged against the ledger."""

from __future__ import annotations

import pytest

from ipguard.model import FdbEntry, LldpNeighbour, SnmpPoll
from tests.policies.helpers import (
    IP1,
    IP2,
    IP3,
    IP4,
    A,
    B,
    C,
    D,
    X,
    Y,
    device,
    findings,
    judge,
    only,
    settings,
)

SW = "core-1"


def fdb(*pairs: tuple[str, str], vlan: int = 10) -> tuple[FdbEntry, ...]:
    """FDB entries (MAC, port name) as core-1 reports them."""
    return tuple(FdbEntry(mac, vlan, 1, 1, port) for mac, port in pairs)


def poll(*pairs: tuple[str, str], lldp: tuple[str, ...] = (), answered: bool = True) -> SnmpPoll:
    neighbours = tuple(LldpNeighbour(port, "00:aa:bb:cc:dd:ee", "Gi0/1", "dist-1") for port in lldp)
    return SnmpPoll(SW, "10.20.0.1", answered, fdb=fdb(*pairs), lldp=neighbours)


LEDGER = (
    device(IP1, A, switch_port=f"{SW}:Gi1/0/1"),
    device(IP2, B, switch_port=f"{SW}:Gi1/0/2"),
    device(IP3, C),  # no switch_port recorded: not judged for wrong-port
    device(IP4, D, "switch", switch_port=f"{SW}:Gi1/0/9"),  # a registered desk switch
)


@pytest.mark.parametrize(
    ("polled", "expected"),
    [
        pytest.param(poll((A, "Gi1/0/1"), (B, "Gi1/0/2")), set(), id="every MAC on its port"),
        pytest.param(
            poll((A, "Gi1/0/1"), (B, "Gi1/0/5")),
            {("wrong-port", IP2, B, f"{SW}:Gi1/0/5", "medium")},
            id="B moved to another access port",
        ),
        pytest.param(poll((A, "gi1/0/1")), set(), id="port names compared ignoring case"),
        pytest.param(poll((C, "Gi1/0/7")), set(), id="record without switch_port"),
        pytest.param(poll((X, "Gi1/0/7")), set(), id="unregistered MAC alone on a port"),
        pytest.param(
            poll((A, "Gi1/0/1"), (X, "Gi1/0/1")),
            {("unmanaged-switch", None, None, f"{SW}:Gi1/0/1", "high")},
            id="two MACs on an access port",
        ),
        pytest.param(
            poll((D, "Gi1/0/9"), (X, "Gi1/0/9"), (Y, "Gi1/0/9")),
            set(),
            id="port registered to a switch is exempt",
        ),
        pytest.param(
            poll((B, "Gi1/0/24"), (X, "Gi1/0/24"), lldp=("Gi1/0/24",)),
            set(),
            id="LLDP neighbour: an uplink, neither finding",
        ),
        pytest.param(
            poll(*((f"02:00:00:00:00:{n:02x}", "Te1/1/1") for n in range(33)), (B, "Te1/1/1")),
            set(),
            id="more than uplink_min_macs: an uplink",
        ),
        pytest.param(
            poll((A, "Gi1/0/3"), (X, "Gi1/0/3"), answered=False),
            set(),
            id="a device that did not answer proves nothing",
        ),
    ],
)
def test_switchports(polled: SnmpPoll, expected: set[tuple]) -> None:
    found = judge(LEDGER, snmp=(polled,))
    assert {item for item in found if item[0] in ("wrong-port", "unmanaged-switch")} == expected


def test_unmanaged_switch_lists_macs_and_owners() -> None:
    found = findings(LEDGER, snmp=(poll((A, "Gi1/0/6"), (B, "Gi1/0/6"), (X, "Gi1/0/6")),))
    hub = only(found, "unmanaged-switch")
    behind = {item["mac"]: item["registered_to"] for item in hub.detail["macs"]}
    assert set(behind) == {A, B, X}
    assert behind[A][0]["owner"] == f"owner of {IP1}" and behind[X] == []
    assert hub.detail["device"] == SW
    # the registered MACs on the hub port are also on the wrong port
    assert {f.mac for f in found if f.kind.value == "wrong-port"} == {A, B}


@pytest.mark.parametrize(("limit", "macs", "raised"), [(1, 2, True), (2, 2, False), (3, 4, True)])
def test_max_macs_per_port(limit: int, macs: int, raised: bool) -> None:
    pairs = [(f"02:00:00:00:01:{n:02x}", "Gi1/0/8") for n in range(macs)]
    found = judge(LEDGER, snmp=(poll(*pairs),), policy=settings(max_macs_per_port=limit))
    assert any(item[0] == "unmanaged-switch" for item in found) is raised


def test_severity_override() -> None:
    found = judge(
        LEDGER,
        snmp=(poll((B, "Gi1/0/5")),),
        policy=settings(severity={"wrong-port": "high"}),
    )
    assert ("wrong-port", IP2, B, f"{SW}:Gi1/0/5", "high") in found


# Junos (EX/QFX) learns MACs on the logical unit (`ge-0/0/1.0`, what dot1dBasePortIfIndex names),
# while administrators register, and LLDP announces, the physical port (`ge-0/0/1`).
JUNOS_LEDGER = (
    device(IP1, A, switch_port=f"{SW}:ge-0/0/1"),
    device(IP2, B, switch_port=f"{SW}:ge-0/0/2"),
    device(IP4, D, "switch", switch_port=f"{SW}:ge-0/0/9"),
)


@pytest.mark.parametrize(
    ("polled", "expected"),
    [
        pytest.param(
            poll((A, "ge-0/0/1.0"), (B, "ge-0/0/2.0")), set(), id="learnt on the registered unit"
        ),
        pytest.param(
            poll((A, "ge-0/0/1.0"), (B, "ge-0/0/5.0")),
            {("wrong-port", IP2, B, f"{SW}:ge-0/0/5.0", "medium")},
            id="another port's unit is still the wrong port",
        ),
        pytest.param(
            poll((B, "xe-0/1/0.0"), (X, "xe-0/1/0.0"), (Y, "xe-0/1/0.0"), lldp=("xe-0/1/0",)),
            set(),
            id="LLDP on the physical port makes its unit an uplink",
        ),
        pytest.param(
            poll((D, "ge-0/0/9.0"), (X, "ge-0/0/9.0"), (Y, "ge-0/0/9.0")),
            set(),
            id="the unit of a port registered to a switch is exempt",
        ),
        pytest.param(
            poll((A, "ge-0/0/1.0"), (X, "ge-0/0/1.0")),
            {("unmanaged-switch", None, None, f"{SW}:ge-0/0/1.0", "high")},
            id="two MACs on an access unit",
        ),
    ],
)
def test_junos_logical_units_are_their_physical_ports(
    polled: SnmpPoll, expected: set[tuple]
) -> None:
    found = judge(JUNOS_LEDGER, snmp=(polled,))
    assert {item for item in found if item[0] in ("wrong-port", "unmanaged-switch")} == expected


@pytest.mark.parametrize(
    ("registered", "learnt", "same"),
    [
        ("GigabitEthernet1/0/1", "Gi1/0/1", True),  # `show run` against ifName
        ("Gi1/0/1", "GigabitEthernet1/0/1", True),
        ("gi 1/0/1", "Gi1/0/1", True),
        ("GE0/0/1", "GigabitEthernet0/0/1", True),  # Huawei's display against its ifName
        ("XGE0/0/1", "XGigabitEthernet0/0/1", True),
        ("Te1/1/1", "TenGigabitEthernet1/1/1", True),
        ("Fa0/3", "FastEthernet0/3", True),
        ("Eth1/5", "Ethernet1/5", True),  # NX-OS
        ("GigabitEthernet1/0/1", "Gi1/0/10", False),
        ("Fa0/1", "Gi0/1", False),
        ("Gi1/0/1", "Te1/0/1", False),
    ],
)
def test_a_port_is_the_same_port_however_it_is_spelled(registered, learnt, same) -> None:
    """Administrators copy a port's name from the configuration (GigabitEthernet1/0/1) or from a
    status table (Gi1/0/1); the switch's ifName gives one of them: every registered device was a
    wrong-port every run, and a registered desk switch's port an unmanaged-switch."""
    ledger = (
        device(IP1, A, switch_port=f"{SW}:{registered}"),
        device(IP2, B, "switch", switch_port=f"{SW}:{registered}"),
    )
    found = judge(ledger, snmp=(poll((A, learnt), (B, learnt), (X, learnt)),))
    kinds = {item[0] for item in found}
    assert ("wrong-port" in kinds, "unmanaged-switch" in kinds) == (not same, not same)
