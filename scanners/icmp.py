"""ICMP echo sweep: who answers a ping in subnets beyond the local link, and with what TTL.

ARP cannot cross a router, so routed subnets are swept with echo requests through the kernel's
routing (a raw IPPROTO_ICMP socket). One packet built once (struct, no scapy), its sequence number
and checksum patched per target; an identifier drawn per sweep tells our replies from anyone else's.
The TTL of a reply hints at the hops and the operating system behind it (rogue-router evidence).
The schedule, the receiver and the reply budget are the sweep template's (scanners.sweep).
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from ipguard.errors import ScanError
from ipguard.model import IgnoredReply, Observation, ObservationSource
from ipguard.scanners import rawsock
from ipguard.scanners.sweep import Link, Sweep

WHAT = "ICMP sweep"
SNAPLEN = 128  # IP header (with options) + ICMP header; the payload is not needed
ECHO_REPLY = 0
ECHO_REQUEST = 8
PAYLOAD = b"ipguard sweep\0\0\0"  # 16 bytes, so the packet is recognisable in a capture
# Per-target errors: this address is unreachable (neighbour resolution failed or the table is
# full). The sweep goes on; the target simply stays silent.
SKIPPABLE = frozenset({errno.EHOSTUNREACH, errno.EINVAL, errno.EHOSTDOWN})


class IcmpSweep(Sweep):
    """Finds the hosts of routed subnets by ICMP echo, keeping every reply and its TTL.

    Meant for subnets behind a router: on the local link each target costs the kernel a neighbour
    entry (at most 1,024 by default, gc_thresh3), so large on-link subnets belong to ArpSweep.

    Example (needs CAP_NET_RAW)::

        sweep = IcmpSweep(Scope(["198.19.0.0/24"]), rate=2000)
        result = sweep.sweep(sweep.scope.targets())
        {o.ip: o.ttl for o in result.observations}   # {'198.19.0.7': 63, ...}
    """

    what = WHAT

    def open(self, targets: list[bytes]) -> Link:
        """A raw ICMP socket to send echo requests, another (filtered) to read our replies."""
        ident = secrets.randbits(16)
        receiver = rawsock.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, WHAT)
        try:
            rawsock.attach_filter(receiver, _reply_filter(ident))
            rawsock.enlarge_buffer(receiver)
            sender = rawsock.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, WHAT)
            # The sender must not queue copies of every ICMP packet the host receives.
            rawsock.attach_filter(sender, [rawsock.Insn(rawsock.RET_K, k=0)])
            rawsock.enlarge_buffer(sender, rawsock.DEFAULT_SNDBUF, send=True)
        except BaseException:
            receiver.close()
            raise
        return _IcmpLink(receiver, sender, targets, ident)


class RawIpLink(Link):
    """A sweep over raw IPv4 sockets: replies routed back to us, read with their IP header.

    The receiver is filtered by the kernel (the sweep's own identifier or port), the sender
    queues nothing. ICMP echo (here) and TCP ping (scanners.tcpping) share it.
    """

    snaplen = SNAPLEN
    responders_per_target = 1  # a routed reply comes from the address it answers for
    probe = "a probe"  # what a refused send names: "an echo request"
    allow = "outgoing probes"  # and what it asks the firewall to allow: "outgoing ICMP echo"
    observed_as: ObservationSource  # the source of the observations its replies make

    def __init__(
        self, receiver: socket.socket, sender: socket.socket, targets: list[bytes]
    ) -> None:
        super().__init__(receiver)
        self._sender = sender
        self._addresses = [(socket.inet_ntoa(ip), 0) for ip in targets]

    def sent_failed(self, exc: OSError, again: Callable[[], object], address: str) -> None:
        """Go on past an unreachable target, fail the sweep on a missing route or a firewall."""
        if exc.errno in SKIPPABLE:
            return  # the target simply stays silent
        if exc.errno == errno.ENETUNREACH:
            raise ScanError(
                f"{self.what}: no route to {address}; add a route to its subnet or sweep it by ARP"
            ) from exc
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise ScanError(
                f"{self.what}: the local firewall refused {self.probe} to {address}; "
                f"allow {self.allow}"
            ) from exc
        rawsock.send_when_room(again, exc, self.what)

    @property
    def what(self) -> str:
        """The sweep's name in errors: "ICMP sweep"."""
        return f"{self.name.upper()} sweep"

    def source(self, reply: bytes) -> bytes:
        """The source address of the IPv4 packet."""
        return reply[12:16]

    @staticmethod
    def transport(reply: bytes, length: int) -> bytes | None:
        """The first `length` bytes after the IPv4 header, or None when `reply` is no such packet.

        The kernel hands a raw socket whole IPv4 packets; anything shorter is no reply of ours.
        """
        if len(reply) < 20 or reply[0] >> 4 != 4 or (reply[0] & 0x0F) < 5:
            return None
        ihl = (reply[0] & 0x0F) * 4
        header = reply[ihl : ihl + length]
        return header if len(header) == length else None

    def observation(
        self, target: bytes, reply: bytes, seen_at: datetime, rtt_ms: float | None
    ) -> Observation:
        """An IP answering, with the TTL it arrived with (a hint of the hops behind it)."""
        if self.source_ip is None:  # the local address the replies came back to
            self.source_ip = socket.inet_ntoa(reply[16:20])
        return Observation(
            ip=socket.inet_ntoa(target),
            mac=None,
            seen_at=seen_at,
            source=self.observed_as,
            ttl=reply[8],
            rtt_ms=rtt_ms,
        )

    def drops(self) -> int:
        """Replies the kernel dropped: a raw IP socket tells only through /proc (net/raw).

        Read in the calling thread's network namespace, where the sweep opened the socket.
        """
        inode = str(os.fstat(self.receiver.fileno()).st_ino)
        try:
            with open("/proc/thread-self/net/raw") as table:
                for line in table:
                    # sl local rem st tx:rx tr:tm retr uid timeout inode … drops
                    fields = line.split()
                    if len(fields) > 12 and fields[9] == inode:
                        return int(fields[12])
        except (OSError, ValueError):
            pass
        return 0

    def close(self) -> None:
        """Close both sockets on a background thread."""
        rawsock.close_soon(self._sender.close, self.receiver.close)


class _IcmpLink(RawIpLink):
    """One ICMP sweep's sockets and its identifier, which tells our replies from anyone else's."""

    name = "icmp"
    unsolicited = IgnoredReply.ICMP_UNSOLICITED
    over_limit = IgnoredReply.ICMP_OVER_LIMIT
    probe = "an echo request"
    allow = "outgoing ICMP echo"
    observed_as = ObservationSource.ICMP

    def __init__(
        self, receiver: socket.socket, sender: socket.socket, targets: list[bytes], ident: int
    ) -> None:
        super().__init__(receiver, sender, targets)
        self._ident = ident
        self._packet = bytearray(_echo_template(ident))
        self._base_sum = ones_sum(self._packet)  # with sequence 0 and checksum 0

    def send(self, batch: Sequence[int]) -> None:
        """One echo request per target, its sequence number the target's index (mod 2^16)."""
        put, packet, addresses = self._sender.sendto, self._packet, self._addresses
        base_sum = self._base_sum
        for i in batch:
            patch_echo(packet, base_sum, i & 0xFFFF)
            try:
                put(packet, addresses[i])
            except OSError as exc:
                self.sent_failed(exc, partial(put, packet, addresses[i]), addresses[i][0])

    def admit(self, reply: bytes) -> bytes | None:
        """b"" for an echo reply carrying our identifier, None for anything else."""
        icmp = self.transport(reply, 8)
        if icmp is None or icmp[0] != ECHO_REPLY or int.from_bytes(icmp[4:6]) != self._ident:
            return None
        return b""


def _echo_template(ident: int) -> bytes:
    """An echo request with our identifier, sequence 0 and a zero checksum (patched per probe)."""
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, 0) + PAYLOAD


def patch_echo(packet: bytearray, base_sum: int, seq: int) -> None:
    """Set an echo request's sequence number and its checksum, in place.

    `base_sum` is `ones_sum` of the packet with sequence and checksum zero: adding the sequence
    to it (ones' complement) gives the new packet's sum without reading the payload again.
    """
    total = base_sum + seq
    total = (total & 0xFFFF) + (total >> 16)
    packet[2:4] = (~total & 0xFFFF).to_bytes(2, "big")
    packet[6:8] = seq.to_bytes(2, "big")


def ones_sum(data: bytes | bytearray) -> int:
    """The folded 16-bit ones'-complement sum of `data` (even length), not yet inverted."""
    total = sum(int.from_bytes(data[k : k + 2], "big") for k in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _reply_filter(ident: int) -> list[rawsock.Insn]:
    """Kernel filter for a raw ICMP socket (data starts at the IP header): our echo replies."""
    return [
        rawsock.Insn(rawsock.LDX_MSH, k=0),  # X = IP header length
        *rawsock.match_all(
            [
                (rawsock.Insn(rawsock.LDB_IND, k=0), ECHO_REPLY),  # ICMP type
                (rawsock.Insn(rawsock.LDH_IND, k=4), ident),  # ICMP identifier
            ],
            SNAPLEN,
        ),
    ]
