"""DHCPv6 on the wire, with the standard library only: the SOLICIT the ipv6 phase sends, and the
ADVERTISE and REPLY messages servers send to clients (RFC 8415: messages, DUID-LL, IA_NA), which
the phase and `ipguard watch` read. Importing this costs nothing. What is read comes from whoever
is on the link: the parser never raises and refuses any message whose lengths do not add up.
"""

from __future__ import annotations

import ipaddress
import struct
from datetime import datetime

from ipguard.model import Dhcp6Advert
from ipguard.scanners.ipv6wire import (
    NH_UDP,
    UDP_HEADER,
    ipv6_frame,
    mac_bytes,
    payload_of,
    source_of,
)

DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT = 546, 547
DHCP6_SOLICIT, DHCP6_ADVERTISE, DHCP6_REPLY = 1, 2, 7
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR, OPT_ELAPSED = 1, 2, 3, 5, 8
OPT_ORO, OPT_DNS = 6, 23
ALL_DHCP_AGENTS = "ff02::1:2"
# What a server sends a client: a rogue answers with either (mitm6 ADVERTISEs, then REPLYs).
SERVER_ANSWERS = (DHCP6_ADVERTISE, DHCP6_REPLY)


def build_dhcp6_solicit(mac: str, source: str, client_mac: str, transaction: int) -> bytes:
    """A DHCPv6 SOLICIT to ff02::1:2 (UDP 546 → 547), DUID-LL of ``client_mac``, one IA_NA."""
    own = mac_bytes(mac)
    duid = struct.pack("!HH", 3, 1) + mac_bytes(client_mac)  # DUID-LL, hardware type Ethernet
    options = (
        _option(OPT_CLIENTID, duid)
        + _option(OPT_ELAPSED, b"\x00\x00")
        + _option(OPT_IA_NA, struct.pack("!III", 1, 0, 0))
        + _option(OPT_ORO, struct.pack("!H", OPT_DNS))
    )
    message = struct.pack("!I", (DHCP6_SOLICIT << 24) | (transaction & 0xFFFFFF)) + options
    udp = struct.pack("!HHHH", DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT, UDP_HEADER + len(message), 0)
    return ipv6_frame(own, source, ALL_DHCP_AGENTS, NH_UDP, udp + message, hop_limit=1)


def _option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def parse_advertise(
    frame: bytes, transaction: int, seen_at: datetime | None = None
) -> Dhcp6Advert | None:
    """The DHCPv6 ADVERTISE for ``transaction`` in an Ethernet frame, or None for anything else."""
    return parse_answer(frame, seen_at, transaction=transaction, kinds=(DHCP6_ADVERTISE,))


def parse_answer(
    frame: bytes,
    seen_at: datetime | None = None,
    *,
    transaction: int | None = None,
    kinds: tuple[int, ...] = SERVER_ANSWERS,
) -> Dhcp6Advert | None:
    """A server's DHCPv6 message of one of ``kinds`` to a client (UDP port 546), for
    ``transaction`` (None: any), or None for anything else."""
    found = payload_of(frame, NH_UDP)
    if found is None:
        return None
    udp = found[0]
    if len(udp) < UDP_HEADER + 4 or struct.unpack_from("!H", udp, 2)[0] != DHCP6_CLIENT_PORT:
        return None
    message = udp[UDP_HEADER:]
    head = struct.unpack_from("!I", message)[0]
    if head >> 24 not in kinds:
        return None
    if transaction is not None and head & 0xFFFFFF != transaction & 0xFFFFFF:
        return None
    options = _options(message[4:])
    if options is None:
        return None
    addresses = []
    for code, data in options:
        if code == OPT_IA_NA and len(data) >= 12:
            for inner, value in _options(data[12:]) or []:
                if inner == OPT_IAADDR and len(value) >= 24:
                    addresses.append(str(ipaddress.IPv6Address(value[:16])))
    duid = next((data.hex() for code, data in options if code == OPT_SERVERID), "")
    return Dhcp6Advert(
        server_ip=source_of(frame),
        server_mac=frame[6:12].hex(":"),
        addresses=tuple(dict.fromkeys(addresses)),
        server_duid=duid,
        seen_at=seen_at,
    )


def _options(data: bytes) -> list[tuple[int, bytes]] | None:
    """DHCPv6 options (code, data); None when one runs past the end."""
    found, at = [], 0
    while at + 4 <= len(data):
        code, length = struct.unpack_from("!HH", data, at)
        if at + 4 + length > len(data):
            return None
        found.append((code, data[at + 4 : at + 4 + length]))
        at += 4 + length
    return found
