"""unregistered-host, ip-mac-mismatch, mac-moved, duplicate-ip: who may use which address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ipguard.model import ServiceObservation, Severity
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    IP3,
    NOW,
    A,
    B,
    X,
    Y,
    arp,
    device,
    findings,
    icmp,
    judge,
    only,
    settings,
)

CASES = [
    pytest.param([device(IP1, A)], [arp(IP1, A)], set(), id="registered pair: nothing"),
    pytest.param(
        [device(IP1, A)], [arp(IP1, A), arp(IP1, A), arp(IP1, A)], set(), id="repeated replies"
    ),
    pytest.param([device(IP1, A)], [icmp(IP1)], set(), id="icmp from a registered IP"),
    pytest.param(
        [device(IP1, A)],
        [arp(FREE, X)],
        {("unregistered-host", FREE, X, None, "high")},
        id="unknown pair",
    ),
    pytest.param(
        [], [icmp(FREE)], {("unregistered-host", FREE, None, None, "high")}, id="unknown icmp"
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, X)],
        {("ip-mac-mismatch", IP1, X, None, "high")},
        id="thief: owner offline, stranger at its IP, mismatch only",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, B)],
        [arp(IP1, B)],
        {("ip-mac-mismatch", IP1, B, None, "high")},
        id="registered MAC at another's IP: mismatch wins over mac-moved",
    ),
    pytest.param(
        [device(IP1, A, "gateway")],
        [arp(IP1, X)],
        {("ip-mac-mismatch", IP1, X, None, "critical")},
        id="gateway spoofed: critical",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [arp(IP1, X)],
        {("ip-mac-mismatch", IP1, X, None, "critical")},
        id="router spoofed: critical",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(FREE, A)],
        {("mac-moved", FREE, A, None, "medium")},
        id="registered MAC at a free IP: moved, not unregistered",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A)],
        [arp(IP1, A), arp(IP2, A)],
        set(),
        id="one MAC, two registered IPs",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A)],
        [arp(FREE, A)],
        {("mac-moved", FREE, A, None, "medium")},
        id="one MAC, two registered IPs, answering at a third",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A), arp(IP1, X)],
        {("duplicate-ip", IP1, None, None, "high")},
        id="owner and stranger: duplicate only",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, B)],
        [arp(IP1, A), arp(IP1, B), arp(IP2, B)],
        {("duplicate-ip", IP1, None, None, "high")},
        id="owner and a registered neighbour: duplicate only",
    ),
    pytest.param(
        [],
        [arp(FREE, X), arp(FREE, Y)],
        {("duplicate-ip", FREE, None, None, "high")},
        id="two strangers on a free IP: duplicate only",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, X), arp(IP1, Y)],
        {("duplicate-ip", IP1, None, None, "high")},
        id="two strangers on a registered IP: duplicate only",
    ),
    pytest.param(
        [device(IP1, A, "gateway")],
        [arp(IP1, A), arp(IP1, X)],
        {("duplicate-ip", IP1, None, None, "critical")},
        id="gateway answered twice: critical",
    ),
    pytest.param(
        [device(IP1, A, "router"), device(IP2, B)],
        [arp(IP1, A), arp(FREE, A), arp(IP2, A), arp(IP3, A)],
        set(),
        id="router proxy-ARP for free and registered IPs: nothing",
    ),
    pytest.param(
        [device(IP1, A, "gateway")],
        [arp(FREE, A), arp("10.20.200.1", A)],
        set(),
        id="gateway proxy-ARP: nothing",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [arp(FREE, A), arp(FREE, X)],
        {("unregistered-host", FREE, X, None, "high")},
        id="proxy-ARP next to a real host: the host only, no duplicate",
    ),
    pytest.param(
        [device(IP1, A, "router"), device(IP2, B)],
        [arp(IP2, A), arp(IP2, B)],
        set(),
        id="proxy-ARP next to the registered owner: nothing",
    ),
    pytest.param(
        [device(IP1, A, "gateway"), device(IP2, B, "router")],
        [arp(IP1, B)],
        {("ip-mac-mismatch", IP1, B, None, "critical")},
        id="a router answering for the gateway's IP is not proxy-ARP",
    ),
    pytest.param(
        [device(IP1, A, "gateway"), device(IP2, B, "router")],
        [arp(IP1, A), arp(IP1, B)],
        {("duplicate-ip", IP1, None, None, "critical")},
        id="a router answering next to the gateway",
    ),
    pytest.param(
        [device(IP1, A, "router", status="retired")],
        [arp(FREE, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="a retired router does not proxy-ARP",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "expected"), CASES)
def test_bindings(ledger, observations, expected):
    assert judge(ledger, observations) == expected


@pytest.mark.parametrize(
    ("opened_days_ago", "grace", "override", "expected"),
    [
        (None, 3, None, "high"),
        (1, 3, None, "high"),
        (3, 3, None, "high"),  # exactly the grace period: not yet longer
        (3.01, 3, None, "critical"),
        (10, 3, None, "critical"),
        (1, 0, None, "critical"),
        (10, 3, "medium", "high"),  # one level above the configured severity
        (10, 3, "critical", "critical"),  # nothing above critical
        (None, 3, "low", "low"),
    ],
)
def test_unregistered_host_escalates_after_grace(opened_days_ago, grace, override, expected):
    first_seen = {}
    if opened_days_ago is not None:
        first_seen = {("unregistered-host", f"{FREE}|{X}|"): NOW - timedelta(days=opened_days_ago)}
    policy = settings(
        unregistered_grace_days=grace,
        severity={"unregistered-host": override} if override else {},
    )
    found = judge([], [arp(FREE, X)], policy, first_seen=first_seen)
    assert found == {("unregistered-host", FREE, X, None, expected)}


def test_grace_escalation_only_for_its_own_subject():
    first_seen = {("unregistered-host", f"{FREE}|{Y}|"): NOW - timedelta(days=30)}
    assert judge([], [arp(FREE, X)], first_seen=first_seen) == {
        ("unregistered-host", FREE, X, None, "high")
    }


def test_grace_with_a_naive_first_seen():
    first_seen = {
        ("unregistered-host", f"{FREE}|{X}|"): (NOW - timedelta(days=5)).replace(tzinfo=None)
    }
    found = only(findings([], [arp(FREE, X)], first_seen=first_seen), "unregistered-host")
    assert found.severity.value == "critical"
    assert found.detail["escalation"] == "past-grace"


@pytest.mark.parametrize(
    ("override", "gateway", "expected"),
    [
        ("low", False, "low"),
        ("low", True, "critical"),  # an override does not hide ARP spoofing of the gateway
        ("medium", True, "critical"),
        (None, False, "high"),
    ],
)
def test_mismatch_override_and_gateway_escalation(override, gateway, expected):
    roles = ("gateway",) if gateway else ()
    policy = settings(severity={"ip-mac-mismatch": override} if override else {})
    assert judge([device(IP1, A, *roles)], [arp(IP1, X)], policy) == {
        ("ip-mac-mismatch", IP1, X, None, expected)
    }


def test_mismatch_detail_names_owner_and_offender():
    ledger = [device(IP1, A, owner="Li Wei", department="math"), device(IP2, B, owner="Zhang")]
    finding = only(findings(ledger, [arp(IP1, B)]), "ip-mac-mismatch")
    assert finding.subject == f"{IP1}|{B}|"
    assert "Li Wei" in finding.summary and B in finding.summary and A in finding.summary
    assert finding.detail["registered_mac"] == A
    assert finding.detail["observed_mac"] == B
    assert finding.detail["registered"]["owner"] == "Li Wei"
    assert finding.detail["registered"]["ipv6"] == []
    assert [record["owner"] for record in finding.detail["offender_records"]] == ["Zhang"]


def test_the_registered_record_in_a_detail_has_its_static_ipv6():
    owner = device(IP1, A, ipv6=("2001:db8:20::9", "2001:db8:20::10"))
    finding = only(findings([owner], [arp(IP1, B)]), "ip-mac-mismatch")
    assert finding.detail["registered"]["ipv6"] == ["2001:db8:20::9", "2001:db8:20::10"]


def test_duplicate_detail_lists_every_mac():
    ledger = [device(IP1, A, owner="Li Wei"), device(IP2, B)]
    finding = only(findings(ledger, [arp(IP1, A), arp(IP1, X), arp(IP1, B)]), "duplicate-ip")
    assert finding.subject == f"{IP1}||"
    assert finding.detail["macs"] == [A, X, B]
    assert finding.detail["registered"]["mac"] == A
    others = {entry["mac"]: entry["registered_elsewhere"] for entry in finding.detail["others"]}
    assert set(others) == {X, B}
    assert others[X] == [] and others[B][0]["ip"] == IP2
    assert {entry["mac"] for entry in finding.detail["observed"]} == {A, B, X}


def test_moved_detail_lists_registered_ips():
    ledger = [device(IP1, A, owner="Li Wei"), device(IP2, A)]
    finding = only(findings(ledger, [arp(FREE, A)]), "mac-moved")
    assert finding.detail["registered_ips"] == [IP1, IP2]
    assert "Li Wei" in finding.summary and FREE in finding.summary


def test_unregistered_detail_carries_ports_names_and_vendor():
    found = findings(
        [],
        [arp(FREE, X, vendor="TP-LINK"), arp(FREE, X)],
        services=[ServiceObservation(FREE, "tcp", 8080, service="http")],
        names=[],
    )
    finding = only(found, "unregistered-host")
    assert [port["port"] for port in finding.detail["open_ports"]] == ["tcp/8080"]
    (observed,) = finding.detail["observed"]
    assert observed["replies"] == 2 and observed["vendor"] == "TP-LINK"
    assert observed["first_seen_at"] == "2026-11-20T12:00:00Z"
    assert [f.kind.value for f in found] == ["unregistered-host"]  # no unexpected-service


@pytest.mark.parametrize(("opened_days_ago", "expected"), [(1, "low"), (10, "medium")])
def test_a_randomized_mac_escalates_from_its_own_severity(opened_days_ago, expected):
    """`randomized_mac_severity` is where a phone's finding starts; past the grace period it
    escalates one level, as its summary and detail say (it stayed at the configured level)."""
    phone = "f2:11:22:33:44:55"  # locally administered: made up per network
    first_seen = {("unregistered-host", f"{FREE}|{phone}|"): NOW - timedelta(days=opened_days_ago)}
    policy = settings(randomized_mac_severity=Severity.LOW)
    finding = only(
        findings([], [arp(FREE, phone)], policy, first_seen=first_seen), "unregistered-host"
    )
    assert finding.severity.value == expected
    overdue = opened_days_ago > 3
    assert ("escalation" in finding.detail) is overdue
    assert ("unregistered for more than 3 days" in finding.summary) is overdue


@pytest.mark.parametrize(
    ("virtual", "protocol"),
    [
        ("00:00:5e:00:01:0a", "VRRP"),  # and CARP, which borrows VRRP's MACs
        ("00:00:0c:07:ac:0a", "HSRP"),
        ("00:00:0c:9f:f0:0a", "HSRP"),  # version 2
        ("00:07:b4:00:0a:01", "GLBP"),
    ],
)
def test_a_gateway_answering_from_its_redundancy_groups_mac_says_so(virtual, protocol):
    """A gateway registered with a router's own MAC answers from its redundancy group's virtual
    MAC: still ip-mac-mismatch, critical (anyone can send from such a MAC), but the finding says
    what the MAC is and what to register (it only said 'answered from 00:00:5e:00:01:0a')."""
    found = findings([device(IP1, A, "gateway")], [arp(IP1, virtual)])
    finding = only(found, "ip-mac-mismatch")
    assert finding.severity is Severity.CRITICAL
    assert finding.detail["virtual_router"] == protocol
    assert f"a {protocol} virtual router MAC" in finding.summary
    assert f"ledger edit {IP1} --mac {virtual}" in finding.summary
    plain = only(findings([device(IP1, A, "gateway")], [arp(IP1, X)]), "ip-mac-mismatch")
    assert "virtual_router" not in plain.detail
