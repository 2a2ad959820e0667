"""The IPv6 wire format against scapy's: what we send checks out, what routers send is read."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Advertise,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptServerId,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptRouteInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from ipguard.scanners.dhcp6wire import build_dhcp6_solicit, parse_advertise
from ipguard.scanners.ipv6wire import (
    build_solicitation,
    link_local,
    parse_ra,
)

MAC, ROUTER, OTHER = "02:00:00:00:00:01", "02:00:00:00:00:fe", "02:00:00:00:00:aa"
LL, ROUTER_LL = "fe80::1", "fe80::fe"


def test_router_solicitation_is_valid_icmpv6():
    frame = Ether(build_solicitation(MAC, LL))
    assert frame.dst == "33:33:00:00:00:02" and frame.src == MAC
    ip = frame[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == (LL, "ff02::2", 255)
    sent = frame[ICMPv6ND_RS].cksum
    del frame[ICMPv6ND_RS].cksum
    assert Ether(bytes(frame))[ICMPv6ND_RS].cksum == sent  # scapy computes the same checksum
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == MAC


def test_dhcp6_solicit_is_valid_udp_with_a_duid_ll():
    frame = Ether(build_dhcp6_solicit(MAC, LL, OTHER, 0xABCDEF))
    assert frame.dst == "33:33:00:01:00:02"
    assert (frame[IPv6].dst, frame[UDP].sport, frame[UDP].dport) == ("ff02::1:2", 546, 547)
    sent = frame[UDP].chksum
    del frame[UDP].chksum
    assert Ether(bytes(frame))[UDP].chksum == sent
    solicit = frame[UDP].payload
    assert solicit.msgtype == 1 and solicit.trid == 0xABCDEF
    assert solicit["DHCP6OptClientId"].duid.lladdr == OTHER


def ra_frame(*options, src_mac: str = ROUTER, flags: dict | None = None) -> bytes:
    ra = ICMPv6ND_RA(routerlifetime=1800, **(flags or {}))
    packet = Ether(src=src_mac, dst="33:33:00:00:00:01") / IPv6(src=ROUTER_LL, dst="ff02::1") / ra
    for option in options:
        packet = packet / option
    return bytes(packet)


def test_router_advertisement_gives_prefixes_flags_lifetime_and_source():
    frame = ra_frame(
        ICMPv6NDOptSrcLLAddr(lladdr=ROUTER),
        ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64),
        ICMPv6NDOptPrefixInfo(prefix="fd00:5::", prefixlen=64),
        flags={"M": 1, "O": 0},
    )
    advert = parse_ra(frame)
    assert advert is not None
    assert (advert.source_ip, advert.source_mac, advert.frame_mac) == (ROUTER_LL, ROUTER, "")
    assert advert.prefixes == ("2001:db8:1::/64", "fd00:5::/64")
    assert (advert.managed, advert.other, advert.router_lifetime) == (True, False, 1800)


def test_the_link_layer_option_names_the_router_when_the_frame_source_differs():
    advert = parse_ra(ra_frame(ICMPv6NDOptSrcLLAddr(lladdr=OTHER), src_mac=ROUTER))
    assert advert is not None
    assert (advert.source_mac, advert.frame_mac, advert.prefixes) == (OTHER, ROUTER, ())
    bare = parse_ra(ra_frame())  # no option: the frame's source
    assert bare is not None and bare.source_mac == ROUTER


def test_hostile_frames_are_refused_not_raised():
    good = ra_frame(ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64))
    for cut in range(len(good)):
        parse_ra(good[:cut])  # never raises
    zero_option = bytearray(good)
    zero_option[14 + 40 + 16 + 1] = 0  # an option of length 0 invalidates the RA
    assert parse_ra(bytes(zero_option)) is None
    assert parse_ra(build_solicitation(MAC, LL)) is None  # an RS is not an RA


def test_an_ra_also_gives_the_dns_servers_and_routes_hosts_take_from_it():
    # What fake_router6 sends beside its prefix: DNS servers (RFC 8106) and routes (RFC 4191),
    # which hosts take from any RA, a router lifetime of 0 or not.
    frame = ra_frame(
        ICMPv6NDOptRDNSS(dns=["fd00:66::53", "2001:db8:66::53"], lifetime=600),
        ICMPv6NDOptRouteInfo(plen=0, prefix="::"),
        ICMPv6NDOptRouteInfo(plen=3, prefix="2000::"),
        ICMPv6NDOptRouteInfo(plen=64, prefix="2001:db8:77::"),
    )
    advert = parse_ra(frame)
    assert advert is not None and advert.prefixes == ()
    assert advert.dns_servers == ("fd00:66::53", "2001:db8:66::53")
    assert advert.routes == ("::/0", "2000::/3", "2001:db8:77::/64")
    lying = bytearray(ra_frame(ICMPv6NDOptRouteInfo(plen=64, prefix="2001:db8:77::")))
    lying[14 + 40 + 16 + 2] = 200  # a prefix length past 128: that option is skipped
    skipped = parse_ra(bytes(lying))
    assert skipped is not None and skipped.routes == ()


def test_a_prefix_with_valid_lifetime_0_is_withdrawn_not_announced():
    # RFC 4192 renumbering, or a home router whose ISP changed its prefix (odhcpd): the old
    # prefix is announced with valid lifetime 0 so that hosts drop it.
    advert = parse_ra(
        ra_frame(
            ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64),
            ICMPv6NDOptPrefixInfo(prefix="fd00:5::", prefixlen=64, validlifetime=0,
                                  preferredlifetime=0),
        )
    )  # fmt: skip
    assert advert is not None
    assert (advert.prefixes, advert.withdrawn) == (("2001:db8:1::/64",), ("fd00:5::/64",))


def advertise(transaction: int) -> bytes:
    duid = DUID_LL(lladdr=ROUTER)
    ia = DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr="fd00:5::100")])
    packet = (
        Ether(src=ROUTER, dst=MAC)
        / IPv6(src=ROUTER_LL, dst=LL)
        / UDP(sport=547, dport=546)
        / DHCP6_Advertise(trid=transaction)
        / DHCP6OptServerId(duid=duid)
        / ia
    )
    return bytes(packet)


def test_advertise_for_our_transaction_only():
    advert = parse_advertise(advertise(0x123456), 0x123456)
    assert advert is not None
    assert (advert.server_ip, advert.server_mac, advert.addresses) == (
        ROUTER_LL,
        ROUTER,
        ("fd00:5::100",),
    )
    assert advert.server_duid.endswith(ROUTER.replace(":", ""))
    assert parse_advertise(advertise(0x123457), 0x123456) is None
    frame = advertise(0x123456)
    for cut in range(len(frame)):
        parse_advertise(frame[:cut], 0x123456)  # never raises


def test_link_local_comes_from_the_kernels_table(tmp_path: Path):
    table = tmp_path / "if_inet6"
    table.write_text(
        "20010db8000000000000000000000001 02 40 00 80     eth0\n"
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "fe800000000000000000000000000002 03 40 20 80     eth1\n"
    )
    assert link_local("eth0", table) == "fe80::1"
    assert link_local("eth2", table) is None
    assert link_local("eth0", tmp_path / "absent") is None
