"""ARP sweep: who answers for each address of the local link, and from which MAC.

One broadcast ARP request per target, from a frame template built once (struct, no scapy: a
sweep starts within milliseconds) and patched with the target's address; paced to the configured
rate; retried only for silent targets. Probes go out in batches through a TX ring
(scanners.txring), one system call per batch. A receiver thread, started before the first probe,
reads the replies that a kernel filter lets through. The schedule, the receiver and the reply
budget are the sweep template's (scanners.sweep).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from datetime import datetime

from ipguard.model import IgnoredReply, Observation, ObservationSource
from ipguard.scanners import rawsock, txring
from ipguard.scanners.base import Progress
from ipguard.scanners.scope import Scope
from ipguard.scanners.sweep import MAX_REPEATS_PER_TARGET, MAX_RESPONDERS_PER_TARGET, Link, Sweep

WHAT = "ARP sweep"
SNAPLEN = 64  # an ARP reply is 42 bytes, plus padding
ARP_REQUEST = 1
ARP_REPLY = 2
# Ethernet + ARP header offsets (RFC 826 over Ethernet II)
ARP_IPV4_OVER_ETHERNET = bytes.fromhex("000108000604")  # htype 1, ptype IPv4, hlen 6, plen 4
AT_ARP_HEADER = slice(14, 20)
AT_SENDER_MAC = slice(22, 28)
AT_SENDER_IP = slice(28, 32)
AT_TARGET_IP = slice(38, 42)
# What one sweep keeps of the replies to each address (scanners.sweep.ReplyBudget).
MAX_MACS_PER_ADDRESS = MAX_RESPONDERS_PER_TARGET
MAX_REPEATS_PER_ADDRESS = MAX_REPEATS_PER_TARGET


class ArpSweep(Sweep):
    """Finds the hosts of the local link by ARP, keeping every reply (duplicates matter).

    Example (needs CAP_NET_RAW)::

        sweep = ArpSweep("eth0", Scope(["198.19.0.0/24"]), rate=2000)
        result = sweep.sweep(sweep.scope.targets())
        sorted(result.live)   # ['198.19.0.1', '198.19.0.7', ...]
    """

    what = WHAT

    def __init__(
        self,
        interface: str,
        scope: Scope,
        *,
        rate: float = 2000,
        retries: int = 2,
        timeout: float = 1.0,
        progress: Progress | None = None,
        round_trip: float = 0.0,
        source_ip: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            rate=rate,
            retries=retries,
            timeout=timeout,
            progress=progress,
            round_trip=round_trip,
        )
        self.interface = interface
        self.source_ip = source_ip  # None: the interface's primary address

    def open(self, targets: list[bytes]) -> Link:
        """A broadcast ARP request per target out of the interface; its replies to our IP."""
        iface = rawsock.usable_interface(self.interface, WHAT)
        assert iface.ipv4 is not None  # usable_interface guarantees it
        own = self.source_ip or iface.ipv4
        receiver = rawsock.receiving_socket(
            iface, rawsock.ETH_P_ARP, _reply_filter(socket.inet_aton(own)), WHAT
        )
        try:
            sender = txring.frame_sender(
                iface,
                _request_template(iface.mac, own),
                at=AT_TARGET_IP.start,
                width=4,
                what=WHAT,
            )
        except BaseException:
            receiver.close()
            raise
        return _ArpLink(receiver, sender, targets, iface, own)


class _ArpLink(Link):
    """One ARP sweep's sockets: a TX-ring sender of who-has frames, a filtered packet receiver."""

    name = "arp"
    unsolicited = IgnoredReply.ARP_UNSOLICITED
    over_limit = IgnoredReply.ARP_OVER_LIMIT
    snaplen = SNAPLEN
    responders_per_target = MAX_MACS_PER_ADDRESS

    def __init__(
        self,
        receiver: socket.socket,
        sender: txring.FrameSender,
        targets: list[bytes],
        iface: rawsock.InterfaceInfo,
        source_ip: str | None = None,
    ) -> None:
        super().__init__(receiver)
        self._sender = sender
        self._targets = targets
        self.interface = iface.name
        self.source_ip = source_ip or iface.ipv4  # the address its requests are sent from
        self.source_mac = iface.mac
        self._by_oui: dict[str, str | None] = {}

    def send(self, batch: Sequence[int]) -> None:
        """One who-has per target, in one system call per ring's worth."""
        if isinstance(batch, range):  # the first pass: consecutive targets
            self._sender.send(self._targets[batch.start : batch.stop])
        else:
            targets = self._targets
            self._sender.send([targets[i] for i in batch])

    def source(self, reply: bytes) -> bytes:
        """The sender IP of an ARP reply."""
        return reply[AT_SENDER_IP]

    def admit(self, reply: bytes) -> bytes | None:
        """The sender MAC of an ARP reply for IPv4 over Ethernet."""
        return reply[AT_SENDER_MAC] if reply[AT_ARP_HEADER] == ARP_IPV4_OVER_ETHERNET else None

    def observation(
        self, target: bytes, reply: bytes, seen_at: datetime, rtt_ms: float | None
    ) -> Observation:
        """An IP answering from a MAC, and the MAC's vendor (looked up once per OUI)."""
        mac = reply[AT_SENDER_MAC].hex(":")
        vendor = lookup_vendors((mac,), self._by_oui)[mac]
        # Positional: 10,000 of them on a /16, and keywords cost a third more.
        return Observation(
            socket.inet_ntoa(target), mac, seen_at, ObservationSource.ARP, None, rtt_ms, vendor
        )

    def close(self) -> None:
        """Close the sender and the receiver on a background thread."""
        rawsock.close_soon(self._sender.close, self.receiver.close)


def lookup_vendors(
    macs: Iterable[str], by_oui: dict[str, str | None] | None = None
) -> dict[str, str | None]:
    """The IEEE-registered organisation of each MAC's OUI (netaddr's registry), once per OUI.

    Locally administered MACs (second-least significant bit of the first octet set) have none.
    `by_oui` caches the answers across calls (OUI → organisation).
    """
    from netaddr import EUI, NotRegisteredError

    by_oui = {} if by_oui is None else by_oui
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
    own = bytes.fromhex(mac.replace(":", ""))
    frame = (
        b"\xff" * 6  # Ethernet: to everyone on the link,
        + own
        + rawsock.ETH_P_ARP.to_bytes(2, "big")
        + ARP_IPV4_OVER_ETHERNET
        + ARP_REQUEST.to_bytes(2, "big")
        + own  # ARP sender: our MAC and IP
        + socket.inet_aton(ip)
        + bytes(6)  # target MAC unknown
        + bytes(4)  # target IP: patched per probe
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
