"""rogue-ra and DHCPv6 rogue-dhcp: who may advertise routes and addresses on the link."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipguard.model import Dhcp6Advert, RouterAdvert
from tests.policies.helpers import (
    IP1,
    IP2,
    IP3,
    SUBNET,
    A,
    B,
    C,
    X,
    Y,
    device,
    findings,
    judge,
    only,
    settings,
)

LL_A, LL_X, LL_Y = "fe80::211:22ff:fe33:440a", "fe80::a8bb:ccff:fedd:ee01", "fe80::2"
V6 = "2001:db8:20::/48"


def ra(ip: str, mac: str, *prefixes: str, lifetime: int = 1800, **flags: bool) -> RouterAdvert:
    return RouterAdvert(ip, mac, lifetime, flags.get("managed", False), flags.get("other", False),
                        tuple(prefixes))  # fmt: skip


RA_CASES = [
    pytest.param(
        [device(IP1, A, "router")], [ra(LL_A, A, "2001:db8:20:1::/64")], set(), id="the router"
    ),
    pytest.param(
        [device(IP1, A, "gateway")], [ra(LL_A, A, "2001:db8:20:1::/64")], set(), id="gateway"
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [ra(LL_X, X, "2001:db8:20:1::/64")],
        {("rogue-ra", LL_X, X, None, "critical")},
        id="unregistered MAC",
    ),
    pytest.param(
        [device(IP1, A, "router"), device(IP2, B)],
        [ra(LL_A, A, "2001:db8:20:1::/64"), ra("fe80::b", B, "fd00:1::/64")],
        {("rogue-ra", "fe80::b", B, None, "critical")},
        id="registered PC without the role",
    ),
    pytest.param(
        [device(IP1, A, "router", status="suspended")],
        [ra(LL_A, A, "2001:db8:20:1::/64")],
        {("rogue-ra", LL_A, A, None, "critical")},
        id="suspended router",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [ra(LL_A, A, "2001:db8:20:1::/64", "fd00:99::/64")],
        {("rogue-ra", LL_A, A, None, "high")},
        id="registered router announcing a foreign prefix",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [ra(LL_A, A, lifetime=0)],
        set(),
        id="registered router without prefixes",
    ),
    pytest.param(
        [],
        [ra(LL_X, X, "fd00:1::/64"), ra(LL_X, X, "fd00:1::/64"), ra(LL_Y, Y)],
        {("rogue-ra", LL_X, X, None, "critical"), ("rogue-ra", LL_Y, Y, None, "critical")},
        id="one finding per router, several routers",
    ),
]


@pytest.mark.parametrize(("ledger", "adverts", "expected"), RA_CASES)
def test_rogue_ra(ledger, adverts, expected):
    assert judge(ledger, [], subnets=(SUBNET, V6), router_adverts=tuple(adverts)) == expected


def test_foreign_prefix_needs_ipv6_subnets_to_compare_with():
    # No IPv6 prefix in [scan] subnets: every prefix a registered router announces is foreign.
    found = judge([device(IP1, A, "router")], [], router_adverts=(ra(LL_A, A, "2001:db8::/64"),))
    assert found == {("rogue-ra", LL_A, A, None, "high")}


def test_rogue_ra_detail_and_override():
    adverts = (
        ra(LL_X, X, "fd00:1::/64", managed=True, lifetime=1800),
        ra(LL_X, X, "fd00:2::/64", other=True, lifetime=600),
    )
    found = findings([], [], settings(severity={"rogue-ra": "medium"}), router_adverts=adverts)
    finding = only(found, "rogue-ra")
    assert finding.severity.value == "medium"
    detail = finding.detail
    assert detail["prefixes"] == ["fd00:1::/64", "fd00:2::/64"]
    assert (detail["managed"], detail["other"], detail["router_lifetime"]) == (True, True, 600)
    assert (detail["source_ip"], detail["source_mac"], detail["adverts"]) == (LL_X, X, 2)
    assert "lacks role router or gateway" in finding.summary and LL_X in finding.summary
    assert "evasion" not in detail and "RA Guard" not in finding.summary  # plain RAs


def test_an_ra_behind_extension_headers_names_the_evasion():
    plain = ra(LL_X, X, "fd00:1::/64")
    adverts = (
        plain,
        replace(plain, evasion=("hop-by-hop",)),
        replace(plain, evasion=("fragment",)),
    )
    finding = only(findings([], [], settings(), router_adverts=adverts), "rogue-ra")
    assert finding.detail["evasion"] == ["fragment", "hop-by-hop"]
    assert "behind fragment, hop-by-hop headers (RA Guard evasion)" in finding.summary
    # The registered router's own RAs stay silent, extension headers or not.
    mine = replace(ra(LL_A, A, "2001:db8:20:1::/64"), evasion=("hop-by-hop",))
    assert (
        judge([device(IP1, A, "router")], [], subnets=(SUBNET, V6), router_adverts=(mine,)) == set()
    )


def test_a_lowered_override_also_caps_the_foreign_prefix_case():
    policy = settings(severity={"rogue-ra": "low"})
    found = findings(
        [device(IP1, A, "router")], [], policy, router_adverts=(ra(LL_A, A, "fd00::/64"),)
    )
    assert only(found, "rogue-ra").severity.value == "low"


def adv(ip: str, mac: str, *addresses: str) -> Dhcp6Advert:
    return Dhcp6Advert(ip, mac, tuple(addresses), server_duid="000300010211")


DHCP6_CASES = [
    pytest.param([device(IP1, A, "dhcp-server")], [adv(LL_A, A)], set(), id="the server"),
    pytest.param(
        [device(IP1, A, "dhcp-server")],
        [adv(LL_X, X, "fd00::100")],
        {("rogue-dhcp", LL_X, X, None, "critical")},
        id="unregistered server",
    ),
    pytest.param(
        [device(IP1, A, "router")],
        [adv(LL_A, A, "fd00::100")],
        {("rogue-dhcp", LL_A, A, None, "critical")},
        id="registered router without the role",
    ),
]


@pytest.mark.parametrize(("ledger", "adverts", "expected"), DHCP6_CASES)
def test_rogue_dhcp6(ledger, adverts, expected):
    assert judge(ledger, [], dhcp6_adverts=tuple(adverts)) == expected


def test_rogue_dhcp6_detail_says_family_6():
    adverts = (adv(LL_X, X, "fd00::101"), adv(LL_X, X, "fd00::100"))
    finding = only(findings([], [], dhcp6_adverts=adverts), "rogue-dhcp")
    assert finding.detail["family"] == 6
    assert finding.detail["offered_ips"] == ["fd00::100", "fd00::101"]
    assert finding.detail["reason"] == "is not registered"
    assert finding.detail["server_duids"] == ["000300010211"]


def test_an_ra_naming_the_router_in_its_link_layer_option_from_another_mac_is_rogue():
    # The frame comes from X, its source link-layer option names the registered router A: hosts
    # keep sending to A, so the switch never sees A's MAC move, while they take X's prefixes,
    # DNS servers or router lifetime 0. The RA was sent by X, who may not advertise.
    spoofed = replace(ra(LL_A, A, "2001:db8:20:1::/64", lifetime=0), frame_mac=X)
    ledger = [device(IP1, A, "router")]
    found = findings(ledger, [], subnets=(SUBNET, V6), router_adverts=(spoofed,))
    finding = only(found, "rogue-ra")
    assert (finding.ip, finding.mac, finding.severity.value) == (LL_A, X, "critical")
    assert finding.detail["frame_macs"] == [X] and finding.detail["link_layer_option"] == [A]
    assert "sent from aa:bb:cc:dd:ee:01" in finding.summary and A in finding.summary
    # The router's own RAs beside it stay silent; another router's MAC sending for it is fine
    # (two registered routers of one VRRP pair).
    mine = ra(LL_A, A, "2001:db8:20:1::/64")
    found = judge(ledger, [], subnets=(SUBNET, V6), router_adverts=(mine, spoofed))
    assert found == {("rogue-ra", LL_A, X, None, "critical")}
    pair = [*ledger, device(IP2, B, "router")]
    by_b = replace(mine, frame_mac=B)
    assert judge(pair, [], subnets=(SUBNET, V6), router_adverts=(mine, by_b)) == set()


def duid_ll(mac: str) -> str:
    return "00030001" + mac.replace(":", "")


def duid_llt(mac: str) -> str:
    return "00010001" + "2f3a4b5c" + mac.replace(":", "")


def test_a_dhcpv6_answer_relayed_by_the_router_for_the_registered_server_is_no_rogue():
    # A relay agent on the gateway (RFC 8415 section 19) sends the server's ADVERTISE from its
    # own link-local address and MAC; the server's DUID (from its MAC, LL or LLT) says who serves.
    ledger = [device(IP1, A, "router", "gateway"), device(IP2, B, "dhcp-server")]
    for duid in (duid_ll(B), duid_llt(B)):
        relayed = replace(adv(LL_A, A, "2001:db8:20::100"), server_duid=duid)
        assert judge(ledger, [], dhcp6_adverts=(relayed,)) == set(), duid
    # The router serving itself (its own DUID), or relaying for a server nobody registered as
    # dhcp-server, or with a DUID that names no MAC: a rogue-dhcp, as before.
    for duid in (duid_ll(A), duid_llt(X), "0002000000090102", ""):
        served = replace(adv(LL_A, A, "2001:db8:20::100"), server_duid=duid)
        found = judge(ledger, [], dhcp6_adverts=(served,))
        assert found == {("rogue-dhcp", LL_A, A, None, "critical")}, duid
    # Only a router relays: a PC's ADVERTISE with the server's DUID is still that PC's.
    ledger.append(device(IP3, C))
    copied = replace(adv("fe80::c", C, "2001:db8:20::100"), server_duid=duid_ll(B))
    assert judge(ledger, [], dhcp6_adverts=(copied,)) == {
        ("rogue-dhcp", "fe80::c", C, None, "critical")
    }


def test_an_ra_offering_only_dns_servers_or_routes_says_what_it_offers():
    # RFC 8106: hosts take DNS servers from any RA, even one with router lifetime 0 and no
    # prefix; "announcing no prefix" would hide the one thing it does.
    dns_only = replace(ra(LL_X, X, lifetime=0), dns_servers=("fd00:66::53",), routes=("::/0",))
    finding = only(findings([], [], router_adverts=(dns_only,)), "rogue-ra")
    assert finding.severity.value == "critical"
    assert "announcing DNS server fd00:66::53, route ::/0" in finding.summary
    assert (finding.detail["dns_servers"], finding.detail["routes"]) == (["fd00:66::53"], ["::/0"])
    assert "no prefix" not in finding.summary


def test_an_ra_sending_hosts_to_dhcpv6_says_so():
    # mitm6's RA: router lifetime 0, no option, M and O set: every Windows host then asks
    # DHCPv6, which mitm6 answers with itself as DNS server. "No prefix" is not what it does.
    mitm6 = ra(LL_X, X, lifetime=0, managed=True, other=True)
    finding = only(findings([], [], router_adverts=(mitm6,)), "rogue-ra")
    assert "announcing addresses and other configuration from DHCPv6" in finding.summary
    other_only = ra(LL_Y, Y, "fd00:1::/64", other=True)
    finding = only(findings([], [], router_adverts=(other_only,)), "rogue-ra")
    assert "announcing fd00:1::/64, other configuration from DHCPv6" in finding.summary


def test_a_registered_router_withdrawing_an_old_prefix_is_no_rogue():
    # Renumbering: the old prefix goes out with valid lifetime 0 (withdrawn), outside the subnets
    # the administrator already moved to the new one.
    renumbering = replace(ra(LL_A, A, "2001:db8:20:1::/64"), withdrawn=("fd00:99::/64",))
    ledger = [device(IP1, A, "router")]
    assert judge(ledger, [], subnets=(SUBNET, V6), router_adverts=(renumbering,)) == set()
    # A stranger's RA withdrawing a prefix is still a stranger's RA, and says what it withdraws.
    stranger = replace(ra(LL_X, X), withdrawn=("2001:db8:20:1::/64",))
    finding = only(findings([], [], router_adverts=(stranger,)), "rogue-ra")
    assert "withdrawing 2001:db8:20:1::/64" in finding.summary
    assert finding.detail["withdrawn"] == ["2001:db8:20:1::/64"]
