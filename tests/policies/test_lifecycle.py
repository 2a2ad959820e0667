"""isolated-device-online, suspended-device-online, guest-expired, stale-registration."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ipguard.model import (
    DhcpOffer,
    Evidence,
    FdbEntry,
    NameObservation,
    Observation,
    ProxyVerdict,
    ServiceObservation,
    SnmpPoll,
)
from ipguard.policies.base import PoolRange
from tests.policies.helpers import (
    ELSEWHERE,
    FREE,
    IP1,
    IP2,
    NOW,
    TODAY,
    A,
    B,
    X,
    arp,
    device,
    findings,
    icmp,
    judge,
    only,
    settings,
)

YESTERDAY = (TODAY - timedelta(days=1)).isoformat()

STATUS_CASES = [
    pytest.param(
        [device(IP1, A, status="suspended")],
        [arp(IP1, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended pair: not also unregistered",
    ),
    pytest.param(
        [device(IP1, A, status="retired")],
        [arp(IP1, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="retired pair",
    ),
    pytest.param(
        [device(IP1, A, status="suspended")],
        [arp(FREE, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended MAC at a free IP: subject is the record",
    ),
    pytest.param(
        [device(IP1, A, status="suspended")],
        [arp(IP1, A), arp(FREE, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended MAC at two IPs: one finding",
    ),
    pytest.param(
        [device(IP1, A, status="suspended")],
        [icmp(IP1)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended record's IP answers icmp",
    ),
    pytest.param(
        [device(IP1, A, status="retired")],
        [arp(IP1, X)],
        {("unregistered-host", IP1, X, None, "high")},
        id="stranger at a retired record's IP: unregistered",
    ),
    pytest.param(
        [device(IP1, A, status="retired"), device(IP1, B)],
        [arp(IP1, B)],
        set(),
        id="reassigned IP, new owner answers",
    ),
    pytest.param(
        [device(IP1, A, status="retired"), device(IP1, B)],
        [arp(IP1, A)],
        {("ip-mac-mismatch", IP1, A, None, "high")},
        id="reassigned IP, old owner answers: mismatch",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, B, status="suspended")],
        [arp(IP1, B)],
        {("ip-mac-mismatch", IP1, B, None, "high")},
        id="suspended device takes an active IP: mismatch only",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A, status="retired")],
        [arp(IP2, A)],
        {("suspended-device-online", IP2, A, None, "medium")},
        id="a MAC's retired binding in use: suspended, not moved",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [arp(IP1, A)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolated at its own IP",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [arp(FREE, A)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolated at a free IP: not moved",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [icmp(IP1)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolated via icmp",
    ),
    pytest.param(
        [device(IP1, A, isolated=True, status="retired")],
        [arp(IP1, A)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="retired isolated: isolated only",
    ),
    pytest.param(
        [device(IP1, A, isolated=True, status="retired")],
        [icmp(IP1)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="retired isolated via icmp",
    ),
    pytest.param(
        [device(IP1, A, isolated=True), device(IP2, B)],
        [arp(IP2, A), arp(IP2, B)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolated next to another's IP: no duplicate",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [arp(IP1, X)],
        {("ip-mac-mismatch", IP1, X, None, "high")},
        id="stranger at an isolated record's IP: the isolated device is not seen",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [],
        set(),
        id="isolated and unseen: not stale either",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "expected"), STATUS_CASES)
def test_status(ledger, observations, expected):
    assert judge(ledger, observations) == expected


def test_nothing_else_is_said_about_an_isolated_device():
    ledger = [
        device(IP1, A, isolated=True, guest_until=YESTERDAY, department="math", owner="x y"),
    ]
    found = judge(
        ledger,
        [arp(IP1, A), arp(FREE, A)],
        settings(hostname_rule="^{department}-{owner}$"),
        services=[ServiceObservation(IP1, "tcp", 8080), ServiceObservation(FREE, "tcp", 3128)],
        proxies=[ProxyVerdict(FREE, 3128, "http-connect", True)],
        names=[NameObservation(IP1, "wrong", "dns")],
        dhcp_offers=[DhcpOffer(IP1, A, "10.20.1.100")],
        evidence=[Evidence(IP1, A, "nat", "router"), Evidence(IP1, A, "ssdp-ap", "access-point")],
        pools=[PoolRange("math", "10.20.5.0/24")],
    )
    assert found == {("isolated-device-online", IP1, A, None, "critical")}


def test_isolated_detail_lists_where_it_answered():
    ledger = [device(IP1, A, isolated=True, owner="Secret Office")]
    finding = only(findings(ledger, [arp(IP1, A), arp(FREE, A)]), "isolated-device-online")
    assert finding.detail["seen_at"] == [IP1, FREE]
    assert "Secret Office" in finding.summary
    assert finding.detail["registered"]["mac"] == A


def switch(*learnt: tuple[str, str], answered: bool = True) -> SnmpPoll:
    """A switch's forwarding table: each (MAC, port) learnt on VLAN 10."""
    fdb = tuple(FdbEntry(mac, 10, n, n, port) for n, (mac, port) in enumerate(learnt, 1))
    return SnmpPoll("sw1", "10.20.0.2", answered, fdb=fdb)


@pytest.mark.parametrize(
    ("ledger", "observations", "polls", "expected"),
    [
        pytest.param(
            [device(IP1, A, isolated=True, switch_port="sw1:Gi1/0/3")],
            [],
            [switch((A, "Gi1/0/3"))],
            {("isolated-device-online", IP1, A, None, "critical")},
            id="silent to the sweep, but a switch learnt its MAC: it is connected",
        ),
        pytest.param(
            [device(IP1, A, isolated=True, switch_port="sw1:Gi1/0/3")],
            [],
            [switch((A, "Gi1/0/5"))],
            {("isolated-device-online", IP1, A, None, "critical")},
            id="on another port: isolated only, no wrong-port",
        ),
        pytest.param(
            [device(IP1, A, isolated=True, status="retired")],
            [],
            [switch((A, "Gi1/0/5"))],
            {("isolated-device-online", IP1, A, None, "critical")},
            id="a retired isolated device still plugged in",
        ),
        pytest.param(
            [device(IP1, A, isolated=True)],
            [arp(IP1, A)],
            [switch((A, "Gi1/0/5"))],
            {("isolated-device-online", IP1, A, None, "critical")},
            id="answering and learnt: one finding",
        ),
        pytest.param(
            [device(IP1, A, isolated=True)],
            [],
            [switch((A, "Gi1/0/5"), answered=False)],
            set(),
            id="a switch that did not answer proves nothing",
        ),
    ],
)
def test_isolated_device_on_a_switch(ledger, observations, polls, expected):
    assert judge(ledger, observations, snmp=tuple(polls)) == expected


def test_isolated_detail_names_the_switch_port():
    ledger = [device(IP1, A, isolated=True, owner="Secret Office")]
    finding = only(findings(ledger, snmp=(switch((A, "Gi1/0/5")),)), "isolated-device-online")
    assert finding.detail["learnt_on"] == [{"device": "sw1", "port": "sw1:Gi1/0/5", "vlan": 10}]
    assert finding.detail["seen_at"] == [] and "sw1:Gi1/0/5" in finding.summary


def test_suspended_detail_says_status():
    ledger = [device(IP1, A, status="retired", owner="Gone")]
    finding = only(findings(ledger, [arp(FREE, A)]), "suspended-device-online")
    assert finding.detail["status"] == "retired"
    assert finding.detail["seen_at"] == [FREE]
    assert "retired" in finding.summary and "Gone" in finding.summary


GUEST_CASES = [
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY)],
        [arp(IP1, A)],
        {("guest-expired", IP1, A, None, "medium")},
        id="expired guest online",
    ),
    pytest.param(
        [device(IP1, A, guest_until=TODAY.isoformat())],
        [arp(IP1, A)],
        set(),
        id="guest's last day",
    ),
    pytest.param([device(IP1, A, guest_until=YESTERDAY)], [], set(), id="expired guest offline"),
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY)],
        [icmp(IP1)],
        {("guest-expired", IP1, A, None, "medium")},
        id="expired guest via icmp",
    ),
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY)],
        [arp(FREE, A)],
        {("guest-expired", IP1, A, None, "medium"), ("mac-moved", FREE, A, None, "medium")},
        id="expired guest at another IP: two separate facts",
    ),
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY, status="suspended")],
        [arp(IP1, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended guest: suspended only",
    ),
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY), device(IP2, A)],
        [arp(IP2, A)],
        set(),
        id="guest MAC online through its other, permanent record",
    ),
    pytest.param(
        [device(IP1, A, guest_until=YESTERDAY)],
        [arp(IP1, X)],
        {("ip-mac-mismatch", IP1, X, None, "high")},
        id="someone else at an expired guest's IP",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "expected"), GUEST_CASES)
def test_guest_expiry(ledger, observations, expected):
    assert judge(ledger, observations) == expected


def test_guest_detail():
    finding = only(
        findings([device(IP1, A, guest_until=YESTERDAY, owner="Visitor")], [arp(IP1, A)]),
        "guest-expired",
    )
    assert finding.detail["guest_until"] == YESTERDAY
    assert "Visitor" in finding.summary and YESTERDAY in finding.summary


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


STALE_CASES = [
    pytest.param(device(IP1, A), days_ago(1), [], set(), id="seen yesterday"),
    pytest.param(device(IP1, A), days_ago(30), [], set(), id="exactly the limit"),
    pytest.param(
        device(IP1, A),
        days_ago(31),
        [],
        {("stale-registration", IP1, A, None, "low")},
        id="31 days unseen",
    ),
    pytest.param(
        device(IP1, A),
        None,
        [],
        {("stale-registration", IP1, A, None, "low")},
        id="never seen, covered",
    ),
    pytest.param(device(ELSEWHERE, A), None, [], set(), id="never seen, not covered"),
    pytest.param(device(ELSEWHERE, A), days_ago(99), [], set(), id="long unseen, not covered"),
    pytest.param(device(IP1, A), days_ago(99), [arp(IP1, A)], set(), id="seen by this run"),
    pytest.param(device(IP1, A), None, [icmp(IP1)], set(), id="seen by this run via icmp"),
    pytest.param(
        device(IP1, A),
        days_ago(99),
        [arp(IP1, A), arp(IP1, X)],
        {("duplicate-ip", IP1, None, None, "high")},
        id="seen in a duplicate: not stale",
    ),
    pytest.param(
        device(IP1, A, status="suspended"), days_ago(99), [], set(), id="suspended: not stale"
    ),
    pytest.param(device(IP1, A, status="retired"), None, [], set(), id="retired: not stale"),
    pytest.param(device(IP1, A, isolated=True), days_ago(99), [], set(), id="isolated: not stale"),
    pytest.param(
        device(IP1, A),
        days_ago(99),
        [arp(FREE, A)],
        {("stale-registration", IP1, A, None, "low"), ("mac-moved", FREE, A, None, "medium")},
        id="device moved away: its binding is stale",
    ),
    pytest.param(
        device(IP1, A),
        days_ago(99).replace(tzinfo=None),
        [],
        {("stale-registration", IP1, A, None, "low")},
        id="naive last_seen",
    ),
]


@pytest.mark.parametrize(("record", "last", "observations", "expected"), STALE_CASES)
def test_stale(record, last, observations, expected):
    last_seen = {} if last is None else {(record.ip, record.mac): last}
    assert judge([record], observations, last_seen=last_seen) == expected


@pytest.mark.parametrize(("limit", "days", "stale"), [(7, 8, True), (7, 6, False), (0, 0.5, True)])
def test_stale_after_days_is_configurable(limit, days, stale):
    found = judge(
        [device(IP1, A)],
        [],
        settings(stale_after_days=limit),
        last_seen={(IP1, A): days_ago(days)},
    )
    assert bool(found) is stale


def test_stale_detail():
    ledger = [device(IP1, A, owner="Li Wei"), device(IP2, B)]
    found = findings(ledger, [], last_seen={(IP1, A): days_ago(45)})
    by_ip = {finding.ip: finding for finding in found}
    assert by_ip[IP1].detail["days_unseen"] == 45
    assert by_ip[IP1].detail["last_seen"] == days_ago(45).isoformat().replace("+00:00", "Z")
    assert "45 days" in by_ip[IP1].summary and "Li Wei" in by_ip[IP1].summary
    assert by_ip[IP2].detail["last_seen"] is None
    assert "never" in by_ip[IP2].summary


def test_stale_only_inside_the_runs_subnets():
    ledger = [device(IP1, A), device("10.21.0.5", B)]
    found = judge(ledger, [], last_seen={}, subnets=("10.20.1.0/24", "10.30.0.0/16"))
    assert found == {("stale-registration", IP1, A, None, "low")}


# A device seen over IPv6 only (phase ipv6) was seen: its MAC at an address the network gave it.
def ndp(ip: str, mac: str) -> Observation:
    """An echo reply or Neighbor Advertisement of the ipv6 phase."""
    return Observation(ip, mac, NOW, "ndp")


SLAAC_A = "2001:db8:20:0:211:22ff:fe33:440a"
STATIC_A = "2001:db8:20::a"
LINK_LOCAL_A = "fe80::211:22ff:fe33:440a"
STALE = ("stale-registration", IP1, A, None, "low")
IPV6_PRESENCE_CASES = [
    pytest.param([device(IP1, A)], [ndp(SLAAC_A, A)], {}, set(), id="now at its SLAAC address"),
    pytest.param([device(IP1, A)], [ndp(LINK_LOCAL_A, A)], {}, set(), id="now link-local only"),
    pytest.param(
        [device(IP1, A, ipv6=(STATIC_A,))], [ndp(STATIC_A, A)], {}, set(), id="now at its static"
    ),
    pytest.param(
        [device(IP1, A, ipv6=(STATIC_A,)), device(IP2, A)],
        [ndp(STATIC_A, A)],
        {},
        {("stale-registration", IP2, A, None, "low")},
        id="now at the static of one of two records of its MAC",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A)],
        [ndp(SLAAC_A, A), arp(IP2, A)],
        {},
        {STALE},
        id="two records, IPv4 answer at one: the other stays stale",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A)],
        [ndp(SLAAC_A, A)],
        {},
        {STALE, ("stale-registration", IP2, A, None, "low")},
        id="two records, IPv6 only: which one is unknown",
    ),
    pytest.param(
        [device(IP1, A, ipv6=(STATIC_A,))],
        [ndp(STATIC_A, B)],
        {},
        {STALE, ("ip-mac-mismatch", STATIC_A, B, None, "high")},
        id="its static taken by another MAC: not its presence",
    ),
    pytest.param(
        [device(IP1, A)], [], {(SLAAC_A, A): days_ago(2)}, set(), id="earlier run, IPv6 only"
    ),
    pytest.param(
        [device(IP1, A)],
        [],
        {(IP1, A): days_ago(99), (SLAAC_A, A): days_ago(40), (LINK_LOCAL_A, A): days_ago(31)},
        {STALE},
        id="earlier runs over IPv6, too long ago",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A, ipv6=(STATIC_A,))],
        [],
        {(SLAAC_A, A): days_ago(2), (STATIC_A, A): days_ago(3)},
        {STALE},
        id="earlier run: a MAC of two records at its SLAAC and one's static",
    ),
    pytest.param(
        [device(IP1, A)], [], {(SLAAC_A, B): days_ago(2)}, {STALE}, id="earlier run, another MAC"
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "last_seen", "expected"), IPV6_PRESENCE_CASES)
def test_stale_counts_the_device_seen_over_ipv6(ledger, observations, last_seen, expected):
    assert judge(ledger, observations, last_seen=last_seen) == expected


def test_stale_detail_names_the_last_ipv6_sighting():
    last_seen = {(IP1, A): days_ago(99), (SLAAC_A, A): days_ago(45)}
    (finding,) = findings([device(IP1, A)], [], last_seen=last_seen)
    assert finding.detail["days_unseen"] == 45 and "45 days" in finding.summary
