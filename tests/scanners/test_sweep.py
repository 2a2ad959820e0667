"""The sweep template's reply budget, fed the frames a flood sends (no network needed).

The lab tests (test_arp, test_icmp, tests/hardening/test_floods) run the same budget on the
receiver thread; here each limit is met exactly, for both protocols.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from ipguard.scanners import sweep
from ipguard.scanners.arp import _ArpLink
from ipguard.scanners.icmp import _IcmpLink
from ipguard.scanners.rawsock import InterfaceInfo
from ipguard.scanners.sweep import Link, ReplyBudget

TARGETS = [bytes([198, 19, 7, n]) for n in range(1, 5)]
IDENT = 0x4242


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two sockets for a link to hold; the budget never touches them."""
    left, right = socket.socketpair()
    with left, right:
        yield left, right


def echo_reply(source: bytes, ident: int = IDENT, kind: int = 0) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 44, 0, 0, 61, 1, 0, source, bytes([198, 19, 7, 254]))
    return ip + struct.pack("!BBHHH", kind, 0, 0, ident, 1) + bytes(16)


def arp_reply(source: bytes, mac: bytes) -> bytes:
    header = bytes.fromhex("000108000604") + b"\x00\x02"
    return bytes(12) + b"\x08\x06" + header + mac + source + bytes(6) + bytes([198, 19, 7, 254])


def icmp_link(pair: tuple[socket.socket, socket.socket]) -> Link:
    return _IcmpLink(pair[0], pair[1], TARGETS, IDENT)


def test_echo_replies_before_their_probe_or_not_ours_are_unsolicited(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    budget = ReplyBudget({ip: i for i, ip in enumerate(TARGETS)}, icmp_link(sockets))
    assert not budget(echo_reply(TARGETS[0]))  # not asked yet
    budget.asking(range(2))
    assert budget(echo_reply(TARGETS[0]))
    assert not budget(echo_reply(TARGETS[0], ident=IDENT + 1))  # another pinger's reply
    assert not budget(echo_reply(TARGETS[1], kind=8))  # an echo request, not a reply
    assert not budget(echo_reply(TARGETS[1])[:24])  # cut short
    assert not budget(echo_reply(bytes([198, 19, 7, 99])))  # never a target
    assert not budget(echo_reply(TARGETS[2]))  # a target, but not probed yet
    assert budget.ignored() == {"icmp_unsolicited": 6}


def test_echo_repeats_are_kept_up_to_the_same_bound_as_arp(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    budget = ReplyBudget({ip: i for i, ip in enumerate(TARGETS)}, icmp_link(sockets))
    budget.asking([0, 1])
    kept = [budget(echo_reply(TARGETS[0])) for _ in range(1 + sweep.MAX_REPEATS_PER_TARGET + 5)]
    assert kept.count(True) == 1 + sweep.MAX_REPEATS_PER_TARGET
    assert budget(echo_reply(TARGETS[1]))  # another target's quota is its own
    assert budget.ignored() == {"icmp_over_limit": 5}


def test_arp_keeps_eight_macs_per_address(sockets: tuple[socket.socket, socket.socket]) -> None:
    iface = InterfaceInfo("eth0", 2, "02:00:00:00:00:fe", "198.19.7.254", 24, True, True)
    link = _ArpLink(sockets[0], None, TARGETS, iface)  # type: ignore[arg-type]  # never sends
    budget = ReplyBudget({ip: i for i, ip in enumerate(TARGETS)}, link)
    budget.asking(range(len(TARGETS)))
    macs = [bytes([2, 0x66, 0, 0, 0, n]) for n in range(12)]
    kept = [budget(arp_reply(TARGETS[3], mac)) for mac in macs]
    assert kept == [True] * sweep.MAX_RESPONDERS_PER_TARGET + [False] * 4
    assert budget(arp_reply(TARGETS[3], macs[0]))  # a repeat of a kept pair
    assert budget.ignored() == {"arp_over_limit": 4}
