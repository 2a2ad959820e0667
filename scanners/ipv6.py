"""IPv6 probe: which routers advertise and which DHCPv6 servers answer on the local link.

One Router Solicitation to ff02::2 and one DHCPv6 SOLICIT to ff02::1:2 leave from the interface's
link-local address (the SOLICIT with a DUID-LL made from a random locally administered MAC, so no
real device's lease is touched); two receivers, each behind a kernel filter (ICMPv6 type 134; UDP
to port 546 carrying an ADVERTISE; either also behind IPv6 extension headers, RA Guard's blind
spot), started before the first send, keep every answer until ``wait`` seconds (``[scan] ra_wait``,
default 3) have passed. Routers also advertise unsolicited, so every RA heard in the window
counts, from every router. Nothing is ever sent to a router or a server.

Cheap to import (standard-library wire format in :mod:`scanners.ipv6wire`).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from ipguard.errors import InterfaceError, ScanError
from ipguard.model import Dhcp6Advert, RouterAdvert
from ipguard.scanners import rawsock
from ipguard.scanners.dhcp import random_client_mac
from ipguard.scanners.dhcp6wire import (
    DHCP6_ADVERTISE,
    DHCP6_CLIENT_PORT,
    build_dhcp6_solicit,
    parse_advertise,
)
from ipguard.scanners.ipv6bpf import upper_layer_filter
from ipguard.scanners.ipv6wire import (
    ETH_P_IPV6,
    ICMPV6_RA,
    NH_ICMPV6,
    NH_UDP,
    build_solicitation,
    link_local,
    parse_ra,
)
from ipguard.scanners.receiver import Receiver

__all__ = ["DEFAULT_WAIT", "Ipv6Probe", "link_local"]

WHAT = "IPv6 probe"
DEFAULT_WAIT = 3.0
SNAPLEN = 1500
# A flood of RAs or ADVERTISEs is counted, not kept.
MAX_FRAMES = 4096
MAX_KEPT = 256
T = TypeVar("T")


class Ipv6Probe:
    """Solicits routers and DHCPv6 servers on an interface, keeps every answer for ``wait`` s.

    Example (needs CAP_NET_RAW and an interface with a link-local address)::

        probe = Ipv6Probe("eth0", wait=3.0)
        adverts, servers = probe.probe()
        {(a.source_mac, a.prefixes) for a in adverts}
        # {('02:18:00:00:00:03', ('2001:db8:20::/64',)), ('02:18:00:00:00:50', ('fd00:66::/64',))}
    """

    def __init__(self, interface: str, *, wait: float = DEFAULT_WAIT) -> None:
        if wait <= 0:
            raise ValueError(f"wait must be > 0 (got {wait})")
        self.interface = interface
        self.wait = wait
        self.ignored = 0  # frames that matched a filter but were malformed or over the limits
        self.client_mac = random_client_mac()
        self._transaction = secrets.randbits(24)

    def probe(self) -> tuple[list[RouterAdvert], list[Dhcp6Advert]]:
        """Send both solicitations, listen for the whole window, return what answered."""
        iface = rawsock.interface_info(self.interface)
        source = link_local(iface.name)
        if source is None:
            raise InterfaceError(
                f"interface {iface.name} has no IPv6 link-local address: enable IPv6 on it "
                "or leave the ipv6 phase out (--phases)"
            )
        ra_sock = rawsock.receiving_socket(iface, ETH_P_IPV6, _ra_filter(), WHAT)
        receivers: list[Receiver] = []
        sockets = [ra_sock]
        try:
            dhcp_sock = rawsock.receiving_socket(iface, ETH_P_IPV6, _advertise_filter(), WHAT)
            sockets.append(dhcp_sock)
            sender = rawsock.sending_socket(iface, WHAT)
            sockets.append(sender)
            for sock, name in ((ra_sock, "ra"), (dhcp_sock, "dhcp6")):
                receiver = Receiver(
                    sock, SNAPLEN, name=f"ipguard-{name}-receiver", limit=MAX_FRAMES
                )
                receiver.start()
                receivers.append(receiver)
            started_at, started = datetime.now(UTC), time.monotonic()
            for frame in (
                build_solicitation(iface.mac, source),
                build_dhcp6_solicit(iface.mac, source, self.client_mac, self._transaction),
            ):
                _send(sender, frame)
            time.sleep(max(0.0, started + self.wait - time.monotonic()))
        finally:
            for receiver in receivers:
                receiver.stop()
            for sock in sockets:
                sock.close()
        for receiver in receivers:
            if receiver.error is not None:
                raise ScanError(
                    f"{WHAT} lost its socket on {iface.name}: {receiver.error.strerror}"
                )
        ra_receiver, dhcp_receiver = receivers
        self.ignored = ra_receiver.ignored + dhcp_receiver.ignored

        def stamp(when: float) -> datetime:
            return started_at + timedelta(seconds=when - started)

        adverts = self._kept(ra_receiver, lambda frame, when: parse_ra(frame, stamp(when)))
        servers = self._kept(
            dhcp_receiver,
            lambda frame, when: parse_advertise(frame, self._transaction, stamp(when)),
        )
        return adverts, servers

    def _kept(self, receiver: Receiver, parse: Callable[[bytes, float], T | None]) -> list[T]:
        kept: dict[T, None] = {}
        for when, frame in list(receiver.records):
            item = parse(frame, when)
            if item is None or (item not in kept and len(kept) >= MAX_KEPT):
                self.ignored += 1
                continue
            kept.setdefault(item, None)
        return list(kept)


def _send(sender: socket.socket, frame: bytes) -> None:
    try:
        sender.send(frame)
    except OSError as exc:
        rawsock.send_when_room(lambda: sender.send(frame), exc, WHAT)


def _ra_filter() -> list[rawsock.Insn]:
    """Kernel filter: ICMPv6 type 134 (Router Advertisement), after extension headers if any."""
    return upper_layer_filter(NH_ICMPV6, [(rawsock.LDB_IND, 0, (ICMPV6_RA,))], SNAPLEN)


def _advertise_filter() -> list[rawsock.Insn]:
    """Kernel filter: UDP to port 546 carrying a DHCPv6 ADVERTISE (extension headers allowed)."""
    checks = [
        (rawsock.LDH_IND, 2, (DHCP6_CLIENT_PORT,)),  # UDP destination port
        (rawsock.LDB_IND, 8, (DHCP6_ADVERTISE,)),  # msg-type
    ]
    return upper_layer_filter(NH_UDP, checks, SNAPLEN)
