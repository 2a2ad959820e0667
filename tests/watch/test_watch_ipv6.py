"""IPv6 frames the watcher reads: Neighbor Advertisements as claims, Router Advertisements judged.

The frames are built with scapy, as a host or an attack tool would send them; parsing is the ipv6
phase's own (scanners.ipv6wire), judging the scan's policies. The kernel filter that admits them
is tested by the lab test (test_watch_ipv6_lab.py), on a real socket.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Advertise,
    DHCP6_Reply,
    DHCP6_Solicit,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptServerId,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether

from ipguard.config import PolicySettings
from ipguard.model import Binding, Dhcp6Advert, Role, RouterAdvert
from ipguard.scanners.passive import ArpClaim, capture_filter, parse_frame
from ipguard.watch.judge import Judge
from tests.bpf import run_filter

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GW_MAC, PC_MAC, EVIL = "02:18:00:00:00:01", "02:18:00:00:00:20", "00:16:3e:00:00:66"
STATIC = "2001:db8:20::20"
LEDGER = (
    Binding("198.18.0.1", GW_MAC, roles=frozenset({Role.GATEWAY, Role.ROUTER})),
    Binding("198.18.0.20", PC_MAC, owner="李伟", ipv6=(STATIC,)),
)


def na(
    target: str, mac: str, *, option: str | None = None, hlim: int = 255, code: int = 0
) -> bytes:
    """An unsolicited NA to all nodes, as `fake_advertise6` or a host's NA sends it."""
    packet = Ether(src=mac, dst="33:33:00:00:00:01") / IPv6(
        src="fe80::1", dst="ff02::1", hlim=hlim
    ) / ICMPv6ND_NA(tgt=target, R=0, S=0, O=1, code=code)  # fmt: skip
    if option is not None:
        packet = packet / ICMPv6NDOptDstLLAddr(lladdr=option)
    return bytes(packet)


def ns(
    source: str,
    mac: str,
    *,
    target: str = "2001:db8:20::1",
    option: bool = True,
    hlim: int = 255,
    dst: str = "ff02::1:ff00:1",
) -> bytes:
    """A Neighbor Solicitation, as a host resolving ``target`` (or DAD, from ::) sends it."""
    packet = Ether(src=mac, dst="33:33:ff:00:00:01") / IPv6(src=source, dst=dst, hlim=hlim)
    packet = packet / ICMPv6ND_NS(tgt=target)
    if option:
        packet = packet / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    return bytes(packet)  # fmt: skip


def ra(mac: str, prefix: str, *, source: str = "fe80::1", option: str = "") -> bytes:
    """A Router Advertisement with a source link-layer option (``mac``'s unless given) and one
    prefix."""
    return bytes(
        Ether(src=mac, dst="33:33:00:00:00:01")
        / IPv6(src=source, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(M=1, routerlifetime=1800)
        / ICMPv6NDOptSrcLLAddr(lladdr=option or mac)
        / ICMPv6NDOptPrefixInfo(prefix=prefix.split("/")[0], prefixlen=int(prefix.split("/")[1]))
    )


@pytest.mark.parametrize(
    ("frame", "claim"),
    [
        (na(STATIC, EVIL, option=EVIL), ArpClaim(STATIC, EVIL, "advert")),
        # The target link-layer option names the claimant, whoever put the frame on the wire.
        (na(STATIC, PC_MAC, option=EVIL), ArpClaim(STATIC, EVIL, "advert")),
        (na("2001:DB8:20:0::9", EVIL), ArpClaim("2001:db8:20::9", EVIL, "advert")),
        # RFC 4861 7.1.2: routed from elsewhere, a code, a multicast target: not an NA.
        (na(STATIC, EVIL, option=EVIL, hlim=64), None),
        (na(STATIC, EVIL, option=EVIL, code=1), None),
        (na("ff02::1", EVIL, option=EVIL), None),
        (na(STATIC, EVIL, option="01:00:5e:00:00:01"), None),  # a group MAC is no device
        (na(STATIC, EVIL, option=EVIL)[:70], None),  # cut short
    ],
)
def test_neighbor_advertisements_become_claims(frame: bytes, claim: ArpClaim | None) -> None:
    assert parse_frame(frame) == claim


def test_router_advertisements_are_read_as_the_ipv6_phase_reads_them() -> None:
    advert = parse_frame(ra(EVIL, "2001:db8:61::/64"), NOW)
    assert isinstance(advert, RouterAdvert)
    assert (advert.source_ip, advert.source_mac, advert.prefixes) == (
        "fe80::1",
        EVIL,
        ("2001:db8:61::/64",),
    )
    assert (advert.managed, advert.router_lifetime) == (True, 1800)


def judge() -> Judge:
    made = Judge(
        site="lab",
        subnets=["198.18.0.0/24", "2001:db8:20::/64"],
        policy=PolicySettings(hostname_rule=""),
        duplicate_window=10.0,
    )
    made.load(LEDGER, {})
    return made


def found(frames: list[bytes]) -> set[tuple[str, str | None, str | None, str]]:
    items = [(float(n), parsed) for n, frame in enumerate(frames) if (parsed := parse_frame(frame))]
    return {
        (f.kind.value, f.ip, f.mac, f.severity.value) for f in judge().judge(items, NOW).findings
    }


def test_an_advertisement_claiming_a_static_ipv6_from_another_mac_is_a_mismatch() -> None:
    assert found([na(STATIC, PC_MAC, option=PC_MAC)]) == set()
    assert found([na(STATIC, EVIL, option=EVIL)]) == {("ip-mac-mismatch", STATIC, EVIL, "high")}
    # Out of the subnets (another prefix): not the watcher's to judge.
    assert found([na("2001:db8:99::1", EVIL)]) == set()


def test_link_local_claims_count_where_the_links_ipv6_is_watched() -> None:
    # An IPv6 prefix in the subnets: as in the scan's ipv6 phase, a link-local address counts (a
    # host may hold no other; the scan reports an unregistered one at it).
    assert found([ns("fe80::66", EVIL)]) == {("unregistered-host", "fe80::66", EVIL, "high")}
    assert found([ns("fe80::20", PC_MAC)]) == set()  # a registered MAC: any address is its own
    # A watcher of IPv4 only leaves them alone.
    ipv4_only = Judge(
        site="lab",
        subnets=["198.18.0.0/24"],
        policy=PolicySettings(hostname_rule=""),
        duplicate_window=10.0,
    )
    ipv4_only.load(LEDGER, {})
    assert ipv4_only.judge(claims([ns("fe80::66", EVIL)]), NOW).findings == []


def test_router_advertisements_from_a_non_router_or_of_a_foreign_prefix_are_rogue() -> None:
    assert found([ra(GW_MAC, "2001:db8:20::/64")]) == set()
    assert found([ra(EVIL, "2001:db8:20::/64", source="fe80::66")]) == {
        ("rogue-ra", "fe80::66", EVIL, "critical")
    }
    assert found([ra(GW_MAC, "fd00:60::/64")]) == {("rogue-ra", "fe80::1", GW_MAC, "high")}


def test_an_ra_in_the_routers_name_from_another_mac_is_judged_beside_the_routers_own() -> None:
    # The registered router's RA, then within the minute the same RA (its link-local address,
    # prefix and link-layer option) from another MAC: that one is news, not a repeat.
    spoofed = ra(EVIL, "2001:db8:20::/64", option=GW_MAC)
    assert found([ra(GW_MAC, "2001:db8:20::/64"), spoofed]) == {
        ("rogue-ra", "fe80::1", EVIL, "critical")
    }


def claims(frames: list[bytes], start: float = 0.0) -> list[tuple[float, ArpClaim]]:
    return [(start + n, parsed) for n, frame in enumerate(frames) if (parsed := parse_frame(frame))]


def subjects(made: Judge, frames: list[bytes], start: float, now: datetime) -> set[str]:
    """The findings' subjects, remembered as the service does for the findings it opened."""
    found = [f for f in made.judge(claims(frames, start), now).findings]
    made.note_first_seen({(f.kind.value, f.subject): now for f in found})
    return {f"{f.kind.value} {f.subject}" for f in found}


DAY = 86_400.0
ARP_REQUEST = bytes(Ether(src=EVIL) / ARP(hwsrc=EVIL, psrc="198.18.0.66", pdst="198.18.0.1"))
STRANGER_LL = "fe80::216:3eff:fe00:66"


def test_a_strangers_daily_privacy_address_stays_one_finding() -> None:
    # An unregistered PC seen only over IPv6: today's temporary address opens the finding,
    # tomorrow's (RFC 8981: a new one every day) is folded into it, never a finding of its own.
    made = judge()
    first = subjects(made, [na("2001:db8:20::a1", EVIL, option=EVIL)], 0.0, NOW)
    assert first == {f"unregistered-host 2001:db8:20::a1|{EVIL}|"}
    tomorrow = NOW + timedelta(days=1)
    later = made.judge(claims([na("2001:db8:20::b2", EVIL, option=EVIL)], DAY), tomorrow)
    (finding,) = later.findings
    assert finding.kind.value == "unregistered-host"
    assert finding.subject == f"2001:db8:20::a1|{EVIL}|"
    assert finding.detail["ipv6"] == ["2001:db8:20::b2"]
    assert [s.ip for s in later.sightings] == ["2001:db8:20::b2"]  # what was heard, stored


@pytest.mark.parametrize(
    ("first", "subject"),
    [
        # Its IPv4 address, as a scan reports a dual-stack stranger
        (ARP_REQUEST, "198.18.0.66"),
        # its link-local address (heard, never judged: the scan's subject for an IPv6-only host)
        (na(STRANGER_LL, EVIL, option=EVIL), STRANGER_LL),
    ],
    ids=["ipv4", "link-local"],
)
def test_a_strangers_ipv6_addresses_fold_into_its_stable_address(first: bytes, subject: str):
    made = judge()
    subjects(made, [first], 0.0, NOW)
    later = subjects(made, [na("2001:db8:20::a1", EVIL, option=EVIL)], DAY, NOW)
    assert later == {f"unregistered-host {subject}|{EVIL}|"}


def test_a_finding_the_scan_opened_at_the_link_local_address_takes_the_watchers_claims() -> None:
    made = judge()
    made.load(LEDGER, {("unregistered-host", f"{STRANGER_LL}|{EVIL}|"): NOW})
    found = subjects(made, [na("2001:db8:20::a1", EVIL, option=EVIL)], 0.0, NOW)
    assert found == {f"unregistered-host {STRANGER_LL}|{EVIL}|"}


def kinds(made: Judge, frames: list[bytes], start: float) -> set[tuple[str, str | None, str]]:
    found = made.judge(claims(frames, start), NOW).findings
    return {(f.kind.value, f.mac, f.severity.value) for f in found if f.ip == "fe80::1"}


def test_an_na_for_the_routers_link_local_address_from_another_mac_spoofs_the_gateway() -> None:
    # Hosts reach their default router at the address its RAs come from (fe80::1 here);
    # parasite6 and fake_advertise6 claim it with their own MAC, like ARP spoofing the gateway.
    made = judge()
    spoof = na("fe80::1", EVIL, option=EVIL)
    # No RA heard yet: nothing says the address is the router's, only that a stranger holds it.
    assert kinds(made, [spoof], 0.0) == {("unregistered-host", EVIL, "high")}
    assert kinds(made, [ra(GW_MAC, "2001:db8:20::/64"), na("fe80::1", GW_MAC)], 100.0) == set()
    assert ("ip-mac-mismatch", EVIL, "critical") in kinds(made, [spoof], 200.0)
    made.load(LEDGER, {})  # a ledger reload keeps what the RAs taught
    assert ("ip-mac-mismatch", EVIL, "critical") in kinds(made, [spoof], 300.0)
    assert made.records == LEDGER  # the ledger itself is left as it was


def test_only_a_registered_routers_own_ra_teaches_its_address() -> None:
    made = judge()
    spoofed = ra(EVIL, "2001:db8:20::/64", option=GW_MAC)  # the frame is not the router's
    kinds(made, [spoofed, ra(EVIL, "2001:db8:20::/64", source="fe80::66")], 0.0)
    later = [na("fe80::1", PC_MAC, option=PC_MAC), na("fe80::66", PC_MAC, option=PC_MAC)]
    found = made.judge(claims(later, 100.0), NOW).findings
    assert not [f for f in found if f.kind.value == "ip-mac-mismatch"]


@pytest.mark.parametrize(
    ("frame", "claim"),
    [
        # A host resolving a neighbour says where its own (source) address is, as an ARP request
        # does: RFC 4861 7.2.3 makes every receiver take the source link-layer option.
        (ns("2001:db8:20::a1", EVIL), ArpClaim("2001:db8:20::a1", EVIL, "solicit")),
        (ns("2001:db8:20::a1", EVIL, option=False), ArpClaim("2001:db8:20::a1", EVIL, "solicit")),
        # fake_solicitate6: to all nodes, a spoofed source, the attacker's MAC
        (ns(STATIC, EVIL, dst="ff02::1"), ArpClaim(STATIC, EVIL, "solicit")),
        # Duplicate address detection (from ::) is a question, not a claim: the address is not
        # the host's until nobody answers, and a host whose address is taken gives it up.
        (ns("::", EVIL, target=STATIC, option=False), None),
        (ns("2001:db8:20::a1", EVIL, hlim=64), None),  # not from the link
        (ns("2001:db8:20::a1", EVIL, target="ff02::1"), None),  # a multicast target: invalid
    ],
    ids=["option", "no-option", "fake-solicitate6", "dad", "routed", "multicast-target"],
)
def test_neighbor_solicitations_claim_their_source_address(frame: bytes, claim) -> None:
    assert parse_frame(frame) == claim


def test_a_solicitation_from_a_registered_static_ipv6_by_another_mac_is_a_mismatch() -> None:
    assert found([ns(STATIC, PC_MAC)]) == set()
    assert found([ns(STATIC, EVIL, dst="ff02::1")]) == {("ip-mac-mismatch", STATIC, EVIL, "high")}
    assert found([ns("::", EVIL, target=STATIC, option=False)]) == set()  # DAD: no claim


def dhcp6(mac: str, message=DHCP6_Advertise, *, sport: int = 547, dport: int = 546) -> bytes:
    """A DHCPv6 server's answer to a client's SOLICIT (mitm6 sends these to every Windows PC)."""
    answer = message(trid=0x4242) / DHCP6OptServerId(duid=DUID_LL(lladdr=mac))
    answer = answer / DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr="fe80::8301:1")])
    return bytes(
        Ether(src=mac, dst="02:18:00:00:00:20")
        / IPv6(src="fe80::66", dst="fe80::20")
        / UDP(sport=sport, dport=dport)
        / answer
    )


def test_a_dhcpv6_server_answering_a_client_is_judged_as_the_probe_judges_it() -> None:
    advert = parse_frame(dhcp6(EVIL), NOW)
    assert isinstance(advert, Dhcp6Advert)
    assert (advert.server_ip, advert.server_mac, advert.addresses) == (
        "fe80::66",
        EVIL,
        ("fe80::8301:1",),
    )
    assert parse_frame(dhcp6(EVIL, DHCP6_Reply)) is not None  # the lease itself
    client = dhcp6(PC_MAC, DHCP6_Solicit, sport=546, dport=547)
    assert parse_frame(client) is None  # a client asking: no server
    program = capture_filter()
    assert run_filter(program, dhcp6(EVIL)) and not run_filter(program, client)
    assert found([dhcp6(EVIL)]) == {("rogue-dhcp", "fe80::66", EVIL, "critical")}
    assert found([dhcp6(GW_MAC)]) == {("rogue-dhcp", "fe80::66", GW_MAC, "critical")}
    served = (*LEDGER, Binding("198.18.0.53", EVIL, roles=frozenset({Role.DHCP_SERVER})))
    made = judge()
    made.load(served, {})
    assert made.judge(claims([dhcp6(EVIL)]), NOW).findings == []
