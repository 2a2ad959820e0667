"""Forwarding probe: which hosts of the local link route packets that are not addressed to them.

For each suspect (an IP and the MAC it answered ARP from) two kinds of ICMP echo request leave a
raw packet socket, both with the suspect's MAC as Ethernet destination:

- relayed probes, whose IP destination is another live host (a witness). A plain host drops
  them; a router forwards them, so the witness's echo reply comes back to us, and as it sends
  the packet out of the interface it came in by, it usually sends us an ICMP redirect as well;
- a direct probe to the suspect's own address, whose reply TTL tells how far away the real
  answerer is: 63, 127 or 254 on the local link means one hop behind the device (NAT).

The direct probes go first: the hosts that answer them serve as witnesses, since many hosts drop
pings. A receiver started before the first probe reads every ICMP packet; a probe's identifier
and sequence number, echoed in replies and quoted in ICMP errors, say which suspect it tested.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from ipguard.errors import ScanError
from ipguard.model import Evidence, EvidenceKind, PointsTo
from ipguard.scanners import rawsock
from ipguard.scanners.pacing import Pacer
from ipguard.scanners.receiver import Receiver

WHAT = "forwarding probe"
SNAPLEN = 256
ECHO_REPLY, UNREACHABLE, REDIRECT, ECHO_REQUEST = 0, 3, 5, 8
WITNESSES = 2  # relayed probes per suspect, each through a different witness
ONE_HOP_TTLS = frozenset({63, 127, 254})
PAYLOAD = b"ipguard fwd probe"


@dataclass(frozen=True)
class _Probe:
    """One echo request we sent: which suspect it tests, and where its IP header points."""

    suspect: tuple[str, str]  # (ip, mac)
    destination: str  # the witness, or the suspect itself for a direct probe

    @property
    def direct(self) -> bool:
        """A probe of the suspect's own address (not one to relay)."""
        return self.destination == self.suspect[0]


def probe(
    iface: rawsock.InterfaceInfo,
    suspects: Sequence[tuple[str, str]],
    candidates: Sequence[str],
    *,
    timeout: float,
    rate: float = 1000,
) -> list[Evidence]:
    """Probe every (ip, mac) suspect and judge the replies; needs CAP_NET_RAW.

    First the direct probes, so that the witnesses can be hosts known to answer an echo request
    (many hosts drop pings): `candidates` are live hosts with a single MAC, in order of
    preference. Then the relayed probes, and a wait of `timeout` seconds for their answers.
    """
    assert iface.ipv4 is not None, "the caller checks that the interface has an address"
    plan = _Plan(iface.mac, iface.ipv4)
    for suspect in suspects:
        plan.add(suspect, suspect[0])
    if not plan.frames:
        return []

    receiver_sock = rawsock.receiving_socket(iface, rawsock.ETH_P_IP, _icmp_filter(), WHAT)
    try:
        sender_sock = rawsock.sending_socket(iface, WHAT)
    except BaseException:
        receiver_sock.close()
        raise
    receiver = Receiver(receiver_sock, SNAPLEN, name="ipguard-forwarding-receiver")
    receiver.start()
    try:
        pacer = Pacer(rate)
        _send(sender_sock, plan.frames, pacer)
        answering = _wait_for_answers(receiver.records, plan.probes, WITNESSES + 1, timeout)
        witnesses = answering + [ip for ip in candidates if ip not in answering]
        sent = len(plan.frames)
        for suspect in suspects:
            for witness in [w for w in witnesses[: WITNESSES + 1] if w != suspect[0]][:WITNESSES]:
                plan.add(suspect, witness)
        _send(sender_sock, plan.frames[sent:], pacer)
        time.sleep(timeout)
    finally:
        receiver.stop()
        sender_sock.close()
        receiver_sock.close()
    if receiver.error is not None:
        raise ScanError(f"{WHAT} lost its socket on {iface.name}: {receiver.error.strerror}")
    return _judge([frame for _when, frame in receiver.records], plan.probes)


class _Plan:
    """The probes to send, each keyed by the (identifier, sequence) its replies carry."""

    def __init__(self, mac: str, ip: str) -> None:
        self.mac = mac
        self.ip = ip
        self.base = secrets.randbits(16)
        self.probes: dict[tuple[int, int], _Probe] = {}
        self.frames: list[bytes] = []

    def add(self, suspect: tuple[str, str], destination: str) -> None:
        """Plan an echo request for `destination`, handed to the suspect's MAC."""
        n = len(self.frames)
        key = ((self.base + n // 65536) & 0xFFFF, n % 65536)
        self.probes[key] = _Probe(suspect, destination)
        self.frames.append(_echo(self.mac, self.ip, suspect[1], destination, *key))


def _send(sock: socket.socket, frames: Sequence[bytes], pacer: Pacer) -> None:
    for frame in frames:
        pacer.acquire(1)
        try:
            sock.send(frame)
        except OSError as exc:
            rawsock.send_when_room(partial(sock.send, frame), exc, WHAT)


def _wait_for_answers(
    records: list[tuple[float, bytes]],
    probes: dict[tuple[int, int], _Probe],
    enough: int,
    timeout: float,
) -> list[str]:
    """Hosts that answered their direct probe, in order of answer; waits until `enough` did."""
    answering: dict[str, None] = {}
    deadline = time.monotonic() + timeout
    cursor = 0
    while True:
        end = len(records)
        for _when, frame in records[cursor:end]:
            packet = _icmp(frame)
            if packet is None or packet[2][0] != ECHO_REPLY:
                continue
            sent = probes.get(_key(packet[2]))
            if sent is not None and sent.direct and packet[0] == sent.destination:
                answering.setdefault(packet[0])
        cursor = end
        if len(answering) >= enough or time.monotonic() >= deadline:
            return list(answering)
        time.sleep(0.01)


def _judge(frames: list[bytes], probes: dict[tuple[int, int], _Probe]) -> list[Evidence]:
    found: dict[tuple[str, str, EvidenceKind], Evidence] = {}

    def add(probe: _Probe, kind: EvidenceKind, detail: str) -> None:
        ip, mac = probe.suspect
        found.setdefault(
            (ip, mac, kind),
            Evidence(ip=ip, mac=mac, kind=kind, points_to=PointsTo.ROUTER, detail=detail),
        )

    for frame in frames:
        packet = _icmp(frame)
        if packet is None:
            continue
        source, ttl, icmp = packet
        if icmp[0] == ECHO_REPLY:
            sent = probes.get(_key(icmp))
            if sent is None or source != sent.destination:
                continue
            if not sent.direct:
                add(
                    sent,
                    EvidenceKind.FORWARDING,
                    f"relayed an echo request to {source}, which answered us",
                )
            elif ttl in ONE_HOP_TTLS:
                add(
                    sent,
                    EvidenceKind.TTL,
                    f"answers on the local link with TTL {ttl}: one hop behind it",
                )
            continue
        quoted = _quoted_probe(icmp)
        if quoted is None:
            continue
        destination, key = quoted
        sent = probes.get(key)
        if sent is None or sent.direct or destination != sent.destination:
            continue
        if icmp[0] == REDIRECT:
            gateway = socket.inet_ntoa(icmp[4:8])
            add(
                sent,
                EvidenceKind.ICMP_REDIRECT,
                f"{source} redirected our packet for {destination} to gateway {gateway}",
            )
        elif icmp[0] == UNREACHABLE:
            add(
                sent,
                EvidenceKind.FORWARDING,
                f"{source} answered our packet for {destination} with ICMP unreachable "
                f"(code {icmp[1]}), as a router does",
            )
    return list(found.values())


def _icmp(frame: bytes) -> tuple[str, int, bytes] | None:
    """(source address, TTL, ICMP message) of an IPv4 ICMP frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_ICMP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    icmp = frame[14 + ihl :]
    if ihl < 20 or len(icmp) < 8:
        return None
    return socket.inet_ntoa(frame[26:30]), frame[22], icmp


def _key(icmp: bytes) -> tuple[int, int]:
    return int.from_bytes(icmp[4:6], "big"), int.from_bytes(icmp[6:8], "big")


def _quoted_probe(icmp: bytes) -> tuple[str, tuple[int, int]] | None:
    """The destination and (id, seq) of the echo request an ICMP error quotes, if it quotes one."""
    inner = icmp[8:]
    if len(inner) < 20 or inner[0] >> 4 != 4 or inner[9] != socket.IPPROTO_ICMP:
        return None
    ihl = (inner[0] & 0x0F) * 4
    quoted = inner[ihl : ihl + 8]
    if len(quoted) < 8 or quoted[0] != ECHO_REQUEST:
        return None
    return socket.inet_ntoa(inner[16:20]), _key(quoted)


def _echo(
    source_mac: str, source_ip: str, via_mac: str, destination: str, ident: int, seq: int
) -> bytes:
    """An echo request for `destination`, handed to the host with MAC `via_mac`."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    return bytes(
        Ether(src=source_mac, dst=via_mac)
        / IP(src=source_ip, dst=destination, ttl=64)
        / ICMP(type=ECHO_REQUEST, id=ident, seq=seq)
        / PAYLOAD
    )


def _icmp_filter() -> list[rawsock.Insn]:
    """Kernel filter: IPv4 ICMP frames only."""
    return rawsock.match_all(
        [
            (rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.ETH_P_IP),
            (rawsock.Insn(rawsock.LDB_ABS, k=23), socket.IPPROTO_ICMP),
        ],
        SNAPLEN,
    )
