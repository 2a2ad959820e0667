"""TCP ping: the routed addresses that ignored an echo request, asked again over TCP.

A host firewall that drops ICMP echo (a hardened server, a Windows PC on a public-profile network,
a printer behind an ACL) makes a routed host invisible to the ICMP sweep, and so to every policy.
As nmap's host discovery does by default, each address still silent after the echo sweep gets a
TCP SYN to port 443 and then an ACK to port 80: a SYN-ACK or a RST from either proves a host is
there (a closed port answers RST; a bare ACK is answered RST by any host that keeps no connection
state for it). The probes alternate per address, one per pass, so `retries` and `rate` mean what
they mean for the other sweeps and the run's one pacing budget holds.

The replies are checked against what we sent: a SYN-ACK or RST from 443 must acknowledge our
sequence number plus one, a RST from 80 must carry the acknowledgement number we sent as its
sequence number (RFC 9293 3.10.7.1), both to the local port this sweep holds. The port is bound by
a TCP socket for the sweep's length (so nothing else on this machine is given it), which accepts
nothing: the kernel answers each SYN-ACK with a RST, and no connection is ever left half open.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Sequence
from functools import partial

from ipguard.model import IgnoredReply, ObservationSource
from ipguard.scanners import rawsock
from ipguard.scanners.icmp import RawIpLink, ones_sum
from ipguard.scanners.sweep import Link, Sweep

WHAT = "TCP sweep"
SYN_PORT = 443  # nmap's default -PS port: HTTPS is the port most often open and allowed through
ACK_PORT = 80  # nmap's default -PA port
SYN, RST, ACK = 0x02, 0x04, 0x10
WINDOW = 1024
HEADER = 20  # a TCP header without options
ROUTE_GRAIN = 3  # the first three octets: source addresses are learnt per /24, as routes are


class TcpSweep(Sweep):
    """Finds routed hosts that answer TCP but not ICMP echo (meant for the echo sweep's silent).

    Example (needs CAP_NET_RAW)::

        sweep = TcpSweep(Scope(["198.19.0.0/24"]), rate=2000)
        result = sweep.sweep(["198.19.0.9"])
        [o.source for o in result.observations]   # ['tcp']
    """

    what = WHAT

    def open(self, targets: list[bytes]) -> Link:
        """The port this sweep holds, a raw TCP socket to send on and one (filtered) to read."""
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind(("0.0.0.0", 0))
            port = holder.getsockname()[1]
            receiver = rawsock.open_socket(
                socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP, WHAT
            )
        except BaseException:
            holder.close()
            raise
        try:
            rawsock.attach_filter(receiver, _reply_filter(port))
            rawsock.enlarge_buffer(receiver)
            sender = rawsock.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP, WHAT)
            rawsock.attach_filter(sender, [rawsock.Insn(rawsock.RET_K, k=0)])
            rawsock.enlarge_buffer(sender, rawsock.DEFAULT_SNDBUF, send=True)
        except BaseException:
            receiver.close()
            holder.close()
            raise
        return _TcpLink(receiver, sender, targets, holder, port)


class _TcpLink(RawIpLink):
    """One TCP sweep: its sockets, its local port and the numbers its replies must echo."""

    name = "tcp"
    unsolicited = IgnoredReply.TCP_UNSOLICITED
    over_limit = IgnoredReply.TCP_OVER_LIMIT
    probe = "a TCP probe"
    allow = f"outgoing TCP to ports {SYN_PORT} and {ACK_PORT}"
    observed_as = ObservationSource.TCP

    def __init__(
        self,
        receiver: socket.socket,
        sender: socket.socket,
        targets: list[bytes],
        holder: socket.socket,
        port: int,
    ) -> None:
        super().__init__(receiver, sender, targets)
        self._holder = holder
        self._port = port
        self._targets = targets
        self._seq = secrets.randbits(32)  # a SYN's: the answer acknowledges it plus one
        self._ack = secrets.randbits(32)  # an ACK's: the RST it draws carries it as its sequence
        self._syn = _header(port, SYN_PORT, self._seq, 0, SYN)
        self._bare_ack = _header(port, ACK_PORT, secrets.randbits(32), self._ack, ACK)
        self._probes = bytearray(len(targets))  # probes sent per target: even SYN, odd ACK
        self._local: dict[bytes, bytes] = {}  # our address towards each /24

    def send(self, batch: Sequence[int]) -> None:
        """One probe per target: a SYN on its first, third, … pass, an ACK on the others."""
        put, addresses, targets = self._sender.sendto, self._addresses, self._targets
        probes = self._probes
        for i in batch:
            template = self._bare_ack if probes[i] & 1 else self._syn
            probes[i] = min(probes[i] + 1, 255)
            packet = _with_checksum(template, self._local_to(targets[i]), targets[i])
            try:
                put(packet, addresses[i])
            except OSError as exc:
                self.sent_failed(exc, partial(put, packet, addresses[i]), addresses[i][0])

    def admit(self, reply: bytes) -> bytes | None:
        """b"" for a SYN-ACK or RST that answers one of our probes, None for anything else."""
        tcp = self.transport(reply, HEADER)
        if tcp is None:
            return None
        sport, dport, seq, ack, _offset, flags = struct.unpack_from("!HHIIBB", tcp)
        if dport != self._port:
            return None
        if sport == SYN_PORT and flags & ACK and flags & (SYN | RST):
            return b"" if ack == (self._seq + 1) & 0xFFFFFFFF else None
        if sport == ACK_PORT and flags & RST:
            return b"" if seq == self._ack else None
        return None

    def close(self) -> None:
        """Close the sockets and give the port back."""
        super().close()
        self._holder.close()

    def _local_to(self, target: bytes) -> bytes:
        """Our address on the route to `target` (the checksum covers it); asked once per /24."""
        grain = target[:ROUTE_GRAIN]
        found = self._local.get(grain)
        if found is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((socket.inet_ntoa(target), 9))  # a routing lookup, nothing sent
                    found = socket.inet_aton(probe.getsockname()[0])
                except OSError:
                    found = bytes(4)  # no route: the send fails and says so
            self._local[grain] = found
        return found


def _header(sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    """A 20-byte TCP header with a zero checksum."""
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, WINDOW, 0, 0)


def _with_checksum(header: bytes, source: bytes, destination: bytes) -> bytes:
    """`header` with its checksum over the IPv4 pseudo-header (the kernel leaves it to us)."""
    pseudo = source + destination + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    total = ones_sum(pseudo + header)
    return header[:16] + struct.pack("!H", ~total & 0xFFFF) + header[18:]


def _reply_filter(port: int) -> list[rawsock.Insn]:
    """Kernel filter for a raw TCP socket (data starts at the IP header): segments to `port`."""
    return [
        rawsock.Insn(rawsock.LDX_MSH, k=0),  # X = IP header length
        *rawsock.match_all([(rawsock.Insn(rawsock.LDH_IND, k=2), port)], RawIpLink.snaplen),
    ]
