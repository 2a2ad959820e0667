"""Site-scoped records: valid in their own site's runs, a known device everywhere else.

The run in these tables reports as site "south" unless a case says otherwise; records are scoped to
"north", to "south", or to every site ("").
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ipguard.model import DhcpOffer, ProxyVerdict, ServiceObservation
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    NOW,
    A,
    B,
    X,
    arp,
    device,
    findings,
    icmp,
    judge,
    only,
)

NORTH, SOUTH = "north", "south"
LONG_AGO = NOW - timedelta(days=400)

CASES = [
    pytest.param(SOUTH, [device(IP1, A, site=SOUTH)], [arp(IP1, A)], set(), id="own site: nothing"),
    pytest.param(SOUTH, [device(IP1, A)], [arp(IP1, A)], set(), id="unscoped: valid everywhere"),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH)],
        [arp(IP1, A)],
        {("mac-moved", IP1, A, None, "medium")},
        id="north's device at its own IP in south's run: moved between sites",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH)],
        [arp(FREE, A)],
        {("mac-moved", FREE, A, None, "medium")},
        id="north's device at a free IP in south: moved, not unregistered",
    ),
    pytest.param(
        NORTH,
        [device(IP1, A, site=NORTH)],
        [arp(FREE, A)],
        {("mac-moved", FREE, A, None, "medium")},
        id="moved inside its own site: as without sites",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH)],
        [arp(IP1, X)],
        {("unregistered-host", IP1, X, None, "high")},
        id="north's IP holds nothing in south: a stranger there is unregistered, not a thief",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH)],
        [icmp(IP1)],
        {("unregistered-host", IP1, None, None, "high")},
        id="a MAC-less reply at north's IP in south: no record valid here holds it",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH), device(IP2, A, site=SOUTH)],
        [arp(IP2, A)],
        set(),
        id="a device registered at both sites, at its south address: nothing",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH), device(IP2, A, site=SOUTH)],
        [arp(IP1, A)],
        {("mac-moved", IP1, A, None, "medium")},
        id="a device registered at both sites, at its north address in south: moved",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH, isolated=True)],
        [arp(FREE, A)],
        {("isolated-device-online", IP1, A, None, "critical")},
        id="isolation follows the device to every site",
    ),
    pytest.param(
        SOUTH,
        [device(IP1, A, site=NORTH, status="suspended")],
        [arp(IP1, A)],
        {("suspended-device-online", IP1, A, None, "medium")},
        id="a suspension follows the device to every site",
    ),
    pytest.param(
        "",
        [device(IP1, A, site=NORTH)],
        [arp(IP1, A)],
        set(),
        id="a run without a site: no scoping",
    ),
]


@pytest.mark.parametrize(("site", "ledger", "observations", "expected"), CASES)
def test_site_scoped_records(site, ledger, observations, expected):
    assert judge(ledger, observations, site=site) == expected


def test_moved_between_sites_says_where_it_is_registered_and_where_it_answered():
    found = findings([device(IP1, A, site=NORTH, owner="李伟")], [arp(IP1, A)], site=SOUTH)
    moved = only(found, "mac-moved")
    assert moved.summary == (
        f"{A} (李伟), registered at {IP1} at site north, answered at {IP1} at site south"
    )
    assert moved.detail["registered_sites"] == [NORTH]
    assert moved.detail["registered"][0]["site"] == NORTH


def test_moved_inside_a_site_reads_as_before():
    found = findings([device(IP1, A, site=SOUTH, owner="李伟")], [arp(FREE, A)], site=SOUTH)
    assert (
        only(found, "mac-moved").summary == f"{A} (李伟), registered at {IP1}, answered at {FREE}"
    )


@pytest.mark.parametrize(
    ("record_site", "run_site", "stale"),
    [
        (NORTH, NORTH, True),
        (NORTH, SOUTH, False),  # south's sensor is not expected to see north's devices
        ("", SOUTH, True),
        (SOUTH, SOUTH, True),
    ],
)
def test_only_records_valid_at_the_runs_site_go_stale(record_site, run_site, stale):
    record = device(IP1, A, site=record_site)
    found = judge([record], [], site=run_site, last_seen={(IP1, A): LONG_AGO})
    assert (("stale-registration", IP1, A, None, "low") in found) is stale


def test_roles_do_not_travel_to_another_site():
    proxy = device(IP1, A, "proxy", site=NORTH)
    relayed = [ProxyVerdict(IP1, 3128, "http-connect", True)]
    assert judge([proxy], [arp(IP1, A)], proxies=relayed, site=NORTH) == set()
    assert judge([proxy], [arp(IP1, A)], proxies=relayed, site=SOUTH) == {
        ("mac-moved", IP1, A, None, "medium"),
        ("open-proxy", IP1, A, "tcp/3128", "high"),
    }


def test_a_dhcp_server_of_another_site_is_rogue_here():
    server = device(IP1, A, "dhcp-server", site=NORTH)
    offers = [DhcpOffer(IP1, A, "10.20.1.200")]
    assert judge([server], [arp(IP1, A)], dhcp_offers=offers, site=NORTH) == set()
    found = findings([server], [arp(IP1, A)], dhcp_offers=offers, site=SOUTH)
    assert only(found, "rogue-dhcp").detail["reason"] == "is not registered"


def test_ports_of_a_device_moved_between_sites_go_into_its_mac_moved_finding():
    record = device(IP1, A, site=NORTH, allowed_services=["tcp/8080"])
    ports = [ServiceObservation(IP1, "tcp", 8080), ServiceObservation(IP1, "tcp", 23)]
    found = findings([record], [arp(IP1, A)], services=ports, site=SOUTH)
    assert {finding.kind.value for finding in found} == {"mac-moved"}
    assert [port["port"] for port in found[0].detail["open_ports"]] == ["tcp/23", "tcp/8080"]


def test_a_stranger_at_a_registered_ip_names_the_other_site_of_its_own_record():
    ledger = [device(IP1, A, site=SOUTH), device(IP2, B, site=NORTH, owner="王芳")]
    found = findings(ledger, [arp(IP1, B)], site=SOUTH)
    mismatch = only(found, "ip-mac-mismatch")
    assert f"answered from {B} (registered to 王芳 at {IP2} at site north)" in mismatch.summary
