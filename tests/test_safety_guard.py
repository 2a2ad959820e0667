"""The suite's own network safety: a frame a test builds never reaches out by itself."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether


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
