"""A spooled run keeps what the snmp phase saw: polls come back as the same typed values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ipguard.model import (
    ArpEntry,
    FdbEntry,
    LldpNeighbour,
    Observation,
    ObservationSource,
    Phase,
    ScanResult,
    SnmpPoll,
    SnmpSystem,
)
from ipguard.spool import result_from_json, result_json


def test_snmp_polls_survive_the_spool() -> None:
    seen = Observation(
        "198.18.20.10",
        "02:00:00:00:20:10",
        datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        ObservationSource.SNMP_ARP,
        device="core-1",
        interface="Vlan20",
    )
    polls = (
        SnmpPoll(
            "core-1",
            "198.18.0.1",
            True,
            system=SnmpSystem("core-1", "IOS", "1.3.6.1.4.1.9.1.516", 42),
            arp=(ArpEntry("198.18.20.10", "02:00:00:00:20:10", 20, "Vlan20"),),
            fdb=(FdbEntry("02:00:00:00:20:10", 20, 3, 10103, "Gi0/3"),),
            lldp=(LldpNeighbour("Gi0/24", "00:11:22:33:44:55", "Gi1/0/1", "dist-1"),),
            roles=("router", "switch"),
        ),
        SnmpPoll("acc-2", "198.18.0.2", False, warning="acc-2 (198.18.0.2:161): no answer"),
    )
    result = ScanResult(observations=(seen,), phases=frozenset({Phase.SNMP}), snmp=polls)
    back = result_from_json(json.loads(json.dumps(result_json(result))))
    assert back.snmp == polls
    assert back.observations == (seen,)
