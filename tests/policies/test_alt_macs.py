"""A device answering from more than one MAC (`Binding.alt_macs`): a bond, a failover pair.

- Linux bonding in balance-alb answers each peer's ARP request from another NIC's MAC;
- keepalived moves a virtual address between two routers without a virtual MAC by default, so the
  backup answers from its own MAC after a failover.
Both were ip-mac-mismatch (critical for a gateway: "ARP spoofing of the gateway") on every
failover, with nothing the ledger could say about it.
"""

from __future__ import annotations

from datetime import timedelta

from ipguard.model import Severity
from tests.policies.helpers import (
    IP1,
    IP2,
    IP3,
    NOW,
    A,
    B,
    C,
    X,
    arp,
    device,
    findings,
    judge,
    only,
    settings,
)


def test_a_bond_answering_from_its_other_nic_is_the_device_itself() -> None:
    server = device(IP1, A, "server", alt_macs=(B,))
    assert judge([server], [arp(IP1, B)]) == set()
    assert judge([server], [arp(IP1, A), arp(IP1, B)]) == set()  # both NICs: no duplicate-ip
    # Without the registration: what it was before.
    assert judge([device(IP1, A, "server")], [arp(IP1, B)]) == {
        ("ip-mac-mismatch", IP1, B, None, "high")
    }


def test_a_keepalived_pair_failing_over_without_a_virtual_mac() -> None:
    """Router 1 (A at IP2) and router 2 (B at IP3) share the gateway address IP1, registered to A
    with B as its other MAC. After a failover router 2 answers IP1 from B: nothing to report."""
    ledger = [
        device(IP1, A, "gateway", alt_macs=(B,)),
        device(IP2, A, "router"),
        device(IP3, B, "router"),
    ]
    assert judge(ledger, [arp(IP1, B), arp(IP2, A), arp(IP3, B)]) == set()
    # Anyone else answering the gateway's address is still the critical finding.
    found = findings(ledger, [arp(IP1, X), arp(IP2, A), arp(IP3, B)])
    assert only(found, "ip-mac-mismatch").severity is Severity.CRITICAL
    # ... and with one of the pair at once: duplicate-ip, the pair's MAC authorised.
    duplicate = only(findings(ledger, [arp(IP1, B), arp(IP1, X)]), "duplicate-ip")
    assert duplicate.severity is Severity.CRITICAL
    assert [other["mac"] for other in duplicate.detail["others"]] == [X]


def test_an_other_mac_elsewhere_is_a_moved_device_not_an_unknown_one() -> None:
    server = device(IP1, A, "server", alt_macs=(B,))
    assert judge([server], [arp(IP2, B)]) == {("mac-moved", IP2, B, None, "medium")}


def test_a_record_last_seen_from_its_other_mac_is_not_stale() -> None:
    server = device(IP1, A, "server", alt_macs=(B,))
    long_ago = NOW - timedelta(days=90)
    recently = NOW - timedelta(days=1)
    last_seen = {(IP1, A): long_ago, (IP1, B): recently}
    policy = settings(stale_after_days=30)
    assert judge([server], [], policy, last_seen=last_seen, subnets=("10.20.0.0/16",)) == set()
    gone = {(IP1, A): long_ago, (IP1, B): long_ago}
    assert {k[0] for k in judge([server], [], policy, last_seen=gone)} == {"stale-registration"}


def test_isolation_and_suspension_follow_every_mac_of_the_device() -> None:
    isolated = device(IP1, A, isolated=True, alt_macs=(B,))
    assert {k[0] for k in judge([isolated], [arp(IP2, B)])} == {"isolated-device-online"}
    suspended = device(IP1, A, status="suspended", alt_macs=(C,))
    assert {k[0] for k in judge([suspended], [arp(IP1, C)])} == {"suspended-device-online"}


def test_a_gateway_answered_by_another_registered_router_says_how_to_register_the_twin() -> None:
    ledger = [device(IP1, A, "gateway"), device(IP2, A, "router"), device(IP3, B, "router")]
    spoof = only(findings(ledger, [arp(IP1, B)]), "ip-mac-mismatch")
    assert spoof.severity is Severity.CRITICAL and spoof.detail["failover_twin"] is True
    assert f"ipguard ledger edit {IP1} --alt-macs {B}" in spoof.summary
    stranger = only(findings(ledger, [arp(IP1, X)]), "ip-mac-mismatch")
    assert "failover_twin" not in stranger.detail and "--alt-macs" not in stranger.summary


def test_an_isolated_bond_learnt_by_its_other_nic_says_where_it_answered_and_was_learnt() -> None:
    # An isolated server with a bond answered at its address from its own MAC while a switch
    # learnt its other NIC: the switch's sighting replaced the answer (no "answered at", seen_at
    # empty), and the port was not named, since ports were looked up by the record's own MAC.
    from tests.policies.test_lifecycle import switch

    server = device(IP1, A, isolated=True, alt_macs=(B,))
    both = only(
        findings([server], [arp(IP1, A)], snmp=(switch((B, "Gi1/0/5")),)), "isolated-device-online"
    )
    assert both.detail["seen_at"] == [IP1]
    assert both.detail["learnt_on"] == [{"device": "sw1", "port": "sw1:Gi1/0/5", "vlan": 10}]
    assert f"answered at {IP1} and was learnt on switch port sw1:Gi1/0/5" in both.summary
    silent = only(findings([server], snmp=(switch((B, "Gi1/0/5")),)), "isolated-device-online")
    assert silent.detail["learnt_on"] and "sw1:Gi1/0/5" in silent.summary


def test_a_hubs_detail_names_the_device_whose_other_nic_is_behind_it() -> None:
    # Alt MACs are not judged against the record's switch_port (a bond's NICs sit on two ports),
    # but behind a hub's port the bond's other NIC was listed as registered to nobody.
    from ipguard.model import FdbEntry, SnmpPoll

    server = device(IP1, A, "server", alt_macs=(B,), switch_port="sw1:Gi1/0/1")
    hub = SnmpPoll(
        "sw1",
        "10.20.0.2",
        True,
        fdb=(FdbEntry(B, 10, 1, 1, "Gi1/0/5"), FdbEntry(X, 10, 2, 2, "Gi1/0/5")),
    )
    found = findings([server], snmp=(hub,))
    behind = {
        item["mac"]: item["registered_to"]
        for item in only(found, "unmanaged-switch").detail["macs"]
    }
    assert [record["ip"] for record in behind[B]] == [IP1] and behind[X] == []
    assert not [finding for finding in found if finding.kind.value == "wrong-port"]
