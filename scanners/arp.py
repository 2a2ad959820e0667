"""ARP sweep: who answers for each address of the local link, and from which MAC.

One broadcast ARP request per target, from a frame template built once with scapy and patched with
the target's address; paced to the configured rate; retried only for silent targets. Probes go out
in batches through a TX ring (scanners.txring), one system call per batch. A receiver thread,
started before the first probe, reads the replies that a kernel filter lets through.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from ipguard.errors import ScanError
from ipguard.model import Observation
from ipguard.scanners import rawsock, txring
from ipguard.scanners.base import Progress, Sweep, SweepResult
from ipguard.scanners.probing import ProbeLog, run_schedule
from ipguard.scanners.scope import Scope

WHAT = "ARP sweep"
SNAPLEN = 64  # an ARP reply is 42 bytes, plus padding
ARP_REPLY = 2
# Ethernet + ARP header offsets (RFC 826 over Ethernet II)
ARP_IPV4_OVER_ETHERNET = bytes.fromhex("000108000604")  # htype 1, ptype IPv4, hlen 6, plen 4
AT_ARP_HEADER = slice(14, 20)
AT_SENDER_MAC = slice(22, 28)
AT_SENDER_IP = slice(28, 32)
AT_TARGET_IP = slice(38, 42)
# What one sweep keeps of the replies (ReplyBudget): a flood is counted, not stored.
MAX_MACS_PER_ADDRESS = 8
MAX_REPEATS_PER_ADDRESS = 16
MAX_EXTRA_MACS = 65_536
MAX_REPEATS = 65_536


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
        template = _request_template(iface.mac, iface.ipv4)

        receiver_sock = rawsock.receiving_socket(
            iface, rawsock.ETH_P_ARP, _reply_filter(source_ip), WHAT
        )
        try:
            sender = txring.frame_sender(iface, template, at=AT_TARGET_IP.start, width=4, what=WHAT)
        except BaseException:
            receiver_sock.close()
            raise
        budget = ReplyBudget(index)
        receiver = rawsock.Receiver(
            receiver_sock, SNAPLEN, name="ipguard-arp-receiver", admit=budget
        )
        records = receiver.records
        cursor = 0

        def send(batch: Sequence[int]) -> None:
            budget.asking(batch)  # before the probes leave: their replies may come at once
            if isinstance(batch, range):  # the first pass: consecutive targets
                sender.send(packed[batch.start : batch.stop])
            else:
                sender.send([packed[i] for i in batch])

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
            rawsock.close_soon(sender.close, receiver_sock.close)
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
            replies_ignored=budget.ignored(),
        )


class ReplyBudget:
    """Which ARP replies a sweep keeps, so that a flood can neither exhaust memory nor hide hosts.

    Kept: the first reply of each (address, MAC) pair for addresses the sweep has asked about, up to
    MAX_MACS_PER_ADDRESS MACs per address (a real duplicate IP involves two or three), and repeats
    of a pair already seen, up to MAX_REPEATS_PER_ADDRESS per address. Beyond an address's first
    MAC, at most MAX_EXTRA_MACS further MACs and MAX_REPEATS repeats are kept over the whole
    sweep, so the memory a sweep holds is bounded by its targets plus those two constants, and a
    host's own reply is lost only if eight impostors answered for it first.

    Not kept, only counted: replies for addresses never asked or not asked yet (`unsolicited`;
    a flood sent ahead of the probes cannot fill an address's quota before its host answers),
    frames that are not ARP for IPv4 over Ethernet (also `unsolicited`), and replies beyond the
    limits (`over_limit`). Called on the receiver thread for every frame: a few operations each.
    """

    def __init__(self, index: dict[bytes, int]) -> None:
        self._index = index
        self._asked = bytearray(len(index))
        self._macs = bytearray(len(index))
        self._repeats = bytearray(len(index))
        self._pairs: set[bytes] = set()
        self._extra_macs = 0
        self._repeats_kept = 0
        self.unsolicited = 0
        self.over_limit = 0

    def __call__(self, frame: bytes) -> bool:
        at = self._index.get(frame[AT_SENDER_IP])
        if at is None or not self._asked[at] or frame[AT_ARP_HEADER] != ARP_IPV4_OVER_ETHERNET:
            self.unsolicited += 1
            return False
        pair = frame[AT_SENDER_MAC.start : AT_SENDER_IP.stop]
        if pair in self._pairs:
            if self._repeats[at] >= MAX_REPEATS_PER_ADDRESS or self._repeats_kept >= MAX_REPEATS:
                self.over_limit += 1
                return False
            self._repeats[at] += 1
            self._repeats_kept += 1
            return True
        known = self._macs[at]
        if known >= MAX_MACS_PER_ADDRESS or (known and self._extra_macs >= MAX_EXTRA_MACS):
            self.over_limit += 1
            return False
        self._macs[at] = known + 1
        self._extra_macs += known > 0
        self._pairs.add(pair)
        return True

    def asking(self, batch: Sequence[int]) -> None:
        """The sweep is about to probe these targets (indices): their replies are now wanted."""
        if isinstance(batch, range) and batch.step == 1:
            self._asked[batch.start : batch.stop] = b"\x01" * len(batch)
        else:
            for i in batch:
                self._asked[i] = 1

    def ignored(self) -> dict[str, int]:
        """What was read and not kept, by reason (only the nonzero ones)."""
        counts = {"arp_unsolicited": self.unsolicited, "arp_over_limit": self.over_limit}
        return {name: count for name, count in counts.items() if count}


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
    epoch = started_at.timestamp() - started  # a monotonic reading → seconds since the epoch
    observations = []
    for when, at, mac in replies:
        probed = log.probe_before(at, when)
        observations.append(
            Observation(  # positional: 10,000 of them on a /16, and keywords cost a third more
                socket.inet_ntoa(packed[at]),
                mac,
                datetime.fromtimestamp(epoch + when, UTC),
                "arp",
                None,
                None if probed is None else round((when - probed) * 1000, 3),
                vendors[mac],
            )
        )
    return observations
