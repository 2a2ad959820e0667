"""IPv6 addresses seen on the link (phase ipv6) judged by the binding policies, static or not."""

from __future__ import annotations

from typing import Any

import pytest

from ipguard.model import Observation
from tests.policies.helpers import (
    IP1,
    IP2,
    NOW,
    SUBNET,
    A,
    B,
    X,
    Y,
    arp,
    device,
    findings,
    judge,
    only,
)

V6 = "2001:db8:20::/64"
STATIC_A, STATIC_B = "2001:db8:20::a", "2001:db8:20::b"
SLAAC_A = "2001:db8:20:0:211:22ff:fe33:440a"  # EUI-64 of A
PRIVACY = "2001:db8:20:0:5e3d:9a1:c2f0:77b1"
LL_A, LL_X = "fe80::211:22ff:fe33:440a", "fe80::a8bb:ccff:fedd:ee01"


def ndp(ip: str, mac: str) -> Observation:
    """An echo reply or NA: `ip` answered from `mac` on the link."""
    return Observation(ip, mac, NOW, "ndp")


def static(ip: str, mac: str, *v6: str, **fields: Any) -> Any:
    """A record with static IPv6 addresses."""
    return device(ip, mac, ipv6=v6, **fields)


CASES = [
    pytest.param([static(IP1, A, STATIC_A)], [ndp(STATIC_A, A)], set(), id="static, its MAC"),
    pytest.param(
        [static(IP1, A, STATIC_A), device(IP2, B)],
        [ndp(STATIC_A, B)],
        {("ip-mac-mismatch", STATIC_A, B, None, "high")},
        id="static taken by a registered MAC",
    ),
    pytest.param(
        [static(IP1, A, STATIC_A)],
        [ndp(STATIC_A, X)],
        {("ip-mac-mismatch", STATIC_A, X, None, "high")},
        id="static taken by an unregistered MAC",
    ),
    pytest.param(
        [static(IP1, A, STATIC_A), device(IP2, B)],
        [ndp(STATIC_A, A), ndp(STATIC_A, B)],
        {("duplicate-ip", STATIC_A, None, None, "high")},
        id="two MACs for one static",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, B)],
        [ndp(PRIVACY, A), ndp(PRIVACY, B)],
        {("duplicate-ip", PRIVACY, None, None, "high")},
        id="two MACs for one unregistered address",
    ),
    pytest.param(
        [device(IP1, A)],
        [ndp(SLAAC_A, A), ndp(PRIVACY, A), ndp(LL_A, A)],
        set(),
        id="no static: SLAAC, privacy and link-local are all its own",
    ),
    pytest.param(
        [static(IP1, A, STATIC_A)],
        [ndp(STATIC_A, A), ndp(PRIVACY, A), ndp(LL_A, A)],
        set(),
        id="a static and other addresses of the same device",
    ),
    pytest.param(
        [device(IP1, A)],
        [ndp(LL_X, X), ndp(PRIVACY, X)],
        {("unregistered-host", LL_X, X, None, "high")},
        id="unregistered: one finding per MAC, at its link-local address",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP2, X), ndp(LL_X, X), ndp(PRIVACY, X)],
        {("unregistered-host", IP2, X, None, "high")},
        id="unregistered with IPv4: the IPv4 finding carries the IPv6 addresses",
    ),
    pytest.param(
        [device(IP1, A, isolated=True)],
        [ndp(PRIVACY, A)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolated",
    ),
    pytest.param(
        [device(IP1, A, status="suspended")],
        [ndp(PRIVACY, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended MAC",
    ),
    pytest.param(
        [static(IP1, A, STATIC_A, status="suspended")],
        [ndp(STATIC_A, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="suspended record's own static",
    ),
    pytest.param(
        [device(IP1, A, guest_until="2026-11-01")],
        [ndp(PRIVACY, A)],
        {("guest-expired", IP1, A, None, "medium")},
        id="expired guest seen at a privacy address",
    ),
    pytest.param(
        [static(IP1, A, STATIC_A), device(IP2, B, "router")],
        [ndp(STATIC_A, B)],
        set(),
        id="a router answering for another (proxy NDP)",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "expected"), CASES)
def test_ipv6_observations(ledger, observations, expected):
    assert judge(ledger, observations, subnets=(SUBNET, V6)) == expected


def test_unregistered_detail_lists_the_other_addresses():
    found = findings([], [ndp(PRIVACY, X), ndp(LL_X, X), ndp(SLAAC_A, Y)], subnets=(SUBNET, V6))
    by_mac = {finding.mac: finding for finding in found}
    assert by_mac[X].ip == LL_X and by_mac[X].detail["ipv6"] == [PRIVACY]
    assert by_mac[Y].ip == SLAAC_A and "ipv6" not in by_mac[Y].detail  # no link-local seen
    with_v4 = only(
        findings([], [arp(IP2, X), ndp(LL_X, X)], subnets=(SUBNET, V6)), "unregistered-host"
    )
    assert with_v4.ip == IP2 and with_v4.detail["ipv6"] == [LL_X]


def test_a_device_of_another_site_is_one_mac_moved_however_many_addresses():
    ledger = [device(IP1, A, site="north")]
    observations = [ndp(LL_A, A), ndp(PRIVACY, A), ndp(SLAAC_A, A)]
    found = findings(ledger, observations, subnets=(SUBNET, V6), site="south")
    moved = only(found, "mac-moved")
    assert (moved.ip, moved.mac) == (LL_A, A) and moved.detail["ipv6"] == [PRIVACY, SLAAC_A]
    with_v4 = findings(ledger, [arp(IP2, A), *observations], subnets=(SUBNET, V6), site="south")
    assert only(with_v4, "mac-moved").ip == IP2


def test_another_mac_answering_at_the_routers_advertised_link_local_address_is_a_mismatch():
    # Hosts reach their default router at the link-local address its RAs come from. A host that
    # holds that address too (DAD off) answers the scan's echo from it: the gateway impersonated.
    from ipguard.model import RouterAdvert

    gateway = device(IP1, A, "gateway", "router")
    advert = RouterAdvert(LL_A, A, 1800, False, False, ("2001:db8:20::/64",))
    seen = [ndp(LL_A, A), ndp(LL_A, B)]
    ledger = [gateway, device(IP2, B)]
    found = judge(ledger, seen, subnets=(SUBNET, V6), router_adverts=(advert,))
    assert found == {("duplicate-ip", LL_A, None, None, "critical")}
    alone = judge(ledger, [ndp(LL_A, B)], subnets=(SUBNET, V6), router_adverts=(advert,))
    assert alone == {("ip-mac-mismatch", LL_A, B, None, "critical")}
    # The router alone at its address, or no RA heard from it: nothing.
    assert judge([gateway], [ndp(LL_A, A)], subnets=(SUBNET, V6), router_adverts=(advert,)) == set()
    assert judge([gateway, device(IP2, B)], seen, subnets=(SUBNET, V6)) == set()
