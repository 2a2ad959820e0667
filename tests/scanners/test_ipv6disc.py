"""IPv6 discovery's frames against scapy's, and which replies it keeps (no network needed)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6ParamProblem,
    IPv6,
    IPv6ExtHdrDestOpt,
)
from scapy.layers.l2 import Ether

from ipguard.model import ScanRequest
from ipguard.scanners.ipv6disc import SNAPLEN, _NdpLink, _reply_filter, collect
from ipguard.scanners.ipv6wire import (
    addresses,
    build_echo,
    build_neighbor_solicitation,
    link_local,
    solicited_node,
)
from ipguard.scanners.phases import Collection
from ipguard.scanners.rawsock import InterfaceInfo
from ipguard.scanners.scope import Scope
from tests.bpf import run_filter

MAC, HOST, OTHER = "02:00:00:00:00:01", "02:00:00:00:00:aa", "02:00:00:00:00:bb"
LL, GLOBAL = "fe80::1", "2001:db8:20::1"
PREFIX = ipaddress.IPv6Network("2001:db8:20::/64")
IDENT = 0x4242


def test_neighbor_solicitation_goes_to_the_solicited_node_group_with_our_address():
    frame = Ether(build_neighbor_solicitation(MAC, LL, "2001:db8:20::abcd:1234"))
    assert solicited_node("2001:db8:20::abcd:1234") == "ff02::1:ffcd:1234"
    assert frame.dst == "33:33:ff:cd:12:34" and frame.src == MAC
    assert (frame[IPv6].src, frame[IPv6].dst, frame[IPv6].hlim) == (LL, "ff02::1:ffcd:1234", 255)
    assert frame[ICMPv6ND_NS].tgt == "2001:db8:20::abcd:1234"
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == MAC
    sent = frame[ICMPv6ND_NS].cksum
    del frame[ICMPv6ND_NS].cksum
    assert Ether(bytes(frame))[ICMPv6ND_NS].cksum == sent


def test_echo_goes_to_all_nodes_from_the_given_source():
    frame = Ether(build_echo(MAC, GLOBAL, IDENT, 1))
    assert frame.dst == "33:33:00:00:00:01"
    assert (frame[IPv6].src, frame[IPv6].dst) == (GLOBAL, "ff02::1")
    echo = frame[ICMPv6EchoRequest]
    assert (echo.id, echo.seq) == (IDENT, 1)
    sent = echo.cksum
    del frame[ICMPv6EchoRequest].cksum
    assert Ether(bytes(frame))[ICMPv6EchoRequest].cksum == sent


def test_addresses_link_local_first_and_none_still_tentative(tmp_path: Path):
    table = tmp_path / "if_inet6"
    table.write_text(
        "20010db8002000000000000000000001 02 40 00 80     eth0\n"
        "20010db8002000000000000000000002 02 40 00 c0     eth0\n"  # tentative
        "20010db8002000000000000000000003 02 40 00 88     eth0\n"  # DAD failed
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "fe800000000000000000000000000002 03 40 20 80     eth1\n"
    )
    assert addresses("eth0", table) == ["fe80::1", "2001:db8:20::1"]
    assert addresses("eth0", tmp_path / "absent") == []


@pytest.fixture
def link() -> Iterator[_NdpLink]:
    ends = socket.socketpair()
    iface = InterfaceInfo("eth0", 1, MAC, None, None, True, True)
    yield _NdpLink(ends[0], ends[1], [], iface, IDENT, [PREFIX])
    for end in ends:
        end.close()


def echo_reply(source: str, dest: str = LL, ident: int = IDENT, mac: str = HOST) -> bytes:
    return bytes(Ether(src=mac, dst=MAC) / IPv6(src=source, dst=dest) / ICMPv6EchoReply(id=ident))


def na(target: str, mac: str = HOST, option: str | None = None, hlim: int = 255) -> bytes:
    reply = (
        Ether(src=mac, dst=MAC) / IPv6(src="fe80::9", dst=LL, hlim=hlim) / ICMPv6ND_NA(tgt=target)
    )
    if option is not None:
        reply = reply / ICMPv6NDOptDstLLAddr(lladdr=option)
    return bytes(reply)


def test_echo_replies_count_for_the_source_they_answer(link: _NdpLink):
    reply = echo_reply("fe80::aa")
    assert link.source(reply) == ipaddress.IPv6Address(LL).packed
    who = link.admit(reply)
    assert who == ipaddress.IPv6Address("fe80::aa").packed + bytes.fromhex("0200000000aa")
    seen = link.observation(link.source(reply), reply, datetime.now(UTC), 0.5)
    assert (seen.ip, seen.mac, seen.source) == ("fe80::aa", HOST, "ndp")
    assert link.admit(echo_reply("2001:db8:20::aa", GLOBAL)) is not None  # inside the prefix


def test_replies_from_outside_the_prefixes_or_not_ours_are_refused(link: _NdpLink):
    assert link.admit(echo_reply("2001:db8:99::aa", GLOBAL)) is None  # the guard
    assert link.admit(echo_reply("fe80::aa", ident=IDENT + 1)) is None  # someone else's ping


def test_a_neighbor_advertisement_names_the_mac_of_its_option(link: _NdpLink):
    reply = na("2001:db8:20::66", option=OTHER)
    assert link.source(reply) == ipaddress.IPv6Address("2001:db8:20::66").packed
    assert link.admit(reply) == bytes.fromhex("0200000000bb")
    seen = link.observation(link.source(reply), reply, datetime.now(UTC), None)
    assert (seen.ip, seen.mac) == ("2001:db8:20::66", OTHER)
    assert link.admit(na("2001:db8:20::67")) == bytes.fromhex("0200000000aa")  # no option: frame
    assert link.admit(na("2001:db8:20::67", hlim=64)) is None  # routed: not from the link


def test_a_flood_of_claimants_for_one_address_is_bounded(link: _NdpLink):
    macs = [f"02:00:00:00:01:{n:02x}" for n in range(20)]
    kept = [link.admit(na("2001:db8:20::66", option=mac)) for mac in macs]
    assert sum(who is not None for who in kept) == 8
    assert link.admit(na("2001:db8:20::66", option=macs[0])) is not None  # a repeat still counts


def test_an_interface_without_ipv6_is_uncovered_when_asked_and_silent_otherwise():
    # "lo" has no link-local address: nothing is sent, the phase reads only the kernel's list.
    request = ScanRequest(site="s", interface="lo", subnets=("198.18.0.0/24", "2001:db8:20::/64"))
    scope, ready, stop = Scope(request.subnets), threading.Event(), threading.Event()
    seen = collect(request, scope, ready, stop, warn=True)
    assert not seen.ran and [item.range for item in seen.uncovered] == ["2001:db8:20::/64"]
    assert "lo has no IPv6 link-local address" in seen.uncovered[0].reason
    quiet = collect(request, scope, ready, stop, warn=False)
    assert not quiet.ran and quiet.uncovered == []


ALL_BUT_SERVICES = ("sweep", "dhcp", "proxy", "names", "evidence", "snmp", "ipv6")


@pytest.mark.parametrize(
    ("phases", "subnets", "warned"),
    [
        (("ipv6",), ("127.0.0.0/8",), ["fe80::/10"]),  # asked for by name
        (("ipv6",), ("127.0.0.0/8", "2001:db8:20::/64"), ["2001:db8:20::/64"]),
        (ALL_BUT_SERVICES, ("127.0.0.0/8",), []),  # a default run on IPv4 only: silent
        (ALL_BUT_SERVICES, ("127.0.0.0/8", "2001:db8:20::/64"), ["2001:db8:20::/64"]),
    ],
)
def test_the_phase_says_when_it_cannot_look(phases, subnets, warned):
    if link_local("lo") is not None:
        pytest.skip("lo has a link-local address here")
    collection = Collection(
        ScanRequest(site="s", interface="lo", subnets=subnets, phases=phases), None
    )
    collection.run_ipv6()  # reads the kernel's address list, sends nothing
    assert [item.range for item in collection.ipv6_uncovered] == warned
    assert collection.ran == set()  # did not run: resolves nothing


def test_the_kernel_filter_keeps_echo_replies_and_nas_to_our_mac_only():
    program = _reply_filter(MAC)
    assert run_filter(program, echo_reply("fe80::aa")) == SNAPLEN
    assert run_filter(program, na("2001:db8:20::66")) == SNAPLEN
    to_all = bytes(Ether(src=HOST, dst="33:33:00:00:00:01") / IPv6(src="fe80::aa", dst="ff02::1")
                   / ICMPv6ND_NA(tgt="fe80::aa"))  # fmt: skip
    assert run_filter(program, to_all) == 0  # an unsolicited NA: no answer, no flood
    other = bytes(Ether(src=HOST, dst=OTHER) / IPv6(src="fe80::aa", dst=LL) / ICMPv6EchoReply())
    assert run_filter(program, other) == 0  # someone else's ping
    request = bytes(Ether(src=HOST, dst=MAC) / IPv6(src="fe80::aa", dst=LL) / ICMPv6EchoRequest())
    assert run_filter(program, request) == 0


def test_the_erroneous_echo_carries_an_option_every_host_must_report_even_to_multicast():
    frame = Ether(build_echo(MAC, GLOBAL, IDENT, 1, erroneous=True))
    assert (frame.dst, frame[IPv6].src, frame[IPv6].dst) == ("33:33:00:00:00:01", GLOBAL, "ff02::1")
    (option,) = [o for o in frame[IPv6ExtHdrDestOpt].options if isinstance(o, HBHOptUnknown)]
    assert option.otype >> 6 == 0b10  # RFC 8200 4.2: discard, Parameter Problem to multicast too
    echo = frame[ICMPv6EchoRequest]
    assert (echo.id, echo.seq) == (IDENT, 1)
    sent = echo.cksum
    del frame[ICMPv6EchoRequest].cksum
    del frame[IPv6].plen
    assert Ether(bytes(frame))[ICMPv6EchoRequest].cksum == sent


def param_problem(source: str, sent_from: str = LL, ident: int = IDENT, code: int = 2) -> bytes:
    """What a host answers our erroneous echo with (it quotes the echo)."""
    quoted = Ether(build_echo(MAC, sent_from, ident, 0, erroneous=True))[IPv6]
    return bytes(
        Ether(src=HOST, dst=MAC)
        / IPv6(src=source, dst=sent_from)
        / ICMPv6ParamProblem(code=code, ptr=42)
        / quoted
    )


def test_a_parameter_problem_quoting_our_echo_is_a_host_that_ignores_multicast_echo(link):
    reply = param_problem("fe80::aa")
    assert link.source(reply) == ipaddress.IPv6Address(LL).packed
    assert link.admit(reply) is not None and link.admit(reply) != link.admit(echo_reply("fe80::aa"))
    seen = link.observation(link.source(reply), reply, datetime.now(UTC), 0.5)
    assert (seen.ip, seen.mac, seen.source) == ("fe80::aa", HOST, "ndp")
    assert link.admit(param_problem("2001:db8:20::aa", GLOBAL)) is not None
    assert link.admit(param_problem("2001:db8:99::aa", GLOBAL)) is None  # the guard
    assert link.admit(param_problem("fe80::aa", ident=IDENT + 1)) is None  # not our probe
    assert link.admit(param_problem("fe80::aa", code=1)) is None  # another problem
    assert run_filter(_reply_filter(MAC), reply) == SNAPLEN
