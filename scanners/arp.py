"""ARP sweep: who answers for each address of the local link, and from which MAC.

One broadcast ARP request per target, from a frame template built once with scapy and patched with
the target's address; paced to the configured rate; retried only for silent targets. A receiver
thread, started before the first probe, reads the replies that a kernel filter lets through.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from ipguard.errors import ScanError
from ipguard.model import Observation
from scanners import rawsock
from scanners.base import Progress, Sweep, SweepResult
from scanners.probing import ProbeLog, run_schedule
from scanners.scope import Scope

WHAT = "ARP sweep"
SNAPLEN = 64  # an ARP reply is 42 bytes, plus padding
ARP_REPLY = 2
# Ethernet + ARP header offsets (RFC 826 over Ethernet II)
ARP_IPV4_OVER_ETHERNET = bytes.fromhex("000108000604")  # htype 1, ptype IPv4, hlen 6, plen 4
AT_ARP_HEADER = slice(14, 20)
AT_SENDER_MAC = slice(22, 28)
AT_SENDER_IP = slice(28, 32)
AT_TARGET_IP = slice(38, 42)


class ArpSweep(Sweep):
    """Finds the hosts of the local link by ARP, keeping every reply (duplicates matter).

    Example (needs CAP_NET_RAW)::

        sweep = ArpSweep("eth0", Scope(["198.19.0.0/24"]), rate=2000)
        result = sweep.sweep(sweep.scope.targets())
        sorted(result.live)   # ['198.19.0.1', '198.19.0.7', ...]
    """

    def __init__(
        self,
        interface: str,
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
        self.interface = interface
        self.scope = scope
        self.rate = rate
        self.retries = retries
        self.timeout = timeout
        self.progress = progress

    def sweep(self, targets: Iterable[str]) -> SweepResult:
        """ARP-probe every target; ScopeError before any packet if one lies outside the scope."""
        packed = self.scope.check_all_v4(targets)
        iface = rawsock.usable_interface(self.interface, WHAT)
        assert iface.ipv4 is not None  # usable_interface guarantees it
        source_ip = socket.inet_aton(iface.ipv4)
        index = {ip: i for i, ip in enumerate(packed)}
        frame = bytearray(_request_template(iface.mac, iface.ipv4))

        receiver_sock = rawsock.receiving_socket(
            iface, rawsock.ETH_P_ARP, _reply_filter(source_ip), WHAT
        )
        try:
            sender_sock = rawsock.sending_socket(iface, WHAT)
        except BaseException:
            receiver_sock.close()
            raise
        receiver = rawsock.Receiver(receiver_sock, SNAPLEN, name="ipguard-arp-receiver")
        records = receiver.records
        cursor = 0

        def send(batch: Sequence[int]) -> None:
            put = sender_sock.send
            for i in batch:
                frame[AT_TARGET_IP] = packed[i]
                try:
                    put(frame)
                except OSError as exc:
                    rawsock.send_when_room(partial(put, frame), exc, WHAT)

        def answers() -> list[tuple[int, float]]:
            nonlocal cursor
            end = len(records)
            found = []
            for k in range(cursor, end):
                when, reply = records[k]
                at = index.get(reply[AT_SENDER_IP])
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
            dropped = rawsock.packet_drops(receiver_sock)
            sender_sock.close()
            receiver_sock.close()
        if receiver.error is not None:
            raise ScanError(
                f"{WHAT} lost its socket on {self.interface}: {receiver.error.strerror}"
            )
        observations = _observations(records, index, packed, log, started_at, started)
        return SweepResult(
            observations=observations,
            targets=len(packed),
            probes_sent=log.probes_sent,
            duration=log.finished - log.first_probe,
            started_at=started_at,
            interface=iface.name,
            source_ip=iface.ipv4,
            source_mac=iface.mac,
            replies_dropped=dropped,
        )


def lookup_vendors(macs: Iterable[str]) -> dict[str, str | None]:
    """The IEEE-registered organisation of each MAC's OUI (netaddr's registry), once per OUI.

    Locally administered MACs (second-least significant bit of the first octet set) have none.
    """
    from netaddr import EUI, NotRegisteredError

    by_oui: dict[str, str | None] = {}
    vendors: dict[str, str | None] = {}
    for mac in macs:
        oui = mac[:8]
        if oui not in by_oui:
            if int(oui[:2], 16) & 0x02:
                by_oui[oui] = None
            else:
                try:
                    by_oui[oui] = str(EUI(mac).oui.registration().org)
                except (NotRegisteredError, IndexError, ValueError):
                    by_oui[oui] = None
        vendors[mac] = by_oui[oui]
    return vendors


def _request_template(mac: str, ip: str) -> bytes:
    """A broadcast who-has from our MAC and IP, target address 0.0.0.0 (patched per probe)."""
    from scapy.layers.l2 import ARP, Ether

    frame = bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
        / ARP(op="who-has", hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst="0.0.0.0")
    )
    assert len(frame) == 42 and frame[AT_TARGET_IP] == bytes(4), "unexpected ARP frame layout"
    return frame


def _reply_filter(source_ip: bytes) -> list[rawsock.Insn]:
    """Kernel filter: ARP replies addressed to our IP, nothing else reaches Python."""
    return rawsock.match_all(
        [
            (rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.ETH_P_ARP),
            (rawsock.Insn(rawsock.LDH_ABS, k=20), ARP_REPLY),
            (rawsock.Insn(rawsock.LDW_ABS, k=AT_TARGET_IP.start), int.from_bytes(source_ip, "big")),
        ],
        SNAPLEN,
    )


def _observations(
    records: list[tuple[float, bytes]],
    index: dict[bytes, int],
    packed: list[bytes],
    log: ProbeLog,
    started_at: datetime,
    started: float,
) -> list[Observation]:
    """Every reply from a target, in arrival order (parsing kept off the receive path)."""
    replies: list[tuple[float, int, str]] = []
    for when, frame in records:
        at = index.get(frame[AT_SENDER_IP])
        if at is None or frame[AT_ARP_HEADER] != ARP_IPV4_OVER_ETHERNET:
            continue
        replies.append((when, at, frame[AT_SENDER_MAC].hex(":")))
    vendors = lookup_vendors({mac for _, _, mac in replies})
    observations = []
    for when, at, mac in replies:
        probed = log.probe_before(at, when)
        observations.append(
            Observation(
                ip=socket.inet_ntoa(packed[at]),
                mac=mac,
                seen_at=started_at + timedelta(seconds=when - started),
                source="arp",
                rtt_ms=None if probed is None else round((when - probed) * 1000, 3),
                vendor=vendors[mac],
            )
        )
    return observations
