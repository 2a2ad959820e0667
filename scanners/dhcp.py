"""DHCP probe: who offers addresses on the local link (a rogue DHCP server is a critical finding).

It waits like a client. A DHCPDISCOVER is broadcast from a random locally administered client MAC
and retransmitted inside the window on RFC 2131's schedule (section 4.1: after 4 s, then 8 s, …,
each ±1 s at random). A receiver started before the first send keeps every OFFER for our
transaction, broadcast or unicast to our client MAC, for at least ``wait`` seconds (``[scan]
dhcp_wait``, default 6): servers check by ping that an address is free before offering it, dnsmasq
for 3 s, so a short window misses exactly the stock home-router server a rogue check is for. Each
offer keeps how long its server took to answer, and a scan listens half a window beyond the
slowest rogue server heard lately (:func:`listen_window`): a busy server answers later than it
did last time, and one missed near the window's end would be resolved and reopened run after
run. Nothing is ever sent to a server, so a server outside the scope (or one whose offer points
elsewhere) is recorded but never touched.

Cheap to import and to start (standard-library wire format in :mod:`scanners.dhcpwire`), so a scan
can :meth:`DhcpProbe.start` it first and collect the offers with :meth:`DhcpProbe.finish` later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import secrets
import socket
import struct
import threading
import time
from datetime import UTC, datetime, timedelta

from ipguard.addresses import AddressError, parse_mac
from ipguard.errors import InterfaceError, InvalidValue, ScanError, ScopeError
from ipguard.model import DhcpOffer
from ipguard.scanners import rawsock
from ipguard.scanners.dhcpwire import BOOTP_CLIENT_PORT, build_discover, parse_offer
from ipguard.scanners.receiver import Receiver
from ipguard.scanners.scope import Scope

__all__ = [
    "DEFAULT_WAIT",
    "DhcpProbe",
    "listen_window",
    "parse_offer",
    "random_client_mac",
    "retransmit_times",
]

WHAT = "DHCP probe"
DEFAULT_WAIT = 6.0
SNAPLEN = 1500
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
# A flood of answers to our DISCOVER is counted, not kept: frames read, then distinct offers.
MAX_FRAMES = 4096
MAX_OFFERS = 256
# RFC 2131 section 4.1: first retransmission after 4 s, the delay doubling up to 64 s, each
# randomised by ±1 s.
FIRST_RETRANSMIT = 4.0
MAX_WINDOW = 60.0  # the longest a probe listens ([scan] dhcp_wait is at most 60)
MAX_RETRANSMIT = 64.0


class DhcpProbe:
    """Broadcasts a DHCPDISCOVER on an interface and collects every offer for ``wait`` seconds.

    Example (needs CAP_NET_RAW)::

        offers = DhcpProbe("eth0", Scope(["198.18.0.0/24"]), wait=6.0).probe()
        {(o.server_ip, o.server_mac, round(o.latency or 0)) for o in offers}
        # {('198.18.0.3', '02:18:00:00:00:03', 3), ('198.18.0.36', '02:18:00:00:00:36', 3)}

    The interface's own IPv4 subnet must lie inside the scope (an interface without an address is
    allowed): a DISCOVER reaches every DHCP server of that link. ``sent`` lists when each DISCOVER
    left, in seconds after the first.
    """

    def __init__(
        self,
        interface: str,
        scope: Scope,
        *,
        wait: float = DEFAULT_WAIT,
        client_mac: str | None = None,
    ) -> None:
        if wait <= 0:
            raise ValueError(f"wait must be > 0 (got {wait})")
        self.interface = interface
        self.scope = scope
        self.wait = wait
        self.client_mac = _client_mac(client_mac) if client_mac else random_client_mac()
        self.ignored = 0  # answers to our DISCOVER that were malformed or beyond the limits
        self.sent: list[float] = []
        self._xid = secrets.randbits(32)
        self._stop = threading.Event()
        self._run: _Running | None = None

    def probe(self) -> list[DhcpOffer]:
        """Broadcast, listen for the whole window, return every distinct offer in arrival order."""
        self.start()
        return self.finish()

    def start(self) -> None:
        """Check the interface, start listening, send the first DISCOVER; returns at once."""
        if self._run is not None:
            raise RuntimeError("this DHCP probe was already started")
        iface = rawsock.interface_info(self.interface)
        if not iface.up or not iface.running:
            state = "down" if not iface.up else "without link"
            raise InterfaceError(
                f"interface {iface.name} is {state}: bring it up (`ip link set {iface.name} up`) "
                "or pick another"
            )
        if iface.ipv4 is not None and iface.ipv4 not in self.scope:
            raise ScopeError(
                f"{WHAT}: interface {iface.name} ({iface.ipv4}) is on a network outside the "
                f"subnets ipguard may scan ({', '.join(self.scope.subnets) or 'none'}): "
                "add its subnet to [scan] subnets in ipguard.toml or pick another interface"
            )
        receiver_sock = rawsock.receiving_socket(
            iface, rawsock.ETH_P_IP, _offer_filter(self._xid), WHAT
        )
        try:
            _promiscuous(receiver_sock, iface.index)
            sender_sock = rawsock.sending_socket(iface, WHAT)
        except BaseException:
            receiver_sock.close()
            raise
        receiver = Receiver(receiver_sock, SNAPLEN, name="ipguard-dhcp-receiver", limit=MAX_FRAMES)
        run = _Running(receiver_sock, sender_sock, receiver, datetime.now(UTC), time.monotonic())
        self._run = run
        receiver.start()
        try:
            self._send(0.0)
        except BaseException:
            self._stop.set()
            run.close()
            raise
        run.resender = threading.Thread(
            target=self._retransmit, name="ipguard-dhcp-resend", daemon=True
        )
        run.resender.start()

    def finish(self, window: float | None = None) -> list[DhcpOffer]:
        """Wait out the rest of the window, stop listening, and return the offers.

        A longer `window` (seconds from the first DISCOVER) extends the one the probe was made
        with; the retransmissions keep the schedule of the window it was made with.
        """
        run = self._run
        if run is None:
            raise RuntimeError("start the DHCP probe before finishing it")
        if window is not None and window > self.wait:
            self.wait = window
        try:
            remaining = run.started + self.wait - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        finally:
            self._stop.set()
            if run.resender is not None:
                run.resender.join()
            run.close()
        if run.send_error is not None:
            raise run.send_error
        if run.receiver.error is not None:
            raise ScanError(
                f"{WHAT} lost its socket on {self.interface}: {run.receiver.error.strerror}"
            )
        return self._offers(run)

    def _offers(self, run: _Running) -> list[DhcpOffer]:
        offers: dict[tuple[str, str, str], DhcpOffer] = {}
        self.ignored = run.receiver.ignored
        for when, data in list(run.receiver.records):
            latency = when - run.started
            offer = parse_offer(data, self._xid, run.started_at + timedelta(seconds=latency))
            if offer is None:
                self.ignored += 1
                continue
            key = (offer.server_mac, offer.server_ip, offer.offered_ip)
            if key not in offers and len(offers) >= MAX_OFFERS:
                self.ignored += 1
                continue
            offers.setdefault(key, dataclasses.replace(offer, latency=round(latency, 3)))
        return list(offers.values())

    def _retransmit(self) -> None:
        """Send the retransmissions on schedule until the window closes (bounded by the window)."""
        run = self._run
        assert run is not None
        for at in retransmit_times(self.wait):
            if self._stop.wait(max(0.0, run.started + at - time.monotonic())):
                return
            try:
                self._send(time.monotonic() - run.started)
            except ScanError as error:
                run.send_error = error
                return

    def _send(self, elapsed: float) -> None:
        run = self._run
        assert run is not None
        frame = build_discover(self.client_mac, self._xid, secs=int(elapsed))
        try:
            run.sender.send(frame)
        except OSError as exc:
            rawsock.send_when_room(lambda: run.sender.send(frame), exc, WHAT)
        self.sent.append(round(elapsed, 3))


@dataclasses.dataclass(eq=False)
class _Running:
    """The sockets and threads of a started probe."""

    receiver_sock: socket.socket
    sender: socket.socket
    receiver: Receiver
    started_at: datetime
    started: float
    resender: threading.Thread | None = None
    send_error: ScanError | None = None

    def close(self) -> None:
        self.receiver.stop()
        self.sender.close()
        self.receiver_sock.close()


def retransmit_times(wait: float, rng: random.Random | None = None) -> list[float]:
    """When to resend the DISCOVER, in seconds after the first, all inside a ``wait`` window.

    RFC 2131's schedule (4 s, then doubling to 64 s, each ±1 s); a window too short for its first
    retransmission gets one halfway through, so a lost DISCOVER or OFFER still has a second chance.
    """
    rng = rng or random.Random()
    times: list[float] = []
    delay, at = FIRST_RETRANSMIT, 0.0
    while True:
        at += delay + rng.uniform(-1.0, 1.0)
        if at >= wait:
            break
        times.append(at)
        delay = min(delay * 2, MAX_RETRANSMIT)
    return times or [wait / 2]


def listen_window(wait: float, slowest: float | None) -> float:
    """How long a scan's probe listens: `wait`, or half of it beyond the slowest rogue server heard
    lately (seconds to its first offer), up to twice `wait` and MAX_WINDOW.

    >>> listen_window(6.0, None), listen_window(6.0, 3.0), listen_window(6.0, 4.6)
    (6.0, 6.0, 7.6)
    >>> listen_window(6.0, 11.0), listen_window(40.0, 39.0)
    (12.0, 59.0)
    """
    if slowest is None:
        return wait
    return max(wait, min(slowest + wait / 2, 2 * wait, MAX_WINDOW))


def random_client_mac() -> str:
    """A random unicast, locally administered MAC (02:…), owned by no real device."""
    return "02:" + secrets.token_bytes(5).hex(":")


def _offer_filter(xid: int) -> list[rawsock.Insn]:
    """Kernel filter: IPv4 UDP to the BOOTP client port for transaction `xid`, nothing else."""
    return [
        rawsock.Insn(rawsock.LDX_MSH, k=14),  # X = IP header length
        *rawsock.match_all(
            [
                (rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.ETH_P_IP),
                (rawsock.Insn(rawsock.LDB_ABS, k=23), socket.IPPROTO_UDP),
                (rawsock.Insn(rawsock.LDH_IND, k=16), BOOTP_CLIENT_PORT),  # UDP destination port
                (rawsock.Insn(rawsock.LDW_IND, k=26), xid),  # BOOTP xid: 14 + X + 8 + 4
            ],
            SNAPLEN,
        ),
    ]


def _promiscuous(sock: socket.socket, ifindex: int) -> None:
    """Also receive offers unicast to our made-up client MAC (servers ignoring the broadcast flag).

    The kernel drops the membership, and the promiscuous mode with it, when the socket closes.
    """
    mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    with contextlib.suppress(OSError):  # without it, offers sent as broadcasts still arrive
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)


def _client_mac(text: str) -> str:
    try:
        return parse_mac(text)
    except AddressError as error:
        raise InvalidValue(f"client MAC {text!r}: {error}") from None
