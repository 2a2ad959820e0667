"""IPv6 extension headers before neighbour discovery and DHCPv6 (RA Guard evasion, RFC 7113):
the chain walker, the parsers behind it and the kernel filters, on frames crafted with scapy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from scapy.layers.dhcp6 import DHCP6_Advertise
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
)
from scapy.layers.l2 import Ether

from ipguard.scanners import ipv6disc, passive, rawsock
from ipguard.scanners.dhcp6wire import parse_advertise
from ipguard.scanners.ipv6 import _advertise_filter, _ra_filter
from ipguard.scanners.ipv6wire import (
    MAX_EXTENSIONS,
    parse_na,
    parse_ra,
    upper_layer,
    without_extensions,
)
from ipguard.scanners.passive import ArpClaim
from tests.bpf import run_filter

MAC, ROUTER, OTHER = "02:00:00:00:00:01", "02:00:00:00:00:fe", "02:00:00:00:00:bb"
RA_DST = "33:33:00:00:00:01"


def ra(*extensions, dst: str = RA_DST) -> bytes:
    """An RA from ROUTER announcing fd00:66::/64, behind ``extensions`` (scapy layers)."""
    packet = IPv6(src="fe80::fe", dst="ff02::1", hlim=255)
    for header in extensions:
        packet = packet / header
    message = ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptPrefixInfo(
        prefix="fd00:66::", prefixlen=64
    )
    return bytes(Ether(src=ROUTER, dst=dst) / packet / message)


def later_fragment() -> bytes:
    """The second fragment of an RA: its ICMPv6 header went in the first."""
    return bytes(
        Ether(src=ROUTER, dst=RA_DST)
        / IPv6(src="fe80::fe", dst="ff02::1", hlim=255)
        / IPv6ExtHdrFragment(nh=58, offset=2, id=7)
        / (b"\x00" * 32)
    )


EVASIONS = [
    ((), ()),
    ((IPv6ExtHdrHopByHop(),), ("hop-by-hop",)),  # fake_router6 -H
    ((IPv6ExtHdrFragment(id=7),), ("fragment",)),  # -F: a one-shot fragment header
    ((IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 60)]),), ("destination-options",)),
    ((IPv6ExtHdrRouting(),), ("routing",)),
    (
        (IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(id=9)),
        ("hop-by-hop", "destination-options", "fragment"),
    ),
]


@pytest.mark.parametrize(("extensions", "named"), EVASIONS)
def test_an_ra_behind_extension_headers_is_read_and_names_them(extensions, named):
    frame = ra(*extensions)
    advert = parse_ra(frame, datetime.now(UTC))
    assert advert is not None
    assert (advert.source_ip, advert.source_mac) == ("fe80::fe", ROUTER)
    assert (advert.prefixes, advert.router_lifetime) == (("fd00:66::/64",), 1800)
    assert advert.evasion == named
    assert run_filter(_ra_filter(), frame) > 0
    assert run_filter(passive.capture_filter(), frame) > 0  # watch reads it too
    assert passive.parse_frame(frame) == replace(advert, seen_at=None)


def test_the_walk_is_bounded_and_stays_within_the_frame():
    most = ra(*[IPv6ExtHdrDestOpt() for _ in range(MAX_EXTENSIONS)])
    assert parse_ra(most) is not None and run_filter(_ra_filter(), most) > 0
    too_many = ra(*[IPv6ExtHdrDestOpt() for _ in range(MAX_EXTENSIONS + 1)])
    assert upper_layer(too_many) is None and parse_ra(too_many) is None
    assert run_filter(_ra_filter(), too_many) == 0
    assert run_filter(passive.capture_filter(), too_many) == 0
    # A header whose length runs past the end of the frame: nothing is read, nothing raises.
    frame = bytearray(ra(IPv6ExtHdrHopByHop()))
    frame[14 + 40 + 1] = 255
    assert upper_layer(bytes(frame)) is None and parse_ra(bytes(frame)) is None
    assert run_filter(_ra_filter(), bytes(frame)) == 0
    for cut in range(14 + 40, len(frame)):  # every truncation refused, never an exception
        assert parse_ra(bytes(frame[:cut])) is None and parse_na(bytes(frame[:cut])) is None


def test_a_later_fragment_passes_the_filter_to_be_counted_but_is_not_parsed():
    frame = later_fragment()
    upper = upper_layer(frame)
    assert upper is not None and upper.later_fragment and upper.extensions == ("fragment",)
    assert parse_ra(frame) is None and without_extensions(frame) is None
    assert passive.parse_frame(frame) is None  # watch: counted as unparsed
    assert run_filter(_ra_filter(), frame) > 0  # the probe counts it as ignored
    udp = bytes(
        Ether(src=ROUTER, dst=RA_DST)
        / IPv6(src="fe80::fe", dst="ff02::1")
        / IPv6ExtHdrFragment(nh=17, offset=2)
        / (b"\x00" * 16)
    )
    assert run_filter(_ra_filter(), udp) == 0  # a fragment of something else is not
    # fake_router6 -D: the first fragment's header chain goes on into the second fragment.
    chain = bytes(
        Ether(src=ROUTER, dst=RA_DST)
        / IPv6(src="fe80::fe", dst="ff02::1")
        / IPv6ExtHdrFragment(nh=60, m=1, id=3)
        / IPv6ExtHdrDestOpt(nh=58, options=[PadN(optdata=b"\0" * 200)])
    )[: 14 + 40 + 8 + 64]
    assert parse_ra(chain) is None and run_filter(_ra_filter(), chain) == 0


def test_a_neighbor_advertisement_behind_a_hop_by_hop_header():
    frame = bytes(
        Ether(src=OTHER, dst=MAC)
        / IPv6(src="fe80::9", dst="fe80::1", hlim=255)
        / IPv6ExtHdrHopByHop()
        / ICMPv6ND_NA(tgt="2001:db8:20::66")
        / ICMPv6NDOptDstLLAddr(lladdr=OTHER)
    )
    assert parse_na(frame) == ("2001:db8:20::66", OTHER)
    assert passive.parse_frame(frame) == ArpClaim("2001:db8:20::66", OTHER, "advert")
    assert run_filter(passive.capture_filter(), frame) > 0
    program = ipv6disc._reply_filter(MAC)
    assert run_filter(program, frame) == ipv6disc.SNAPLEN
    assert run_filter(ipv6disc._reply_filter(ROUTER), frame) == 0  # not to us
    plain = without_extensions(frame)
    assert plain is not None and plain[14 + 6] == 58 and plain[14 + 40] == 136
    assert parse_na(plain) == ("2001:db8:20::66", OTHER)


@pytest.fixture
def link() -> Iterator[ipv6disc._NdpLink]:
    ends = socket.socketpair()
    iface = rawsock.InterfaceInfo("eth0", 1, MAC, None, None, True, True)
    yield ipv6disc._NdpLink(ends[0], ends[1], [], iface, 1, [])
    for end in ends:
        end.close()


def test_the_scans_discovery_reads_an_na_behind_extension_headers(link):
    frame = bytes(
        Ether(src=OTHER, dst=MAC)
        / IPv6(src="fe80::9", dst="fe80::1", hlim=255)
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(id=4)
        / ICMPv6ND_NA(tgt="fe80::66")
        / ICMPv6NDOptDstLLAddr(lladdr=OTHER)
    )
    target = link.source(frame)
    assert link.admit(frame) == bytes.fromhex(OTHER.replace(":", ""))
    seen = link.observation(target, frame, datetime.now(UTC), None)
    assert (seen.ip, seen.mac) == ("fe80::66", OTHER)
    assert link.admit(later_fragment()) is None


def test_a_dhcp6_advertise_behind_a_hop_by_hop_header():
    frame = bytes(
        Ether(src=OTHER, dst=MAC)
        / IPv6(src="fe80::bb", dst="fe80::1")
        / IPv6ExtHdrHopByHop()
        / UDP(sport=547, dport=546)
        / DHCP6_Advertise(trid=0x123456)
    )
    server = parse_advertise(frame, 0x123456)
    assert server is not None and server.server_mac == OTHER
    assert run_filter(_advertise_filter(), frame) > 0
    assert run_filter(_ra_filter(), frame) == 0


@pytest.mark.parametrize(
    "program",
    [_ra_filter(), _advertise_filter(), passive.capture_filter(), ipv6disc._reply_filter(MAC)],
)
def test_the_kernel_accepts_each_filter(program):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        rawsock.attach_filter(sock, program)  # the kernel's checker: jumps, memory, the last ret
