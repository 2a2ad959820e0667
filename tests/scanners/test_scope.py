"""Scope: the only addresses a sweep may probe."""

from __future__ import annotations

import pytest

from ipguard.errors import InvalidValue, ScopeError
from ipguard.scanners.scope import Scope


@pytest.mark.parametrize(
    ("subnets", "cidrs", "expected"),
    [
        (
            ["198.19.0.0/29"],
            None,
            ["198.19.0.1", "198.19.0.2", "198.19.0.3", "198.19.0.4", "198.19.0.5", "198.19.0.6"],
        ),
        (["198.19.0.0/24"], ["198.19.0.0/30"], ["198.19.0.1", "198.19.0.2", "198.19.0.3"]),
        (["198.19.0.0/24"], ["198.19.0.252/30"], ["198.19.0.252", "198.19.0.253", "198.19.0.254"]),
        # a sub-range of a bigger subnet: its own first and last addresses are hosts
        (
            ["198.19.0.0/16"],
            ["198.19.1.0/30"],
            ["198.19.1.0", "198.19.1.1", "198.19.1.2", "198.19.1.3"],
        ),
        # /31 and /32 have no network or broadcast address (RFC 3021)
        (["198.19.0.0/31"], None, ["198.19.0.0", "198.19.0.1"]),
        (["198.19.0.9/32"], None, ["198.19.0.9"]),
        (["198.19.0.0/24"], ["198.19.0.7"], ["198.19.0.7"]),
        # overlapping requests: sorted, no repeats
        (
            ["198.19.0.0/24"],
            ["198.19.0.6/31", "198.19.0.4/30"],
            ["198.19.0.4", "198.19.0.5", "198.19.0.6", "198.19.0.7"],
        ),
        # a host address with a prefix means its network
        (
            ["198.19.0.0/24"],
            ["198.19.0.5/30"],
            ["198.19.0.4", "198.19.0.5", "198.19.0.6", "198.19.0.7"],
        ),
        (
            ["198.19.0.0/30", "198.18.0.0/30"],
            None,
            ["198.18.0.1", "198.18.0.2", "198.19.0.1", "198.19.0.2"],
        ),
    ],
)
def test_targets(subnets: list[str], cidrs: list[str] | None, expected: list[str]) -> None:
    assert Scope(subnets).targets(cidrs) == expected


def test_targets_of_a_slash_16_leave_out_its_network_and_broadcast() -> None:
    targets = Scope(["198.19.0.0/16"]).targets()
    assert len(targets) == 65_534
    assert targets[0] == "198.19.0.1" and targets[-1] == "198.19.255.254"


@pytest.mark.parametrize(
    ("subnets", "cidr"),
    [
        (["198.19.0.0/24"], "198.19.1.0/24"),
        (["198.19.0.0/24"], "198.19.0.0/23"),  # overlaps, but is not inside
        (["198.19.0.0/24"], "10.0.0.1"),
        ([], "198.19.0.1"),
    ],
)
def test_targets_refuse_what_lies_outside(subnets: list[str], cidr: str) -> None:
    with pytest.raises(ScopeError, match="outside the subnets ipguard may scan"):
        Scope(subnets).targets([cidr])


@pytest.mark.parametrize(
    ("ip", "inside"),
    [
        ("198.19.0.1", True),
        ("198.19.0.255", True),
        ("198.19.1.0", False),
        ("198.18.255.255", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
    ],
)
def test_check(ip: str, inside: bool) -> None:
    scope = Scope(["198.19.0.0/24"])
    assert (ip in scope) is inside
    if inside:
        assert scope.check(ip) == ip
    else:
        with pytest.raises(ScopeError, match=f"{ip} is outside .*198.19.0.0/24.*ipguard.toml"):
            scope.check(ip)


def test_check_all_v4_gives_packed_addresses_in_order_without_repeats() -> None:
    scope = Scope(["198.19.0.0/24"])
    assert scope.check_all_v4(["198.19.0.9", "198.19.0.1", "198.19.0.9"]) == [
        bytes([198, 19, 0, 9]),
        bytes([198, 19, 0, 1]),
    ]


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("198.19.1.1", ScopeError),
        ("10.1.2.3", ScopeError),
        ("198.19.0.300", InvalidValue),
        ("198.19.0", InvalidValue),  # inet_aton would take it as 198.19.0.0; we do not
        ("not an address", InvalidValue),
    ],
)
def test_check_all_v4_refuses_before_returning_anything(
    target: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        Scope(["198.19.0.0/24"]).check_all_v4(["198.19.0.1", target])


def test_ipv6_scope() -> None:
    scope = Scope(["2001:db8::/126"])
    assert scope.targets() == ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]
    assert scope.check("2001:db8:0::2") == "2001:db8::2"
    with pytest.raises(InvalidValue, match="IPv4 only"):
        scope.check_all_v4(["2001:db8::2"])


@pytest.mark.parametrize("text", ["198.19.0.0/33", "nonsense", "198.19.0.0/24/1"])
def test_bad_subnet_is_an_input_error(text: str) -> None:
    with pytest.raises(InvalidValue, match="CIDR"):
        Scope([text])


def test_a_request_too_large_to_expand_is_refused() -> None:
    with pytest.raises(InvalidValue, match="split the request"):
        Scope(["10.0.0.0/8"]).targets()
