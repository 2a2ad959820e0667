"""IPv6 on the wire, with the standard library only: the Router Solicitation, echo requests and
Neighbor Solicitations we send, the Router Advertisements and neighbour messages we read (DHCPv6:
`scanners.dhcp6wire`).

Layouts: RFC 8200 (IPv6 header), RFC 4443 (ICMPv6 checksum, echo section 4.1), RFC 4861 (RS
section 4.1, RA 4.2, NS 4.3, NA 4.4, options 4.6), RFC 4291 section 2.7.1 (solicited-node groups).
Importing this costs nothing. Everything read comes
from whoever is on the link, so the parsers never raise and refuse any frame whose lengths do not
add up.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ipguard.model import RouterAdvert

ETH_P_IPV6 = 0x86DD
ETH_HEADER = 14
IPV6_HEADER = 40
UDP_HEADER = 8
NH_ICMPV6, NH_UDP = 58, 17
ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 128, 129
ICMPV6_PARAM_PROBLEM, UNRECOGNIZED_OPTION = 4, 2  # RFC 4443 section 3.4: type, code
ICMPV6_RS, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA = 133, 134, 135, 136
OPT_SOURCE_LL, OPT_TARGET_LL, OPT_PREFIX = 1, 2, 3  # RFC 4861 section 4.6
OPT_ROUTE_INFO, OPT_RDNSS = 24, 25  # RFC 4191 section 2.3, RFC 8106 section 5.1
ALL_NODES = "ff02::1"
ALL_ROUTERS = "ff02::2"
IF_INET6 = Path("/proc/thread-self/net/if_inet6")  # this thread's namespace
SCOPE_LINK = 0x20
# if_inet6 flags of addresses that cannot be used as a source (yet): RFC 4862 DAD pending or failed.
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40


def link_local(interface: str, table: Path = IF_INET6) -> str | None:
    """The interface's link-local IPv6 address (the kernel's list), or None without IPv6."""
    try:
        lines = table.read_text().splitlines()
    except OSError:  # no IPv6 in this kernel or namespace
        return None
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[5] == interface and int(fields[3], 16) == SCOPE_LINK:
            return str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return None


def addresses(interface: str, table: Path = IF_INET6) -> list[str]:
    """The interface's usable IPv6 addresses (link-local first), from the kernel's list."""
    try:
        lines = table.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[5] == interface:
            if int(fields[4], 16) & (IFA_F_DADFAILED | IFA_F_TENTATIVE):
                continue
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            found.append((not address.is_link_local, str(address)))
    return [text for _, text in sorted(found)]


def solicited_node(target: str) -> str:
    """The solicited-node multicast group of ``target``: ff02::1:ffXX:XXXX (RFC 4291 2.7.1)."""
    low = ipaddress.IPv6Address(target).packed[-3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low))


def build_echo(
    mac: str, source: str, ident: int, sequence: int, *, erroneous: bool = False
) -> bytes:
    """An ICMPv6 echo request to ff02::1 (all nodes) from ``source``.

    ``erroneous``: behind a Destination Options header holding an option no host knows, of a
    type whose two high bits are 10 (RFC 8200 section 4.2): every host must drop the packet and
    send a Parameter Problem (code 2) even though it went to a multicast group. Hosts that answer
    no multicast echo (Windows) send that error, from an address of the source's scope.
    """
    body = struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, ident, sequence) + b"ipguard ndp\0"
    extension = UNKNOWN_OPTION_HEADER if erroneous else b""
    return ipv6_frame(
        mac_bytes(mac), source, ALL_NODES, NH_ICMPV6, body, hop_limit=255, extension=extension
    )


def build_neighbor_solicitation(mac: str, source: str, target: str) -> bytes:
    """A Neighbor Solicitation for ``target`` to its solicited-node group, our link-layer option."""
    own = mac_bytes(mac)
    packed = ipaddress.IPv6Address(target).packed
    body = bytes([ICMPV6_NS, 0, 0, 0]) + bytes(4) + packed + bytes([OPT_SOURCE_LL, 1]) + own
    return ipv6_frame(own, source, solicited_node(target), NH_ICMPV6, body, hop_limit=255)


def target_link_layer(icmp: bytes, option: int = OPT_TARGET_LL) -> bytes | None:
    """The MAC in a Neighbor Advertisement's target link-layer option (None: no such option), or
    in a Neighbor Solicitation's source link-layer option (``option`` OPT_SOURCE_LL).

    ``icmp`` is the ICMPv6 message; its options follow the 24-byte NA (or NS) header.
    """
    at = 24
    while at + 8 <= len(icmp):
        kind, units = icmp[at], icmp[at + 1]
        if units == 0:
            return None
        if kind == option:
            return icmp[at + 2 : at + 8]
        at += 8 * units
    return None


def multicastmac_bytes(address: str) -> bytes:
    """The Ethernet group address of an IPv6 multicast address (RFC 2464 section 7)."""
    return b"\x33\x33" + ipaddress.IPv6Address(address).packed[-4:]


def build_solicitation(mac: str, source: str) -> bytes:
    """A Router Solicitation to ff02::2 from ``source`` with our link-layer address option."""
    own = mac_bytes(mac)
    body = bytes([ICMPV6_RS, 0, 0, 0]) + bytes(4) + bytes([OPT_SOURCE_LL, 1]) + own
    return ipv6_frame(own, source, ALL_ROUTERS, NH_ICMPV6, body, hop_limit=255)


def ipv6_frame(
    own: bytes,
    source: str,
    dest: str,
    next_header: int,
    body: bytes,
    hop_limit: int,
    extension: bytes = b"",
) -> bytes:
    """``extension``: one Destination Options header (its next header ``next_header``) before
    ``body``; the checksum covers the upper-layer body alone."""
    src, dst = socket.inet_pton(socket.AF_INET6, source), socket.inet_pton(socket.AF_INET6, dest)
    pseudo = src + dst + struct.pack("!I3xB", len(body), next_header)
    checksum = _checksum(pseudo + body)
    offset = 2 if next_header == NH_ICMPV6 else 6  # ICMPv6 checksum at 2, UDP's at 6
    body = body[:offset] + struct.pack("!H", checksum or 0xFFFF) + body[offset + 2 :]
    if extension:
        body = bytes([next_header]) + extension[1:] + body
        next_header = NH_DEST_OPTIONS
    header = struct.pack("!IHBB", 6 << 28, len(body), next_header, hop_limit) + src + dst
    return multicastmac_bytes(dest) + own + struct.pack("!H", ETH_P_IPV6) + header + body


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def payload_of(frame: bytes, protocol: int) -> tuple[bytes, tuple[str, ...]] | None:
    """(payload, extension headers walked) of an IPv6 frame carrying ``protocol``, directly or
    behind extension headers (see `upper_layer`)."""
    upper = upper_layer(frame)
    if upper is None or upper.protocol != protocol or upper.later_fragment:
        return None
    return frame[upper.start : upper.end], upper.extensions


def source_of(frame: bytes) -> str:
    return str(ipaddress.IPv6Address(frame[ETH_HEADER + 8 : ETH_HEADER + 24]))


def parse_ra(frame: bytes, seen_at: datetime | None = None) -> RouterAdvert | None:
    """The Router Advertisement in an Ethernet frame, or None for anything else."""
    found = payload_of(frame, NH_ICMPV6)
    if found is None:
        return None
    icmp, extensions = found
    if len(icmp) < 16 or icmp[0] != ICMPV6_RA or icmp[1] != 0:
        return None
    flags, lifetime = icmp[5], struct.unpack_from("!H", icmp, 6)[0]
    frame_mac = frame[6:12].hex(":")
    option_mac = ""
    prefixes: list[str] = []
    withdrawn: list[str] = []
    dns: list[str] = []
    routes: list[str] = []
    at = 16
    while at + 2 <= len(icmp):
        kind, units = icmp[at], icmp[at + 1]
        if units == 0 or at + 8 * units > len(icmp):
            return None  # RFC 4861 section 4.6: a zero-length option invalidates the message
        data = icmp[at + 2 : at + 8 * units]
        if kind == OPT_SOURCE_LL and len(data) >= 6:
            option_mac = data[:6].hex(":")
        elif kind == OPT_PREFIX and units == 4:  # valid lifetime 0: withdrawn (RFC 4192)
            _network(data[0], data[14:30], prefixes if data[2:6] != bytes(4) else withdrawn)
        elif kind == OPT_ROUTE_INFO and units <= 3:  # the prefix: 0, 8 or 16 bytes, zero-padded
            _network(data[0], data[6:].ljust(16, b"\0"), routes)
        elif kind == OPT_RDNSS and units >= 3 and units % 2:
            dns += [str(ipaddress.IPv6Address(data[k : k + 16])) for k in range(6, len(data), 16)]
        at += 8 * units
    mac = option_mac or frame_mac
    return RouterAdvert(
        source_ip=source_of(frame),
        source_mac=mac,
        router_lifetime=lifetime,
        managed=bool(flags & 0x80),
        other=bool(flags & 0x40),
        prefixes=tuple(dict.fromkeys(prefixes)),
        frame_mac=frame_mac if frame_mac != mac else "",
        seen_at=seen_at,
        evasion=extensions,
        dns_servers=tuple(dict.fromkeys(dns)),
        routes=tuple(dict.fromkeys(routes)),
        withdrawn=tuple(dict.fromkeys(withdrawn)),
    )


def _network(length: int, packed: bytes, into: list[str]) -> None:
    """Append the prefix ``packed``/``length`` (a length past 128 is a lie: nothing appended)."""
    if length <= 128:
        network = ipaddress.IPv6Network((ipaddress.IPv6Address(packed), length), strict=False)
        into.append(str(network))


def parse_na(frame: bytes) -> tuple[str, str] | None:
    """(target address, MAC) of a Neighbor Advertisement in an Ethernet frame, or None.

    The MAC is the target link-layer option's, else the frame's source. See `parse_neighbour`.
    """
    found = parse_neighbour(frame)
    return found[:2] if found is not None and found[2] == ICMPV6_NA else None


def parse_neighbour(frame: bytes) -> tuple[str, str, int] | None:
    """(address, MAC, ICMPv6 type) a Neighbor Advertisement or Solicitation claims, or None.

    An NA claims its target for the MAC of its target link-layer option; an NS claims its source
    address for the MAC of its source link-layer option (RFC 4861 7.2.3: every receiver takes
    it), as an ARP request claims its sender's; either way the frame's source MAC without the
    option. RFC 4861 sections 7.1.1 and 7.1.2: one not from the link (hop limit below 255), with a
    code, short or naming a multicast target is invalid. An NS from the unspecified address is
    duplicate address detection asking whether an address is free: no claim (None).
    """
    found = payload_of(frame, NH_ICMPV6)
    if found is None or frame[ETH_HEADER + 7] != 255:
        return None
    icmp = found[0]
    kind = icmp[0] if icmp else 0
    if len(icmp) < 24 or kind not in (ICMPV6_NA, ICMPV6_NS) or icmp[1] != 0 or icmp[8] == 0xFF:
        return None
    if kind == ICMPV6_NA:
        address, option = icmp[8:24], OPT_TARGET_LL
    else:
        address, option = frame[ETH_HEADER + 8 : ETH_HEADER + 24], OPT_SOURCE_LL
        if address == bytes(16) or address[0] == 0xFF:  # DAD, or no unicast source
            return None
    mac = target_link_layer(icmp, option) or frame[6:12]
    if len(mac) != 6 or mac[0] & 0x01 or mac == bytes(6):  # a group or zero MAC is no device
        return None
    return str(ipaddress.IPv6Address(address)), mac.hex(":"), kind


# --- extension headers ---------------------------------------------------------------------------
# RFC 8200 section 4: hop-by-hop options, routing, fragment and destination options headers may sit
# between the fixed header and ICMPv6 or UDP. Neighbour discovery never needs them, which is why an
# attacker adds them: RA Guard on a switch that looks only at the first next header misses the RA
# behind (RFC 7113; THC-IPv6's fake_router6 -H, -F, -D). The kernel filters and the parsers walk
# at most MAX_EXTENSIONS of them, within the captured bytes.
NH_HOP_BY_HOP, NH_ROUTING, NH_FRAGMENT, NH_DEST_OPTIONS = 0, 43, 44, 60
EXTENSIONS = {
    NH_HOP_BY_HOP: "hop-by-hop",
    NH_ROUTING: "routing",
    NH_FRAGMENT: "fragment",
    NH_DEST_OPTIONS: "destination-options",
}
MAX_EXTENSIONS = 6
# A Destination Options header (8 bytes: next header, length 0, one option) with option 0x80:
# unassigned (IANA), high bits 10, so "discard, and send a Parameter Problem even to multicast".
UNKNOWN_OPTION = 0x80
UNKNOWN_OPTION_HEADER = bytes([0, 0, UNKNOWN_OPTION, 4, 0, 0, 0, 0])


class Upper(NamedTuple):  # made for every frame watch reads: a tuple is the cheapest to make
    """Where an IPv6 frame's upper-layer header starts, and behind which extension headers.

    ``protocol``: that header's type (58 ICMPv6, 17 UDP); ``start``, ``end``: offsets into the
    frame of the upper-layer data (``end`` never past the captured bytes); ``extensions``: the
    headers walked, in order; ``later_fragment``: a fragment other than the first, whose
    upper-layer header travels in another frame (``protocol`` is the fragmented packet's).
    """

    protocol: int
    start: int
    end: int
    extensions: tuple[str, ...] = ()
    later_fragment: bool = False


def upper_layer(frame: bytes) -> Upper | None:
    """The upper-layer header of an Ethernet IPv6 frame, past any extension headers, or None.

    None: not IPv6, a payload length past the captured bytes, more than MAX_EXTENSIONS extension
    headers, or one running past the payload. A first fragment (offset 0) is walked like any
    frame; a later one stops the walk at its fragment header (``later_fragment``).
    """
    if len(frame) < ETH_HEADER + IPV6_HEADER or frame[12:14] != b"\x86\xdd":
        return None
    end = ETH_HEADER + IPV6_HEADER + struct.unpack_from("!H", frame, ETH_HEADER + 4)[0]
    if frame[ETH_HEADER] >> 4 != 6 or end > len(frame):
        return None
    protocol, at = frame[ETH_HEADER + 6], ETH_HEADER + IPV6_HEADER
    walked: list[str] = []
    while protocol in EXTENSIONS:
        if len(walked) == MAX_EXTENSIONS or at + 8 > end:
            return None
        walked.append(EXTENSIONS[protocol])
        if protocol != NH_FRAGMENT:
            protocol, at = frame[at], at + 8 * (frame[at + 1] + 1)
        elif struct.unpack_from("!H", frame, at + 2)[0] & 0xFFF8:  # offset, 8-byte units
            return Upper(frame[at], at + 8, end, tuple(walked), later_fragment=True)
        else:
            protocol, at = frame[at], at + 8
    if at > end:
        return None
    return Upper(protocol, at, end, tuple(walked))


def without_extensions(frame: bytes) -> bytes | None:
    """The frame with its extension headers cut out (payload length and next header adjusted),
    for readers at fixed offsets; the frame itself when it has none; None without an upper-layer
    header (see `upper_layer`; a later fragment has none)."""
    if len(frame) > ETH_HEADER + 6 and frame[ETH_HEADER + 6] not in EXTENSIONS:
        return frame
    upper = upper_layer(frame)
    if upper is None or upper.later_fragment:
        return None
    fixed = struct.pack("!HB", upper.end - upper.start, upper.protocol)
    return b"".join(
        (
            frame[: ETH_HEADER + 4],
            fixed,
            frame[ETH_HEADER + 7 : ETH_HEADER + IPV6_HEADER],
            frame[upper.start : upper.end],
        )
    )
