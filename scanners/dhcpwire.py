"""DHCP on the wire, with the standard library only: the DISCOVER we send, the OFFERs we read.

Importing this costs nothing (no scapy), so a scan can start its DHCP probe before anything heavy
is loaded. Layouts: RFC 2131 (BOOTP fields, section 2), RFC 2132 (options), RFC 791/768 (IPv4,
UDP). Everything read comes from whoever is on the link, so :func:`parse_offer` never raises and
refuses any frame whose lengths do not add up.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from datetime import datetime

from ipguard.model import DhcpOffer

BOOTP_CLIENT_PORT = 68
BOOTP_SERVER_PORT = 67
BROADCAST_FLAG = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
DHCP_DISCOVER = 1
DHCP_OFFER = 2
# Options (RFC 2132): the ones we send or read.
OPT_PAD, OPT_END = 0, 255
OPT_ROUTER, OPT_DNS = 3, 6
OPT_OVERLOAD, OPT_MESSAGE_TYPE, OPT_SERVER_ID = 52, 53, 54
OPT_PARAMETERS, OPT_CLIENT_ID = 55, 61
# What a client asks for: netmask, router, DNS, domain name, lease time, server identifier.
PARAMETERS = bytes([1, 3, 6, 15, 51, 54])

ETH_HEADER = 14
ETH_P_IP = b"\x08\x00"
UDP_HEADER = 8
BOOTP_FIXED = 236  # op … file, before the magic cookie
# RFC 1542 section 2.1: relays and some servers drop BOOTP messages shorter than 300 bytes.
BOOTP_MIN = 300
# Where `sname` (64 bytes) and `file` (128 bytes) lie in the BOOTP message.
SNAME_AT, FILE_AT = 44, 108
_FIXED = struct.Struct("!BBBBIHHIIII16s64s128s")


def build_discover(client_mac: str, xid: int, secs: int = 0) -> bytes:
    """A broadcast Ethernet frame holding a DHCPDISCOVER from ``client_mac``.

    The broadcast flag asks servers to broadcast their OFFER (we have no address yet); servers that
    unicast anyway send it to ``client_mac``, which the probe also hears. ``secs`` is the time since
    the client began (RFC 2131 section 4.1: a retransmission carries it).
    """
    mac = bytes.fromhex(client_mac.replace(":", ""))
    options = (
        bytes([OPT_MESSAGE_TYPE, 1, DHCP_DISCOVER])
        + bytes([OPT_CLIENT_ID, 7, 1])
        + mac
        + bytes([OPT_PARAMETERS, len(PARAMETERS)])
        + PARAMETERS
        + bytes([OPT_END])
    )
    secs = min(secs, 0xFFFF)
    bootp = _FIXED.pack(1, 1, 6, 0, xid, secs, BROADCAST_FLAG, 0, 0, 0, 0, mac, b"", b"")
    bootp += MAGIC_COOKIE + options
    bootp += bytes(max(0, BOOTP_MIN - len(bootp)))
    udp = struct.pack("!HHHH", BOOTP_CLIENT_PORT, BOOTP_SERVER_PORT, UDP_HEADER + len(bootp), 0)
    ip = _ipv4_header(
        len(udp) + len(bootp), socket.IPPROTO_UDP, b"\x00" * 4, b"\xff" * 4
    )  # 0.0.0.0 → 255.255.255.255; UDP checksum 0 (none) is allowed over IPv4
    return b"\xff" * 6 + mac + ETH_P_IP + ip + udp + bootp


def _ipv4_header(payload: int, proto: int, src: bytes, dst: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + payload, 0, 0, 64, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:]


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_offer(frame: bytes, xid: int, seen_at: datetime | None = None) -> DhcpOffer | None:
    """The DHCPOFFER in an Ethernet frame for transaction ``xid``, or None for anything else."""
    payload = _udp_payload(frame, BOOTP_CLIENT_PORT)
    if payload is None or len(payload) < BOOTP_FIXED + len(MAGIC_COOKIE):
        return None
    op, _htype, _hlen, _hops, their_xid, *_rest = _FIXED.unpack_from(payload)
    if op != 2 or their_xid != xid or payload[BOOTP_FIXED : BOOTP_FIXED + 4] != MAGIC_COOKIE:
        return None
    options = all_options(payload)
    if options is None or options.get(OPT_MESSAGE_TYPE) != bytes([DHCP_OFFER]):
        return None
    server_id = options.get(OPT_SERVER_ID, b"")
    routers = _addresses(options.get(OPT_ROUTER, b""))
    return DhcpOffer(
        server_ip=socket.inet_ntoa(server_id if len(server_id) == 4 else frame[26:30]),
        server_mac=frame[6:12].hex(":"),
        offered_ip=socket.inet_ntoa(payload[16:20]),
        router=routers[0] if routers else None,
        dns=tuple(_addresses(options.get(OPT_DNS, b""))),
        seen_at=seen_at,
    )


def _udp_payload(frame: bytes, port: int) -> bytes | None:
    """The UDP payload of an Ethernet/IPv4 frame sent to ``port``; None unless lengths agree."""
    if len(frame) < ETH_HEADER + 20 + UDP_HEADER or frame[12:14] != ETH_P_IP:
        return None
    version_ihl = frame[ETH_HEADER]
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < 20 or frame[ETH_HEADER + 9] != socket.IPPROTO_UDP:
        return None
    (total,) = struct.unpack_from("!H", frame, ETH_HEADER + 2)
    udp = ETH_HEADER + ihl
    if total < ihl + UDP_HEADER or ETH_HEADER + total > len(frame):
        return None  # truncated (Ethernet padding after the packet is fine)
    _sport, dport, length, _sum = struct.unpack_from("!HHHH", frame, udp)
    if dport != port or length < UDP_HEADER or udp + length > ETH_HEADER + total:
        return None
    return frame[udp + UDP_HEADER : udp + length]


def all_options(
    payload: bytes, parse: Callable[[bytes], dict[int, bytes] | None] | None = None
) -> dict[int, bytes] | None:
    """Options by code from the options field and, when option 52 says so, `file` then `sname`.

    RFC 2131 section 4.1 fixes that order; an option sent in several parts is their concatenation
    (RFC 3396). `parse` reads one field; by default strictly: None when an option runs past its
    field's end.
    """
    parse = parse or _options
    found = parse(payload[BOOTP_FIXED + 4 :])
    if found is None:
        return None
    overload = (found.get(OPT_OVERLOAD) or b"\x00")[0]  # 1: file, 2: sname, 3: both
    fields = [payload[FILE_AT : FILE_AT + 128]] if overload & 1 else []
    fields += [payload[SNAME_AT : SNAME_AT + 64]] if overload & 2 else []
    for field in fields:
        more = parse(field)
        if more is None:
            return None
        for code, value in more.items():
            found[code] = found.get(code, b"") + value
    return found


def _options(data: bytes) -> dict[int, bytes] | None:
    """Options by code, the parts of a split one joined; None when one runs past the end."""
    found: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            return None
        found[code] = found.get(code, b"") + data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return found


def _addresses(value: bytes) -> list[str]:
    """IPv4 addresses packed in an option (a trailing partial address is dropped)."""
    return [socket.inet_ntoa(value[k : k + 4]) for k in range(0, len(value) - 3, 4)]
