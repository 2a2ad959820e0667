"""Frames as the watcher parses them: ARP claims and DHCP messages, at fixed offsets."""

from __future__ import annotations

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from ipguard.model import DhcpOffer
from ipguard.scanners.passive import ArpClaim, DhcpClient, parse_frame

A, B = "02:18:00:00:00:20", "00:16:3e:00:00:91"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def arp(op: int, hwsrc: str, psrc: str, pdst: str, hwdst: str = "00:00:00:00:00:00") -> bytes:
    frame = Ether(src=hwsrc, dst=BROADCAST) / ARP(
        op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst
    )
    return bytes(frame)


@pytest.mark.parametrize(
    ("frame", "claim"),
    [
        (arp(1, A, "198.18.0.20", "198.18.0.1"), ArpClaim("198.18.0.20", A, "request")),
        (arp(2, A, "198.18.0.20", "198.18.0.1", B), ArpClaim("198.18.0.20", A, "reply")),
        (arp(1, A, "198.18.0.20", "198.18.0.20"), ArpClaim("198.18.0.20", A, "gratuitous")),
        (arp(2, A, "198.18.0.20", "198.18.0.20"), ArpClaim("198.18.0.20", A, "gratuitous")),
        # An ARP probe (RFC 5227) claims the address it asks about.
        (arp(1, B, "0.0.0.0", "198.18.0.20"), ArpClaim("198.18.0.20", B, "probe")),
        # No device is at a broadcast, multicast or zero MAC, but Linux caches such a claim like
        # any other (a poisoned gateway): it is one; a probe from one claims nothing.
        (
            arp(2, BROADCAST, "198.18.0.20", "198.18.0.1"),
            ArpClaim("198.18.0.20", BROADCAST, "reply"),
        ),
        (
            arp(2, "01:00:5e:00:00:01", "198.18.0.20", "198.18.0.1"),
            ArpClaim("198.18.0.20", "01:00:5e:00:00:01", "reply"),
        ),
        (
            arp(1, "00:00:00:00:00:00", "198.18.0.20", "198.18.0.1"),
            ArpClaim("198.18.0.20", "00:00:00:00:00:00", "request"),
        ),
        (arp(1, BROADCAST, "0.0.0.0", "198.18.0.20"), None),
        (arp(1, A, "0.0.0.0", "0.0.0.0"), None),
        (arp(2, A, "0.0.0.0", "198.18.0.1"), None),
        (arp(3, A, "198.18.0.20", "198.18.0.1"), None),  # RARP request
        (arp(3, A, "198.18.0.20", "198.18.0.20"), None),  # no gratuitous ARP either
        # Sent from another NIC than the MAC it claims for: the frame's source is kept.
        (
            bytes(
                Ether(src=B, dst=BROADCAST)
                / ARP(op=2, hwsrc=A, psrc="198.18.0.1", pdst="198.18.0.20")
            ),
            ArpClaim("198.18.0.1", A, "reply", frame_mac=B),
        ),
        (arp(1, A, "198.18.0.20", "198.18.0.1")[:30], None),  # cut short
        (bytes(Ether(dst=BROADCAST, type=0x0806) / (b"\x00\x06" + bytes(40))), None),  # not IPv4
    ],
)
def test_arp_frames_become_claims(frame: bytes, claim: ArpClaim | None) -> None:
    assert parse_frame(frame) == claim


def dhcp(op: int, message: str, *, src: str, chaddr: str, options: list, **bootp) -> bytes:
    frame = (
        Ether(src=src, dst=BROADCAST)
        / IP(src=bootp.pop("ip_src", "0.0.0.0"), dst="255.255.255.255")
        / UDP(sport=68 if op == 1 else 67, dport=67 if op == 1 else 68)
        / BOOTP(op=op, chaddr=bytes.fromhex(chaddr.replace(":", "")), **bootp)
        / DHCP(options=[("message-type", message), *options, "end"])
    )
    return bytes(frame)


def test_server_answers_are_offers() -> None:
    offer = dhcp(
        2,
        "offer",
        src="02:66:00:00:00:77",
        chaddr=B,
        yiaddr="198.18.0.150",
        ip_src="198.18.0.77",
        options=[
            ("server_id", "198.18.0.77"),
            ("router", "198.18.0.77"),
            ("name_server", "198.18.0.77", "198.18.0.3"),
        ],
    )
    assert parse_frame(offer) == DhcpOffer(
        server_ip="198.18.0.77",
        server_mac="02:66:00:00:00:77",
        offered_ip="198.18.0.150",
        router="198.18.0.77",
        dns=("198.18.0.77", "198.18.0.3"),
    )
    ack = dhcp(2, "ack", src="02:66:00:00:00:77", chaddr=B, yiaddr="198.18.0.151", options=[])
    parsed = parse_frame(ack)
    assert isinstance(parsed, DhcpOffer)
    # Without a server identifier, the sender's IP address names the server.
    assert (parsed.server_ip, parsed.offered_ip, parsed.router) == ("0.0.0.0", "198.18.0.151", None)
    # A NAK refuses the client its address: a server's answer too (a rogue NAKing everyone is a
    # denial of service), with no address in it.
    nak = dhcp(2, "nak", src="02:66:00:00:00:77", chaddr=B, options=[("server_id", "198.18.0.77")])
    assert parse_frame(nak) == DhcpOffer(
        server_ip="198.18.0.77",
        server_mac="02:66:00:00:00:77",
        offered_ip="0.0.0.0",
        message="nak",
    )


def test_an_offer_continued_in_file_and_sname_is_read_whole() -> None:
    """Option 52 (RFC 2131 section 4.1): options go on in `file`, then `sname`; a long one is
    split in parts to be joined (RFC 3396). The watcher reads them as the active probe does."""
    offer = dhcp(
        2,
        "offer",
        src="02:66:00:00:00:77",
        chaddr=B,
        yiaddr="198.18.0.150",
        ip_src="198.18.0.9",
        options=[b"\x34\x01\x03", ("name_server", "198.18.0.77")],
        file=b"\x06\x04" + bytes([198, 18, 0, 3]) + b"\x36\x04" + bytes([198, 18, 0, 77]) + b"\xff",
        sname=b"\x03\x04" + bytes([198, 18, 0, 1]) + b"\xff",
    )
    assert parse_frame(offer) == DhcpOffer(
        server_ip="198.18.0.77",
        server_mac="02:66:00:00:00:77",
        offered_ip="198.18.0.150",
        router="198.18.0.1",
        dns=("198.18.0.77", "198.18.0.3"),
    )


def test_client_messages_carry_hostname_and_fingerprint() -> None:
    request = dhcp(
        1,
        "request",
        src=B,
        chaddr=B,
        options=[
            ("requested_addr", "198.18.0.150"),
            ("hostname", b"laptop-95"),
            ("param_req_list", [1, 3, 6, 15, 119, 252]),
            ("vendor_class_id", b"MSFT 5.0"),
        ],
    )
    assert parse_frame(request) == DhcpClient(
        mac=B,
        ip="198.18.0.150",
        message="request",
        hostname="laptop-95",
        parameters=(1, 3, 6, 15, 119, 252),
        vendor_class="MSFT 5.0",
    )
    renew = dhcp(1, "request", src=B, chaddr=B, ciaddr="198.18.0.150", options=[])
    assert parse_frame(renew) == DhcpClient(mac=B, ip="198.18.0.150", message="request")
    discover = dhcp(1, "discover", src=B, chaddr=B, options=[("hostname", b"\x1b[31mevil")])
    parsed = parse_frame(discover)
    assert isinstance(parsed, DhcpClient) and parsed.ip is None
    assert parsed.hostname == "\x1b[31mevil"  # stored as sent; every output escapes it
    release = dhcp(1, "release", src=B, chaddr=B, options=[])
    assert parse_frame(release) is None


def test_broken_dhcp_frames_say_nothing_or_only_what_is_whole() -> None:
    frame = dhcp(1, "discover", src=B, chaddr=B, options=[("hostname", b"pc")])
    assert parse_frame(frame[:100]) is None  # no room for the BOOTP header
    assert parse_frame(frame[:278] + b"XXXX" + frame[282:]) is None  # no DHCP magic cookie
    # An option running past the end of the frame is cut there, never read beyond it.
    cut = parse_frame(frame.rstrip(b"\x00")[:-1] + bytes([60, 200]) + b"abc")
    assert isinstance(cut, DhcpClient)
    assert (cut.hostname, cut.vendor_class) == ("pc", "abc")
