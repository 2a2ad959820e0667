"""Passive capture for `ipguard watch`: ARP, DHCP and IPv6 neighbour discovery frames read off the
link, never a frame sent.

A packet socket on the interface, with a kernel filter that admits only ARP, IPv4 UDP to or from
ports 67/68 (DHCP) and ICMPv6 Router Advertisements and Neighbor Solicitations and
Advertisements, in promiscuous mode so that a
mirror port shows the frames of others too.
Frames are parsed at fixed offsets with `struct`: a flood of 100,000 frames a second leaves no time
for a scapy object per frame.

What each frame says:

- ARP: the sender's (IP, MAC) of requests, replies and gratuitous ARP is a claim of that address,
  also for a broadcast, multicast or zero MAC (Linux caches those too: the gateway's traffic
  flooded to every port, or black-holed); an ARP probe (sender IP 0.0.0.0, RFC 5227) from a
  device's MAC claims its target address.
- DHCP from a server (OFFER, ACK, NAK): a `DhcpOffer`, as the active probe records it, with
  its `message`.
- DHCP from a client (DISCOVER, REQUEST, INFORM): its MAC, the address it asks for or holds, its
  hostname (option 12) and its fingerprint: the parameter-request list (55) and vendor class (60).
- An IPv6 Neighbor Advertisement: a claim of its target address by the MAC of its target
  link-layer option (op "advert"); a Neighbor Solicitation: a claim of its source address by the
  MAC of its source link-layer option (op "solicit"; duplicate address detection, from ::, claims
  nothing); a Router Advertisement: a `RouterAdvert`, as the ipv6 phase
  records it. Both are parsed by `scanners.ipv6wire`, the phase's own parsers, behind any IPv6
  extension headers too (the RA's `evasion` names them).
- A DHCPv6 ADVERTISE or REPLY to a client: a `Dhcp6Advert`, as the ipv6 phase records its own.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
from dataclasses import dataclass
from datetime import datetime

from ipguard.errors import InterfaceError, ScanError
from ipguard.model import Dhcp6Advert, DhcpOffer, RouterAdvert
from ipguard.scanners import dhcp6wire, dhcpwire, ipv6wire, rawsock
from ipguard.scanners.ipv6bpf import upper_layer_filter

WHAT = "watch"
SNAPLEN = 1536  # a whole DHCP message; an ARP frame is 42 bytes and padding
BATCH = 4096  # frames read per call before the caller looks at its clock again
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
JSET_K = 0x45  # if A & k goto +jt else goto +jf
ETH_P_ARP = rawsock.ETH_P_ARP
ETH_P_IP = rawsock.ETH_P_IP
_ARP_IPV4 = bytes.fromhex("000108000604")  # htype Ethernet, ptype IPv4, hlen 6, plen 4
_NO_ADDRESS = bytes(4)
_DHCP_MAGIC = bytes.fromhex("63825363")
# A NAK too: a server refusing every client's address is a denial of service (and a rogue server).
SERVER_MESSAGES = {2: "offer", 5: "ack", 6: "nak"}
CLIENT_MESSAGES = {1: "discover", 3: "request", 8: "inform"}
MAX_TEXT = 255  # a hostname or vendor class longer than a DHCP option allows is cut


@dataclass(frozen=True, slots=True)
class ArpClaim:
    """An address claimed on the link: `ip` is at `mac`, said by an ARP frame of kind `op` (or by
    an IPv6 Neighbor Advertisement, op "advert", or Solicitation, op "solicit")."""

    ip: str
    mac: str
    op: str  # "request", "reply", "gratuitous", "probe", "advert", "solicit"
    frame_mac: str = ""  # the frame's Ethernet source, when it is not `mac` (ARP only)


@dataclass(frozen=True, slots=True)
class DhcpClient:
    """What a DHCP client said about itself in one message."""

    mac: str
    ip: str | None  # the address it asks for (option 50) or holds (ciaddr); None: not yet any
    message: str  # "discover", "request", "inform"
    hostname: str = ""
    parameters: tuple[int, ...] = ()  # option 55, in the client's order
    vendor_class: str = ""  # option 60


Parsed = ArpClaim | DhcpOffer | DhcpClient | RouterAdvert | Dhcp6Advert


def capture_filter(snaplen: int = SNAPLEN) -> list[rawsock.Insn]:
    """Kernel filter: ARP; unfragmented IPv4 UDP with source or destination port 67 or 68; IPv6
    UDP to port 546 (a DHCPv6 server's answer); ICMPv6 Router Advertisements, Neighbor
    Solicitations and Advertisements, also behind IPv6 extension headers (neighbour discovery
    needs none: they are how a rogue RA slips past RA Guard)."""
    insn, ldh, ldb = rawsock.Insn, rawsock.LDH_ABS, rawsock.LDB_ABS
    jeq = rawsock.JEQ_K
    # Jump offsets count from the next instruction: 14 is accept, 15 reject, 16 the IPv6 part:
    # DHCPv6 to a client (UDP port 546, no extension header), then neighbour discovery.
    return [
        insn(ldh, k=12),  # 0: EtherType
        insn(jeq, 12, 0, ETH_P_ARP),  # 1
        insn(jeq, 0, 13, ETH_P_IP),  # 2: else to 16, IPv6
        insn(ldb, k=23),  # 3: IP protocol
        insn(jeq, 0, 10, socket.IPPROTO_UDP),  # 4
        insn(ldh, k=20),  # 5: flags and fragment offset
        insn(JSET_K, 8, 0, 0x1FFF),  # 6: a later fragment has no UDP header
        insn(rawsock.LDX_MSH, k=14),  # 7: X = IP header length
        insn(rawsock.LDH_IND, k=14),  # 8: UDP source port
        insn(jeq, 4, 0, 67),  # 9
        insn(jeq, 3, 0, 68),  # 10
        insn(rawsock.LDH_IND, k=16),  # 11: UDP destination port
        insn(jeq, 1, 0, 67),  # 12
        insn(jeq, 0, 1, 68),  # 13
        insn(rawsock.RET_K, k=snaplen),  # 14: accept
        insn(rawsock.RET_K, k=0),  # 15: reject
        insn(ldh, k=12),  # 16: EtherType
        insn(jeq, 0, 5, ipv6wire.ETH_P_IPV6),  # 17: else to 23
        insn(ldb, k=20),  # 18: IPv6 next header
        insn(jeq, 0, 3, socket.IPPROTO_UDP),  # 19
        insn(ldh, k=56),  # 20: UDP destination port
        insn(jeq, 0, 1, dhcp6wire.DHCP6_CLIENT_PORT),  # 21: a server's answer to a client
        insn(rawsock.RET_K, k=snaplen),  # 22: accept
        *upper_layer_filter(  # 23
            ipv6wire.NH_ICMPV6,
            [(rawsock.LDB_IND, 0, (ipv6wire.ICMPV6_RA, ipv6wire.ICMPV6_NS, ipv6wire.ICMPV6_NA))],
            snaplen,
        ),
    ]


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _no_device(mac: bytes) -> bool:
    return bool(mac[0] & 0x01) or mac == bytes(6)  # multicast, broadcast or zero


def parse_arp(frame: bytes) -> ArpClaim | None:
    """The claim an Ethernet ARP frame makes, or None (not IPv4 over Ethernet, no usable sender)."""
    if len(frame) < 42 or frame[14:20] != _ARP_IPV4:
        return None
    sender_mac = frame[22:28]
    op = frame[20] << 8 | frame[21]
    if op not in (1, 2):  # RARP, InARP…: no host's cache takes them as ARP
        return None
    sender_ip, target_ip = frame[28:32], frame[38:42]
    frame_mac = _mac(frame[6:12]) if frame[6:12] != sender_mac else ""
    if sender_ip == _NO_ADDRESS:
        # A probe asks, it poisons nobody: one naming no device's MAC claims nothing.
        if op != 1 or target_ip == _NO_ADDRESS or _no_device(sender_mac):
            return None
        return ArpClaim(socket.inet_ntoa(target_ip), _mac(sender_mac), "probe", frame_mac)
    kind = "gratuitous" if sender_ip == target_ip else "request" if op == 1 else "reply"
    return ArpClaim(socket.inet_ntoa(sender_ip), _mac(sender_mac), kind, frame_mac)


def dhcp_options(data: bytes, start: int) -> dict[int, bytes]:
    """The options of a DHCP field from `start` (an option sent in parts joined, RFC 3396); one
    running past the end of the frame is cut there."""
    options: dict[int, bytes] = {}
    at, end = start, len(data)
    while at < end:
        code = data[at]
        if code == 0:  # pad
            at += 1
            continue
        if code == 255 or at + 1 >= end:  # end
            break
        length = data[at + 1]
        options[code] = options.get(code, b"") + data[at + 2 : at + 2 + length]
        at += 2 + length
    return options


def _text(raw: bytes | None) -> str:
    if not raw:
        return ""
    text = raw.rstrip(b"\x00")[:MAX_TEXT].decode("utf-8", "backslashreplace")
    # A NUL inside: PostgreSQL keeps none in text (a finding carrying it failed to store, and the
    # watcher with it), so it is written as the ledger writes it (runs.storable_text).
    return text.replace("\x00", "\\u0000")


def _ipv4(raw: bytes | None) -> str | None:
    if raw is None or len(raw) < 4 or raw[:4] == _NO_ADDRESS:
        return None
    return socket.inet_ntoa(raw[:4])


def parse_dhcp(frame: bytes, seen_at: datetime | None = None) -> DhcpOffer | DhcpClient | None:
    """A server's OFFER/ACK/NAK or a client's DISCOVER/REQUEST/INFORM in an Ethernet frame, or
    None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_UDP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    bootp = 14 + ihl + 8
    if ihl < 20 or len(frame) < bootp + 240 or frame[bootp + 236 : bootp + 240] != _DHCP_MAGIC:
        return None
    if frame[bootp + 1] != 1 or frame[bootp + 2] != 6:  # htype Ethernet, hlen 6
        return None
    # Options may go on in `file` and `sname` (option 52), read as the active probe reads them.
    options = dhcpwire.all_options(frame[bootp:], lambda field: dhcp_options(field, 0)) or {}
    message = options.get(53, b"\x00")[:1]
    kind = message[0] if message else 0
    op = frame[bootp]
    if op == 2 and kind in SERVER_MESSAGES:
        routers = options.get(3, b"")
        dns = options.get(6, b"")
        server = _ipv4(options.get(54)) or socket.inet_ntoa(frame[26:30])
        return DhcpOffer(
            server_ip=server,
            server_mac=_mac(frame[6:12]),
            offered_ip=socket.inet_ntoa(frame[bootp + 16 : bootp + 20]),
            router=_ipv4(routers[:4]),
            dns=tuple(socket.inet_ntoa(dns[at : at + 4]) for at in range(0, len(dns) - 3, 4)),
            seen_at=seen_at,
            message=SERVER_MESSAGES[kind],
        )
    if op == 1 and kind in CLIENT_MESSAGES:
        return DhcpClient(
            mac=_mac(frame[bootp + 28 : bootp + 34]),
            ip=_ipv4(options.get(50)) or _ipv4(frame[bootp + 12 : bootp + 16]),
            message=CLIENT_MESSAGES[kind],
            hostname=_text(options.get(12)),
            parameters=tuple(options.get(55, b"")),
            vendor_class=_text(options.get(60)),
        )
    return None


def parse_frame(frame: bytes, seen_at: datetime | None = None) -> Parsed | None:
    """What one captured frame says (see the module docstring), or None when it says nothing."""
    if frame[12:14] == b"\x08\x06":
        return parse_arp(frame)
    if frame[12:14] == b"\x86\xdd":
        return parse_ndp(frame, seen_at)
    return parse_dhcp(frame, seen_at)


def parse_ndp(
    frame: bytes, seen_at: datetime | None = None
) -> ArpClaim | RouterAdvert | Dhcp6Advert | None:
    """A neighbour message's claim, a Router Advertisement or a DHCPv6 server's answer to a
    client, or None for anything else."""
    if len(frame) <= ipv6wire.ETH_HEADER + ipv6wire.IPV6_HEADER:
        return None
    if frame[ipv6wire.ETH_HEADER + 6] == ipv6wire.NH_UDP:
        return dhcp6wire.parse_answer(frame, seen_at)
    plain = frame[ipv6wire.ETH_HEADER + 6] == ipv6wire.NH_ICMPV6  # the usual case, read at once
    if not plain or frame[ipv6wire.ETH_HEADER + ipv6wire.IPV6_HEADER] == ipv6wire.ICMPV6_RA:
        advert = ipv6wire.parse_ra(frame, seen_at)
        if advert is not None or plain:
            return advert
    claimed = ipv6wire.parse_neighbour(frame)
    if claimed is None:
        return None
    return ArpClaim(
        claimed[0], claimed[1], "advert" if claimed[2] == ipv6wire.ICMPV6_NA else "solicit"
    )


class Capture:
    """A listening packet socket on one interface; `read` returns the frames queued so far.

    Example (needs CAP_NET_RAW)::

        with Capture("eth0") as capture:
            frames = capture.read(timeout=0.1)   # [b'\\xff\\xff…', …]

    Raises InterfaceError when the interface is missing or carries no Ethernet (or disappears:
    `read` then raises it too), PrivilegeError without CAP_NET_RAW.
    """

    def __init__(self, interface: str) -> None:
        info = rawsock.interface_info(interface)
        rawsock.require_ethernet(info)
        self.interface = info
        self.drops = 0  # frames the kernel dropped because we read too slowly
        sock = rawsock.open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, WHAT)
        try:
            rawsock.attach_filter(sock, capture_filter())
            rawsock.enlarge_buffer(sock)
            # What this machine sends itself (a scan beside us) is not news from the link.
            with contextlib.suppress(OSError):
                sock.setsockopt(rawsock.SOL_PACKET, rawsock.PACKET_IGNORE_OUTGOING, 1)
            sock.bind((info.name, rawsock.ETH_P_ALL))
            # A mirror port delivers other hosts' unicast frames only in promiscuous mode; the
            # kernel drops the membership with the socket.
            mreq = struct.pack("iHH8s", info.index, PACKET_MR_PROMISC, 0, b"")
            with contextlib.suppress(OSError):
                sock.setsockopt(rawsock.SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as error:
            sock.close()
            if error.errno in (errno.ENODEV, errno.ENXIO):
                raise InterfaceError(
                    f"interface {interface} disappeared while opening it"
                ) from None
            raise ScanError(f"{WHAT} cannot listen on {interface}: {error.strerror}") from None
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)

    def read(self, timeout: float, limit: int = BATCH) -> list[bytes]:
        """Frames queued now (up to `limit`), waiting at most `timeout` seconds for the first."""
        recv = self._sock.recv
        frames: list[bytes] = []
        try:
            if not self._poller.poll(int(timeout * 1000)):
                return frames
            for _ in range(limit):
                frames.append(recv(SNAPLEN))
        except BlockingIOError:
            pass
        except OSError as error:
            if frames:
                return frames  # the error comes back on the next read
            raise InterfaceError(
                f"interface {self.interface.name} failed under {WHAT}: {error.strerror}"
            ) from None
        return frames

    def dropped(self) -> int:
        """Frames the kernel dropped since the last call (the socket's buffer was full)."""
        lost = rawsock.packet_drops(self._sock)
        self.drops += lost
        return lost

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
