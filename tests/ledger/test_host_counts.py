"""A run's `hosts_seen`: IPv4 addresses that answered plus devices seen over IPv6 only."""

from __future__ import annotations

from datetime import UTC, datetime

from ipguard.ledger.runs import host_counts
from ipguard.model import Observation

NOW = datetime(2026, 11, 20, tzinfo=UTC)
A, B, C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"


def seen(ip: str, mac: str | None, source: str = "arp") -> Observation:
    """One reply."""
    return Observation(ip, mac, NOW, "ndp" if ":" in ip else source)


def test_a_dual_stack_host_counts_once_whatever_its_ipv6_addresses() -> None:
    replies = [
        seen("198.18.0.10", A),
        seen("fe80::a", A),
        seen("2001:db8:20:0:0:ff:fe00:a", A),
        seen("2001:db8:20::5e3d:9a1", A),  # its privacy address
        seen("fe80::b", B),  # IPv6 only: one host
        seen("2001:db8:20::b", B),
    ]
    assert host_counts(replies) == {"hosts_seen": 2, "ipv4_addresses": 1, "ipv6_addresses": 5}


def test_ipv4_counts_addresses_as_before() -> None:
    # Proxy ARP (one MAC, two addresses) and a routed reply without a MAC: addresses, as ever.
    replies = [seen("198.18.0.1", A), seen("198.18.0.2", A), seen("198.18.1.9", None, "icmp")]
    assert host_counts(replies) == {"hosts_seen": 3}
    assert host_counts([*replies, seen("198.18.0.2", C)]) == {"hosts_seen": 3}  # a duplicate


def test_a_mac_of_an_ipv4_reply_elsewhere_in_the_run_is_not_counted_again() -> None:
    replies = [seen("198.18.0.1", A), seen("198.18.0.2", A), seen("fe80::a", A), seen("fe80::c", C)]
    assert host_counts(replies)["hosts_seen"] == 3
