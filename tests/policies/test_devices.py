"""open-proxy, rogue-dhcp, rogue-router, rogue-ap: devices nobody may connect without approval."""

from __future__ import annotations

import dataclasses

import pytest

from ipguard.model import DhcpOffer, Evidence, ProxyVerdict
from ipguard.policies.devices import is_convincing
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    IP3,
    A,
    B,
    C,
    X,
    arp,
    device,
    findings,
    icmp,
    judge,
    only,
    settings,
)


def verdict(
    ip: str, port: int = 3128, method: str = "http-connect", relays: bool = True
) -> ProxyVerdict:
    return ProxyVerdict(ip, port, method, relays)


PROXY_CASES = [
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [verdict(IP1)],
        {("open-proxy", IP1, A, "tcp/3128", "high")},
        id="registered host relays",
    ),
    pytest.param([device(IP1, A, "proxy")], [arp(IP1, A)], [verdict(IP1)], set(), id="role proxy"),
    pytest.param(
        [device(IP1, A), device(IP2, A, "proxy")],
        [arp(IP1, A)],
        [verdict(IP1)],
        set(),
        id="role proxy on another record of the same MAC",
    ),
    pytest.param(
        [],
        [arp(FREE, X)],
        [verdict(FREE, 1080, "socks5")],
        {("open-proxy", FREE, X, "tcp/1080", "high"), ("unregistered-host", FREE, X, None, "high")},
        id="unregistered host relays: both",
    ),
    pytest.param(
        [device(IP1, A, "proxy")],
        [arp(IP1, X)],
        [verdict(IP1)],
        {("open-proxy", IP1, X, "tcp/3128", "high"), ("ip-mac-mismatch", IP1, X, None, "high")},
        id="thief at the proxy's IP does not inherit its role",
    ),
    pytest.param(
        [device(IP1, A, "proxy")],
        [arp(FREE, A)],
        [verdict(FREE)],
        {("mac-moved", FREE, A, None, "medium")},
        id="moved proxy keeps its role",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [verdict(IP1, relays=False), verdict(IP1, method="socks5", relays=False)],
        set(),
        id="nothing relayed",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [verdict(IP1), verdict(IP1, method="http-get"), verdict(IP1, 8080)],
        {("open-proxy", IP1, A, "tcp/3128", "high"), ("open-proxy", IP1, A, "tcp/8080", "high")},
        id="one finding per port",
    ),
    pytest.param(
        [device(IP1, A)],
        [icmp(IP1)],
        [verdict(IP1)],
        {("open-proxy", IP1, A, "tcp/3128", "high")},
        id="routed host relays",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "proxies", "expected"), PROXY_CASES)
def test_open_proxy(ledger, observations, proxies, expected):
    assert judge(ledger, observations, proxies=proxies) == expected


def test_open_proxy_detail_lists_methods():
    tries = [
        verdict(IP1, method="socks5"),
        verdict(IP1, method="http-connect"),
        verdict(IP1, method="socks4", relays=False),
    ]
    finding = only(
        findings([device(IP1, A, owner="Li Wei")], [arp(IP1, A)], proxies=tries), "open-proxy"
    )
    assert finding.detail["methods"] == ["http-connect", "socks5"]
    assert len(finding.detail["attempts"]) == 3
    assert "Li Wei" in finding.summary and "tcp/3128" in finding.summary


def offer(server_ip: str, server_mac: str, offered: str = "10.20.1.200") -> DhcpOffer:
    return DhcpOffer(server_ip, server_mac, offered, router=IP1, dns=(IP1,))


DHCP_CASES = [
    pytest.param(
        [device(IP1, A, "dhcp-server")], [offer(IP1, A)], set(), id="the registered server"
    ),
    pytest.param(
        [device(IP1, A, "dhcp-server", "gateway")], [offer(IP1, A)], set(), id="server and gateway"
    ),
    pytest.param(
        [device(IP1, A)],
        [offer(IP1, A)],
        {("rogue-dhcp", IP1, A, None, "critical")},
        id="registered host without the role",
    ),
    pytest.param(
        [],
        [offer(FREE, X)],
        {("rogue-dhcp", FREE, X, None, "critical")},
        id="unregistered server",
    ),
    pytest.param(
        [device(IP1, A, "dhcp-server")],
        [offer(IP1, X)],
        {("rogue-dhcp", IP1, X, None, "critical")},
        id="server identifier of the real one, another MAC",
    ),
    pytest.param(
        [device(IP1, A, "dhcp-server", status="suspended")],
        [offer(IP1, A)],
        {("rogue-dhcp", IP1, A, None, "critical")},
        id="suspended server",
    ),
    pytest.param(
        [device(IP1, A, "dhcp-server"), device(IP2, B, "router")],
        [offer(IP1, B)],
        set(),
        id="relayed through a registered router",
    ),
    pytest.param(
        [device(IP1, A, "dhcp-server"), device(IP2, B, "router")],
        [offer(IP2, B)],
        {("rogue-dhcp", IP2, B, None, "critical")},
        id="the router itself serving DHCP",
    ),
    pytest.param(
        [],
        [offer(FREE, X, "10.20.1.100"), offer(FREE, X, "10.20.1.101"), offer(IP3, C)],
        {("rogue-dhcp", FREE, X, None, "critical"), ("rogue-dhcp", IP3, C, None, "critical")},
        id="one finding per server",
    ),
]


@pytest.mark.parametrize(("ledger", "offers", "expected"), DHCP_CASES)
def test_rogue_dhcp(ledger, offers, expected):
    assert judge(ledger, [], dhcp_offers=offers) == expected


def test_rogue_dhcp_detail_and_override():
    offers = [
        dataclasses.replace(offer(FREE, X, "10.20.1.101"), latency=4.02),
        dataclasses.replace(offer(FREE, X, "10.20.1.100"), latency=3.04),
    ]
    found = findings([], [], settings(severity={"rogue-dhcp": "high"}), dhcp_offers=offers)
    finding = only(found, "rogue-dhcp")
    assert finding.severity.value == "high"
    assert finding.detail["offered_ips"] == ["10.20.1.100", "10.20.1.101"]
    assert finding.detail["offers"] == 2
    assert finding.detail["routers"] == [IP1]
    assert finding.detail["seconds_to_offer"] == [3.04, 4.02]  # how long the server took
    assert "not registered" in finding.summary and "after 3.0 s" in finding.summary


def sign(kind: str, points_to: str = "router", ip: str = IP1, mac: str | None = A) -> Evidence:
    return Evidence(ip, mac, kind, points_to)


@pytest.mark.parametrize(
    ("kinds", "convincing"),
    [
        (["forwarding"], True),
        (["icmp-redirect"], True),
        (["upnp-igd"], True),
        (["ssdp-ap"], True),
        (["nat"], True),
        (["vendor"], False),
        (["mac-adjacency"], False),
        (["ttl"], False),
        (["http-title"], False),
        (["vendor", "vendor"], False),
        (["vendor", "mac-adjacency"], True),
        (["ttl", "http-title"], True),
        (["vendor", "some-new-sign"], True),
        ([], False),
    ],
)
def test_evidence_rule(kinds, convincing):
    assert is_convincing(kinds) is convincing


EVIDENCE_CASES = [
    pytest.param(
        [device(IP1, A)],
        [sign("forwarding")],
        {("rogue-router", IP1, A, None, "high")},
        id="forwarding host",
    ),
    pytest.param(
        [device(IP1, A)],
        [sign("vendor", "access-point")],
        set(),
        id="vendor OUI alone",
    ),
    pytest.param(
        [device(IP1, A)],
        [sign("mac-adjacency", "access-point")],
        set(),
        id="MAC adjacency alone",
    ),
    pytest.param(
        [device(IP1, A)],
        [sign("vendor", "access-point"), sign("mac-adjacency", "access-point")],
        {("rogue-ap", IP1, A, None, "high")},
        id="two weak signs",
    ),
    pytest.param(
        [device(IP1, A)],
        [sign("vendor", "access-point"), sign("ttl", "router")],
        set(),
        id="weak signs for different things do not add up",
    ),
    pytest.param(
        [device(IP1, A)],
        [sign("ssdp-ap", "access-point")],
        {("rogue-ap", IP1, A, None, "high")},
        id="ssdp access point",
    ),
    pytest.param(
        [device(IP1, A, "router")], [sign("nat"), sign("upnp-igd")], set(), id="role router"
    ),
    pytest.param([device(IP1, A, "gateway")], [sign("nat")], set(), id="role gateway"),
    pytest.param(
        [device(IP1, A, "router")],
        [sign("ssdp-ap", "access-point")],
        {("rogue-ap", IP1, A, None, "high")},
        id="a router is not an access point",
    ),
    pytest.param(
        [device(IP1, A, "access-point")],
        [sign("ssdp-ap", "access-point")],
        set(),
        id="role access-point",
    ),
    pytest.param(
        [device(IP1, A, "access-point")],
        [sign("nat")],
        {("rogue-router", IP1, A, None, "high")},
        id="an access point that also routes",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [sign("nat", mac=None)],
        set(),
        id="no MAC in the evidence: the host at the IP",
    ),
    pytest.param(
        [],
        [sign("icmp-redirect", ip=FREE, mac=X)],
        {("rogue-router", FREE, X, None, "high")},
        id="unregistered router",
    ),
    pytest.param(
        [device(IP1, A)], [sign("nat", "switch")], set(), id="evidence for something else"
    ),
]


@pytest.mark.parametrize(("ledger", "evidence", "expected"), EVIDENCE_CASES)
def test_rogue_router_and_ap(ledger, evidence, expected):
    observations = [arp(record.ip, record.mac) for record in ledger]
    assert judge(ledger, observations, evidence=evidence) == expected


def test_evidence_carrying_a_mac_judges_that_device():
    ledger = [device(IP1, A, "router")]
    # A forwarding probe sent to a free address through the router's MAC (proxy ARP): the router.
    through_router = [Evidence(FREE, A, "forwarding", "router")]
    assert judge(ledger, [arp(IP1, A), arp(FREE, A)], evidence=through_router) == set()
    # A stranger's MAC behind the router's address: not the router.
    stranger = [Evidence(IP1, X, "nat", "router")]
    assert judge(ledger, [arp(IP1, A)], evidence=stranger) == {
        ("rogue-router", IP1, X, None, "high")
    }


def test_rogue_unregistered_host_is_also_unregistered():
    found = judge([], [arp(FREE, X)], evidence=[sign("nat", ip=FREE, mac=X)])
    assert found == {
        ("rogue-router", FREE, X, None, "high"),
        ("unregistered-host", FREE, X, None, "high"),
    }


def test_rogue_detail_lists_evidence():
    evidence = [sign("ttl"), sign("http-title"), sign("ttl")]
    finding = only(findings([device(IP1, A)], [arp(IP1, A)], evidence=evidence), "rogue-router")
    assert [item["kind"] for item in finding.detail["evidence"]] == ["ttl", "http-title", "ttl"]
    assert {item["strength"] for item in finding.detail["evidence"]} == {"weak"}
    assert "http-title, ttl" in finding.summary


def test_rogue_dhcp_without_latencies_says_nothing_about_time():
    """Offers read back from a stored run carry no latency: no made-up timing in the finding."""
    finding = only(findings([], [], settings(), dhcp_offers=[offer(FREE, X)]), "rogue-dhcp")
    assert "seconds_to_offer" not in finding.detail
    assert " after " not in finding.summary
