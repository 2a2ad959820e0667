"""The suite's own network safety: a frame a test builds never reaches out by itself, and the real
scanner never probes from this machine's own network namespace."""

from __future__ import annotations

import socket

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from ipguard.scanners import rawsock
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.netns import inside
from tests.lab.scenario import Scenario
from tests.lab.scenarios import LAN, _scanner


@pytest.mark.parametrize(
    "layer", [IPv6(dst="fe80::1") / ICMPv6EchoRequest(), IP(dst="198.18.0.1") / ICMP()]
)
def test_a_frame_without_a_destination_mac_is_refused_not_resolved(layer: object) -> None:
    # tests/conftest.py scapy_never_resolves: scapy would send an ARP request or a Neighbor
    # Solicitation from the test process's namespace (this machine's own) to learn the MAC.
    with pytest.raises(AssertionError, match="destination MAC"):
        bytes(Ether() / layer)  # type: ignore[operator]


def test_a_frame_that_names_its_destination_is_built() -> None:
    frame = bytes(Ether(dst="33:33:00:00:00:01") / IPv6(dst="ff02::1") / ICMPv6EchoRequest())
    assert frame[:6] == bytes.fromhex("333300000001")


def test_the_real_scanner_refuses_to_start_in_this_machines_namespace() -> None:
    # tests/conftest.py probes_only_from_lab_namespaces: a CLI test without the fake scanner
    # would sweep this machine's own interface.
    from ipguard.model import ScanRequest
    from ipguard.scanners.suite import NetworkScanner

    request = ScanRequest(site="t", interface="eth0", subnets=("198.18.0.0/24",))
    with pytest.raises(AssertionError, match="own network namespace"):
        NetworkScanner().begin(request, None)
    with pytest.raises(AssertionError, match="own network namespace"):
        rawsock.open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, "test")


@requires_lab()
def test_inside_a_lab_namespace_raw_sockets_open(lab_factory: LabFactory) -> None:
    lab = lab_factory(Scenario(name="guard", segments=(LAN,), scanner=_scanner(), hosts=()))
    with inside(lab.scanner_ns):
        rawsock.open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, "test").close()
