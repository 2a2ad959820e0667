"""Department pools: no overlaps, and the next free address handed out in order."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli


def test_overlapping_pools_are_refused(cli: Cli) -> None:
    assert cli("pools", "add", "math", "10.20.1.0/24").exit_code == 0
    result = cli("pools", "add", "physics", "10.20.1.128/25")
    assert result.exit_code == 2
    assert "pool 10.20.1.128/25 overlaps pool 10.20.1.0/24 of math" in result.stderr
    result = cli("pools", "add", "physics", "10.20.0.0/16")
    assert result.exit_code == 2 and "overlaps" in result.stderr


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.20.1.5/24", "host bits set; did you mean 10.20.1.0/24?"),
        ("10.20.1.0", "no prefix length"),
        ("banana", "not a network"),
    ],
)
def test_bad_cidrs_are_refused(cli: Cli, cidr: str, message: str) -> None:
    result = cli("pools", "add", "math", cidr)
    assert result.exit_code == 2 and message in result.stderr


def test_next_free_skips_network_taken_and_gateway_addresses(cli: Cli) -> None:
    cli("pools", "add", "math", "10.20.1.0/29")
    cli("ledger", "add", "10.20.1.1", "02:00:00:00:00:01", "--roles", "gateway")
    cli(
        "ledger", "edit", "10.20.1.1", "--status", "retired"
    )  # a retired gateway still keeps its address
    cli("ledger", "add", "10.20.1.2", "02:00:00:00:00:02")
    cli("ledger", "add", "10.20.1.4", "02:00:00:00:00:04")
    cli("ledger", "add", "10.20.1.3", "02:00:00:00:00:03", "--status", "retired")  # freed: reused
    assert cli("pools", "next-free", "math").stdout.strip() == "10.20.1.3"
    cli("ledger", "add", "10.20.1.3", "02:00:00:00:00:13")
    assert cli("pools", "next-free", "math").stdout.strip() == "10.20.1.5"
    cli("ledger", "add", "10.20.1.5", "02:00:00:00:00:05")
    cli("ledger", "add", "10.20.1.6", "02:00:00:00:00:06")
    result = cli("pools", "next-free", "math")  # .7 is the broadcast address
    assert (
        result.exit_code == 2
        and "no free address left in the pools of math (10.20.1.0/29)" in result.stderr
    )


def test_next_free_moves_on_to_the_next_pool_and_needs_a_pool(cli: Cli) -> None:
    cli("pools", "add", "math", "10.20.2.0/31")
    cli("pools", "add", "math", "10.20.3.0/24")
    cli("ledger", "add", "10.20.2.0", "02:00:00:00:00:01")
    assert cli("pools", "next-free", "math").stdout.strip() == "10.20.2.1"  # /31: both usable
    cli("ledger", "add", "10.20.2.1", "02:00:00:00:00:02")
    assert cli("pools", "next-free", "math").stdout.strip() == "10.20.3.1"
    result = cli("pools", "next-free", "art")
    assert result.exit_code == 2 and "department 'art' has no pool" in result.stderr


def test_list_remove_and_audit(cli: Cli) -> None:
    cli("pools", "add", "physics", "10.20.9.0/24", "--description", "labs")
    cli("pools", "add", "math", "10.20.1.0/24")
    rows = json.loads(cli("pools", "list", "--format", "json").stdout)
    assert [(r["department"], r["cidr"]) for r in rows] == [
        ("math", "10.20.1.0/24"),
        ("physics", "10.20.9.0/24"),
    ]
    assert cli("pools", "remove", "10.20.9.0/24").exit_code == 0
    assert cli("pools", "remove", "10.20.9.0/24").exit_code == 2
    entries = json.loads(cli("ledger", "history", "10.20.9.0/24", "--format", "json").stdout)
    assert [e["action"] for e in entries] == ["pool.add", "pool.remove"]


def test_next_free_skips_the_static_ipv6_addresses_of_active_records(cli: Cli) -> None:
    # An IPv6 pool handed out 2001:db8::1, which an active record holds as a static IPv6
    # address (`ledger add … --ipv6`): the new device would collide with it at once.
    cli("pools", "add", "v6", "2001:db8::/126")
    added = cli("ledger", "add", "198.18.0.9", "02:00:00:00:00:09", "--ipv6", "2001:db8::1")
    assert added.exit_code == 0, added.stderr
    assert cli("pools", "next-free", "v6").stdout.strip() == "2001:db8::2"
    cli("ledger", "remove", "198.18.0.9")  # retired: its addresses are free again
    assert cli("pools", "next-free", "v6").stdout.strip() == "2001:db8::1"
