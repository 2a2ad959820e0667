"""DHCP probe in the demo lab: both servers' offers (authorised and rogue), with who sent them."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipguard.errors import InterfaceError, InvalidValue, ScopeError
from ipguard.model import DhcpOffer
from ipguard.scanners.dhcp import DhcpProbe, parse_offer, random_client_mac
from ipguard.scanners.scope import Scope
from tests.lab.builder import Lab
from tests.lab.netns import exec_argv, inside

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def in_range(ip: str, first: str, last: str) -> bool:
    address = ipaddress.IPv4Address
    return address(first) <= address(ip) <= address(last)


@pytest.fixture(scope="module")
def offers(demo_lab: Lab) -> list[DhcpOffer]:
    probe = DhcpProbe(demo_lab.scanner_interface, Scope([demo_lab.subnet]), timeout=2.0)
    with inside(demo_lab.scanner_ns):
        return probe.probe()


def test_collects_the_offer_of_every_server(offers: list[DhcpOffer], demo_lab: Lab) -> None:
    servers = {(o.server_ip, o.server_mac) for o in offers}
    authorised, rogue = demo_lab.host("office-srv01"), demo_lab.host("physics-pc07")
    assert servers == {(authorised.ip, authorised.mac), (rogue.ip, rogue.mac)}
    assert len(offers) == 2  # the repeated DISCOVER does not double them


def test_reads_address_router_and_dns_of_each_offer(offers: list[DhcpOffer], demo_lab: Lab) -> None:
    by_server = {o.server_ip: o for o in offers}
    authorised = by_server[demo_lab.host("office-srv01").ip]
    assert in_range(authorised.offered_ip, "198.18.0.100", "198.18.0.149")
    assert authorised.router == "198.18.0.1"
    assert authorised.dns == (demo_lab.host("office-srv01").ip,)
    rogue = by_server[demo_lab.host("physics-pc07").ip]
    assert in_range(rogue.offered_ip, "198.18.0.150", "198.18.0.199")
    assert rogue.router == demo_lab.host("physics-pc07").ip  # dnsmasq names itself by default
    assert all(o.seen_at is not None and o.seen_at.tzinfo is not None for o in offers)


def test_offers_from_servers_outside_the_scope_are_still_recorded(demo_lab: Lab) -> None:
    """A /28 around the scanner leaves the rogue server (.36) outside: its offer is evidence."""
    client = "02:00:5e:12:34:56"
    probe = DhcpProbe("eth0", Scope(["198.18.0.0/28"]), timeout=1.5, client_mac=client)
    assert probe.client_mac == client
    with inside(demo_lab.scanner_ns):
        found = probe.probe()
    assert demo_lab.host("physics-pc07").ip in {o.server_ip for o in found}
    assert "198.18.0.36" not in Scope(["198.18.0.0/28"])


def test_refuses_an_interface_whose_network_is_outside_the_scope(demo_lab: Lab) -> None:
    probe = DhcpProbe("eth0", Scope(["198.19.0.0/24"]), timeout=1.0)
    with inside(demo_lab.scanner_ns), pytest.raises(ScopeError, match=r"eth0 \(198\.18\.0\.2\)"):
        probe.probe()


def test_missing_interface_is_an_interface_error(demo_lab: Lab) -> None:
    probe = DhcpProbe("nosuch0", Scope([demo_lab.subnet]), timeout=1.0)
    with inside(demo_lab.scanner_ns), pytest.raises(InterfaceError, match="does not exist"):
        probe.probe()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_without_raw_socket_privilege_says_cap_net_raw(demo_lab: Lab) -> None:
    """The probe run as nobody inside the scanner namespace: PrivilegeError naming CAP_NET_RAW."""
    code = (
        "import json\n"
        "from ipguard.scanners.dhcp import DhcpProbe\n"
        "from ipguard.scanners.scope import Scope\n"
        "try:\n"
        f"    DhcpProbe('eth0', Scope(['{demo_lab.subnet}']), timeout=0.5).probe()\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
    )
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    out = subprocess.run(
        exec_argv(demo_lab.scanner_ns, [*nobody, sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    ).stdout
    kind, message = json.loads(out)
    assert kind == "PrivilegeError"
    assert "CAP_NET_RAW" in message


def test_random_client_macs_are_locally_administered_unicast() -> None:
    macs = {random_client_mac() for _ in range(50)}
    assert len(macs) == 50
    assert all(mac.startswith("02:") and len(mac) == 17 for mac in macs)


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "02:00:00", "zz:00:00:00:00:00"])
def test_bad_client_macs_are_refused(mac: str) -> None:
    with pytest.raises(InvalidValue):
        DhcpProbe("eth0", Scope(["198.18.0.0/24"]), timeout=1, client_mac=mac)


def test_only_offers_for_our_transaction_count() -> None:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def frame(xid: int, kind: str) -> bytes:
        return bytes(
            Ether(src="02:18:00:00:00:03", dst="ff:ff:ff:ff:ff:ff")
            / IP(src="198.18.0.3", dst="255.255.255.255")
            / UDP(sport=67, dport=68)
            / BOOTP(op=2, xid=xid, yiaddr="198.18.0.120")
            / DHCP(
                options=[
                    ("message-type", kind),
                    ("server_id", "198.18.0.3"),
                    ("router", "198.18.0.1"),
                    ("name_server", "198.18.0.3", "198.18.0.4"),
                    "end",
                ]
            )
        )

    offer = parse_offer(frame(7, "offer"), 7)
    assert offer == DhcpOffer(
        server_ip="198.18.0.3",
        server_mac="02:18:00:00:00:03",
        offered_ip="198.18.0.120",
        router="198.18.0.1",
        dns=("198.18.0.3", "198.18.0.4"),
    )
    assert parse_offer(frame(8, "offer"), 7) is None
    assert parse_offer(frame(7, "ack"), 7) is None
    assert parse_offer(b"\x00" * 60, 7) is None
