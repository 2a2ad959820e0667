"""out-of-pool: addresses handed out by unit."""

from __future__ import annotations

import ipaddress

import pytest

from ipguard.policies.base import AddressRanges, PoolRange
from tests.policies.helpers import (
    FREE,
    IP1,
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

MATH = PoolRange("math", "10.20.1.0/25")
MATH_TOO = PoolRange("math", "10.20.3.0/24")
ART = PoolRange("art", "10.20.2.0/24")
INSIDE_MATH, OUTSIDE = "10.20.1.5", "10.20.9.5"
IN_ART, IN_MATH_TOO, MATH_HIGH = "10.20.2.5", "10.20.3.200", "10.20.1.200"

CASES = [
    pytest.param(
        [device(OUTSIDE, A, department="math")], [], set(), id="no pools configured: nothing"
    ),
    pytest.param(
        [device(INSIDE_MATH, A, department="math")], [MATH, ART], set(), id="inside its pool"
    ),
    pytest.param(
        [device(IN_MATH_TOO, A, department="math")],
        [MATH, MATH_TOO, ART],
        set(),
        id="inside its second pool",
    ),
    pytest.param(
        [device(MATH_HIGH, A, department="math")],
        [MATH, ART],
        {("out-of-pool", MATH_HIGH, A, None, "medium")},
        id="just past its pool",
    ),
    pytest.param(
        [device(IN_ART, A, department="math")],
        [MATH, ART],
        {("out-of-pool", IN_ART, A, None, "medium")},
        id="inside another department's pool",
    ),
    pytest.param(
        [device(IN_ART, A, department="physics")],
        [MATH, ART],
        set(),
        id="department without pools, inside some pool",
    ),
    pytest.param(
        [device(OUTSIDE, A, department="physics")],
        [MATH, ART],
        {("out-of-pool", OUTSIDE, A, None, "medium")},
        id="department without pools, outside every pool",
    ),
    pytest.param(
        [device(OUTSIDE, A)],
        [MATH, ART],
        {("out-of-pool", OUTSIDE, A, None, "medium")},
        id="no department, outside every pool",
    ),
    pytest.param(
        [device(INSIDE_MATH, A, department=" Math ")],
        [MATH],
        set(),
        id="department compared without case or spaces",
    ),
    pytest.param(
        [device(IN_ART, A, department=" Math ")],
        [MATH, ART],
        {("out-of-pool", IN_ART, A, None, "medium")},
        id="department compared without case or spaces, outside its pool",
    ),
]


@pytest.mark.parametrize(("ledger", "pools", "expected"), CASES)
def test_out_of_pool(ledger, pools, expected):
    observations = [arp(record.ip, record.mac) for record in ledger]
    assert judge(ledger, observations, pools=pools) == expected


@pytest.mark.parametrize(
    ("ledger", "observations", "expected"),
    [
        pytest.param(
            [], [arp(FREE, X)], {("unregistered-host", FREE, X, None, "high")}, id="unregistered"
        ),
        pytest.param(
            [device(INSIDE_MATH, A, department="math")],
            [arp(OUTSIDE, A)],
            {("mac-moved", OUTSIDE, A, None, "medium")},
            id="moved",
        ),
        pytest.param(
            [device(OUTSIDE, A, department="math")],
            [arp(OUTSIDE, X)],
            {("ip-mac-mismatch", OUTSIDE, X, None, "high")},
            id="thief",
        ),
        pytest.param(
            [device(OUTSIDE, A, department="math", status="suspended")],
            [arp(OUTSIDE, A)],
            {("suspended-device-online", OUTSIDE, A, None, "medium")},
            id="suspended",
        ),
        pytest.param(
            [device(OUTSIDE, A, department="math", isolated=True)],
            [arp(OUTSIDE, A)],
            {("isolated-device-online", OUTSIDE, A, None, "critical")},
            id="isolated",
        ),
    ],
)
def test_hosts_with_a_binding_finding_are_not_also_out_of_pool(ledger, observations, expected):
    assert judge(ledger, observations, pools=[MATH, ART]) == expected


def test_detail_and_override():
    ledger = [device(IN_ART, A, department="math", owner="Li Wei")]
    found = findings(
        ledger,
        [arp(IN_ART, A)],
        settings(severity={"out-of-pool": "low"}),
        pools=[MATH, MATH_TOO, ART],
    )
    finding = only(found, "out-of-pool")
    assert finding.severity.value == "low"
    assert finding.detail["department_pools"] == [MATH.cidr, MATH_TOO.cidr]
    assert "Li Wei" in finding.summary and MATH.cidr in finding.summary


def test_only_devices_that_answered_are_judged():
    ledger = [device(OUTSIDE, B, department="math")]
    assert judge(ledger, [], pools=[MATH]) == set()
    assert judge(ledger, [icmp(OUTSIDE)], pools=[MATH]) == {
        ("out-of-pool", OUTSIDE, B, None, "medium")
    }


def test_address_ranges_merge_and_bisect():
    ranges = AddressRanges(["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "192.168.0.0/30"])
    inside = ["10.0.0.0", "10.0.0.255", "10.0.1.0", "10.0.1.255", "192.168.0.3"]
    outside = ["9.255.255.255", "10.0.2.0", "192.168.0.4", "192.167.255.255", "not an ip", "::1"]
    assert all(ip in ranges for ip in inside)
    assert not any(ip in ranges for ip in outside)


def test_address_ranges_ipv6():
    ranges = AddressRanges(["2001:db8:1::/48", "10.0.0.0/8"])
    assert "2001:db8:1:ffff::1" in ranges
    assert "2001:db8:2::1" not in ranges
    assert "10.1.2.3" in ranges


def test_address_ranges_agree_with_ipaddress_over_many_pools():
    # 1,000 pools: every third /24 of 10.0.0.0/14, lower half only.
    cidrs = [f"10.{n // 256}.{n % 256}.0/25" for n in range(0, 3000, 3)]
    ranges = AddressRanges(cidrs)
    networks = {ipaddress.ip_network(cidr) for cidr in cidrs}
    for n in range(0, 3000 * 256, 97):
        ip = f"10.{n // 65536}.{(n // 256) % 256}.{n % 256}"
        expected = ipaddress.ip_network(f"{ip}/25", strict=False) in networks
        assert (ip in ranges) is expected, ip


def test_a_department_with_only_ipv6_pools():
    ledger = [device(IP1, A, department="v6")]
    found = judge(ledger, [arp(IP1, A)], pools=[PoolRange("v6", "2001:db8::/32")])
    assert found == {("out-of-pool", IP1, A, None, "medium")}
