"""ICMP echo sweep: who answers a ping in subnets beyond the local link, and with what TTL.

ARP cannot cross a router, so routed subnets are swept with echo requests through the kernel's
routing (a raw IPPROTO_ICMP socket). One packet built once with scapy, its sequence number and
checksum patched per target; an identifier drawn per sweep tells our replies from anyone else's.
The TTL of a reply hints at the hops and the operating system behind it (rogue-router evidence).
"""

from __future__ import annotations

import errno
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from ipguard.errors import ScanError
from ipguard.model import Observation
from ipguard.scanners import rawsock
from ipguard.scanners.base import Progress, Sweep, SweepResult
from ipguard.scanners.probing import ProbeLog, run_schedule
from ipguard.scanners.scope import Scope

WHAT = "ICMP sweep"
SNAPLEN = 128  # IP header (with options) + ICMP header; the payload is not needed
ECHO_REPLY = 0
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

    def __init__(
        self,
        scope: Scope,
        *,
        rate: float = 2000,
        retries: int = 2,
        timeout: float = 1.0,
        progress: Progress | None = None,
    ) -> None:
        if rate <= 0 or retries < 0 or timeout < 0:
            raise ValueError(
                f"rate must be > 0, retries and timeout >= 0 (got {rate}, {retries}, {timeout})"
            )
        self.scope = scope
        self.rate = rate
        self.retries = retries
        self.timeout = timeout
        self.progress = progress

    def sweep(self, targets: Iterable[str]) -> SweepResult:
        """Ping every target; ScopeError before any packet if one lies outside the scope."""
        packed = self.scope.check_all_v4(targets)
        addresses = [(socket.inet_ntoa(ip), 0) for ip in packed]
        index = {ip: i for i, ip in enumerate(packed)}
        ident = secrets.randbits(16)
        packet = bytearray(_echo_template(ident))
        base_sum = _ones_sum(packet)  # with sequence 0 and checksum 0

        receiver_sock = rawsock.open_socket(
            socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, WHAT
        )
        try:
            rawsock.attach_filter(receiver_sock, _reply_filter(ident))
            rawsock.enlarge_receive_buffer(receiver_sock)
            sender_sock = rawsock.open_socket(
                socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, WHAT
            )
            # The sender must not queue copies of every ICMP packet the host receives.
            rawsock.attach_filter(sender_sock, [rawsock.Insn(rawsock.RET_K, k=0)])
        except BaseException:
            receiver_sock.close()
            raise
        receiver = rawsock.Receiver(receiver_sock, SNAPLEN, name="ipguard-icmp-receiver")
        records = receiver.records
        cursor = 0
        unreachable = 0

        def send(batch: Sequence[int]) -> None:
            nonlocal unreachable
            put = sender_sock.sendto
            for i in batch:
                seq = i & 0xFFFF
                total = base_sum + seq
                total = (total & 0xFFFF) + (total >> 16)
                packet[2:4] = (~total & 0xFFFF).to_bytes(2, "big")
                packet[6:8] = seq.to_bytes(2, "big")
                try:
                    put(packet, addresses[i])
                except OSError as exc:
                    if exc.errno in SKIPPABLE:
                        unreachable += 1
                    elif exc.errno == errno.ENETUNREACH:
                        raise ScanError(
                            f"{WHAT}: no route to {addresses[i][0]}; "
                            "add a route to its subnet or sweep it by ARP"
                        ) from exc
                    elif exc.errno in (errno.EPERM, errno.EACCES):
                        raise ScanError(
                            f"{WHAT}: the local firewall refused an echo request to "
                            f"{addresses[i][0]}; allow outgoing ICMP echo"
                        ) from exc
                    else:
                        rawsock.send_when_room(partial(put, packet, addresses[i]), exc, WHAT)

        def answers() -> list[tuple[int, float]]:
            nonlocal cursor
            end = len(records)
            found = []
            for k in range(cursor, end):
                when, reply = records[k]
                at = index.get(reply[12:16])
                if at is not None:
                    found.append((at, when))
            cursor = end
            return found

        started_at = datetime.now(UTC)
        started = time.monotonic()
        receiver.start()
        try:
            log = run_schedule(
                len(packed),
                send,
                answers,
                rate=self.rate,
                retries=self.retries,
                timeout=self.timeout,
                progress=self.progress,
            )
        finally:
            receiver.stop()
            rawsock.close_soon(sender_sock.close, receiver_sock.close)
        if receiver.error is not None:
            raise ScanError(f"{WHAT} lost its socket: {receiver.error.strerror}")
        observations, source_ip = _observations(
            records, index, packed, ident, log, started_at, started
        )
        return SweepResult(
            observations=observations,
            targets=len(packed),
            probes_sent=log.probes_sent,
            duration=log.finished - log.first_probe,
            started_at=started_at,
            source_ip=source_ip,
        )


def _echo_template(ident: int) -> bytes:
    """An echo request with our identifier, sequence 0 and a zero checksum (patched per probe)."""
    from scapy.layers.inet import ICMP

    packet = bytes(ICMP(type="echo-request", id=ident, seq=0, chksum=0) / PAYLOAD)
    assert len(packet) == 8 + len(PAYLOAD) and packet[2:4] == b"\0\0", "unexpected ICMP layout"
    return packet


def _ones_sum(data: bytes | bytearray) -> int:
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


def _observations(
    records: list[tuple[float, bytes]],
    index: dict[bytes, int],
    packed: list[bytes],
    ident: int,
    log: ProbeLog,
    started_at: datetime,
    started: float,
) -> tuple[list[Observation], str | None]:
    """Every echo reply from a target, in arrival order, and the local address they came back to."""
    observations = []
    source_ip = None
    for when, data in records:
        # The kernel hands a raw socket whole IPv4 packets; anything shorter is no reply of ours.
        if len(data) < 20 or data[0] >> 4 != 4 or (data[0] & 0x0F) < 5:
            continue
        at = index.get(data[12:16])
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl : ihl + 8]
        if (
            at is None
            or len(icmp) < 8
            or icmp[0] != ECHO_REPLY
            or int.from_bytes(icmp[4:6], "big") != ident
        ):
            continue
        source_ip = source_ip or socket.inet_ntoa(data[16:20])
        probed = log.probe_before(at, when)
        observations.append(
            Observation(
                ip=socket.inet_ntoa(packed[at]),
                mac=None,
                seen_at=started_at + timedelta(seconds=when - started),
                source="icmp",
                ttl=data[8],
                rtt_ms=None if probed is None else round((when - probed) * 1000, 3),
            )
        )
    return observations, source_ip
