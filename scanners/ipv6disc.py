"""IPv6 discovery on the link: who answers an echo to ff02::1, and who holds each static address.

Nobody can sweep a /64, so IPv6 hosts are found the way the link itself finds them:

- one ICMPv6 echo request to ff02::1 (all nodes) from the interface's link-local address, and one
  from each of its addresses inside the scan's IPv6 prefixes: a host answers a multicast echo from
  an address of the matching scope (Linux answers by default), so the link-local echo finds every
  host and the others find each host's address in the prefix (its privacy address, when it
  prefers one). Beside each, the same echo behind a Destination Options header with an option no
  host knows (THC-IPv6 alive6's `-e dst`): a host that answers no multicast echo (Windows) must
  still answer that with a Parameter Problem (RFC 8200 section 4.2), from the same address;
- one Neighbor Solicitation (to the target's solicited-node group, with our link-layer option)
  for each registered static IPv6 address inside the prefixes: whoever holds it must answer.

The sweep template (scanners.sweep) runs it like the ARP sweep: probes paced from the run's one
budget, a filtered receiver started first, a retry for each silent target (an echo nobody
answered, an address nobody claimed), a bounded wait for late replies, every reply kept within the
reply budget. A reply counts only from an address inside the prefixes or a link-local one (the
guard: addresses the scan is not about are not recorded). Each address seen is an `Observation`
with source "ndp": the NA's target and its target link-layer option (else the frame's source
MAC), or an echo reply's source address and frame source MAC.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from ipguard.errors import InterfaceError
from ipguard.model import (
    Dhcp6Advert,
    IgnoredReply,
    Observation,
    ObservationSource,
    RouterAdvert,
    ScanRequest,
    Uncovered,
)
from ipguard.scanners import rawsock
from ipguard.scanners.arp import lookup_vendors
from ipguard.scanners.base import Progress, SweepResult
from ipguard.scanners.ipv6bpf import upper_layer_filter
from ipguard.scanners.ipv6wire import (
    ETH_P_IPV6,
    ICMPV6_ECHO_REPLY,
    ICMPV6_ECHO_REQUEST,
    ICMPV6_NA,
    ICMPV6_PARAM_PROBLEM,
    NH_DEST_OPTIONS,
    NH_ICMPV6,
    UNRECOGNIZED_OPTION,
    addresses,
    build_echo,
    build_neighbor_solicitation,
    link_local,
    target_link_layer,
    without_extensions,
)
from ipguard.scanners.scope import Scope
from ipguard.scanners.sweep import MAX_EXTRA_RESPONDERS, MAX_RESPONDERS_PER_TARGET, Link, Sweep

WHAT = "IPv6 discovery"
SNAPLEN = 256  # headers (extension headers too), an NA's target and its link-layer option
AT_TYPE = 54  # Ethernet 14 + IPv6 40: the ICMPv6 type
AT_SOURCE, AT_DEST = slice(22, 38), slice(38, 54)
AT_IDENT = slice(58, 60)  # echo identifier
AT_TARGET = slice(62, 78)  # NA target address
# A Parameter Problem quotes our erroneous echo from byte 62: its IPv6 header (next header at 68,
# source at 70), the Destination Options header (102), the echo (type at 110, identifier at 114).
AT_QUOTED_NEXT, AT_QUOTED_SOURCE, AT_QUOTED_TYPE = 68, slice(70, 86), 110
AT_QUOTED_IDENT = slice(114, 116)
HOP_LIMIT = 21  # IPv6 header byte 7
_NOTHING = bytes(AT_TARGET.stop)  # what a frame without an ICMPv6 header reads as: no reply


class NdpSweep(Sweep):
    """Finds the IPv6 hosts of the local link: multicast echo plus NS for static addresses.

    Example (needs CAP_NET_RAW and IPv6 on the interface)::

        sweep = NdpSweep("eth0", Scope(["198.18.0.0/24", "2001:db8:20::/64"]), rate=2000)
        result = sweep.discover(["2001:db8:20::100"])
        sorted(result.live)   # ['2001:db8:20::100', '2001:db8:20::5e3d:…', 'fe80::…', …]
    """

    what = WHAT

    def __init__(self, interface: str, scope: Scope, **options: Any) -> None:
        """`options`: the template's rate, retries, timeout and progress."""
        super().__init__(scope, **options)
        self.interface = interface
        self.prefixes = [
            network
            for network in map(ipaddress.ip_network, scope.subnets)
            if isinstance(network, ipaddress.IPv6Network)
        ]
        self.sources: list[str] = []  # where the echoes leave from: link-local first

    def discover(self, statics: Iterable[str] = ()) -> SweepResult:
        """Echo to ff02::1 from each source, NS for each static address inside the prefixes.

        InterfaceError when the interface has no link-local address (no IPv6 on it).
        """
        own = addresses(self.interface)
        if not own or not ipaddress.IPv6Address(own[0]).is_link_local:
            raise InterfaceError(f"interface {self.interface} has no IPv6 link-local address")
        self.sources = [own[0], *(ip for ip in own[1:] if self._in_prefixes(ip))]
        wanted = {str(ipaddress.IPv6Address(ip)) for ip in statics}
        targets = sorted(ip for ip in wanted if self._in_prefixes(ip) and ip not in own)
        return self.sweep([*self.sources, *targets])

    def pack(self, targets: Iterable[str]) -> list[bytes]:
        """Packed addresses: our own sources, and targets inside the scope (else ScopeError)."""
        packed: dict[bytes, None] = {}
        for ip in targets:
            if ip not in self.sources:
                self.scope.check(ip)
            packed[ipaddress.IPv6Address(ip).packed] = None
        return list(packed)

    def open(self, targets: list[bytes]) -> Link:
        """A packet socket for the probes, a filtered one for echo replies and NAs."""
        iface = rawsock.interface_info(self.interface)
        receiver = rawsock.receiving_socket(iface, ETH_P_IPV6, _reply_filter(iface.mac), WHAT)
        try:
            sender = rawsock.sending_socket(iface, WHAT)
        except BaseException:
            receiver.close()
            raise
        ident = secrets.randbits(16)
        link_local, echoes = self.sources[0], len(self.sources)
        frames = [
            tuple(
                build_echo(iface.mac, str(ipaddress.IPv6Address(target)), ident, i, erroneous=bad)
                for bad in (False, True)
            )
            if i < echoes
            else (
                build_neighbor_solicitation(
                    iface.mac, link_local, str(ipaddress.IPv6Address(target))
                ),
            )
            for i, target in enumerate(targets)
        ]
        return _NdpLink(receiver, sender, frames, iface, ident, self.prefixes)

    def _in_prefixes(self, ip: str) -> bool:
        address = ipaddress.IPv6Address(ip)
        return any(address in network for network in self.prefixes)


class _NdpLink(Link):
    """One discovery's sockets: the prebuilt probes, and which replies count."""

    name = "ndp"
    unsolicited = IgnoredReply.NDP_UNSOLICITED
    over_limit = IgnoredReply.NDP_OVER_LIMIT
    snaplen = SNAPLEN
    # A multicast echo is one target that every host of the link answers: the budget's overall
    # bound (MAX_EXTRA_RESPONDERS) is the limit. A NS target keeps the usual few (see `admit`).
    responders_per_target = MAX_EXTRA_RESPONDERS

    def __init__(
        self,
        receiver: socket.socket,
        sender: socket.socket,
        frames: list[tuple[bytes, ...]],
        iface: rawsock.InterfaceInfo,
        ident: int,
        prefixes: Sequence[ipaddress.IPv6Network],
    ) -> None:
        super().__init__(receiver)
        self._sender = sender
        self._frames = frames
        self._ident = ident.to_bytes(2, "big")
        self._prefixes = [(int(n.network_address), int(n.netmask)) for n in prefixes]
        self._claimants: dict[bytes, set[bytes]] = {}  # NS target → MACs that answered for it
        self._by_oui: dict[str, str | None] = {}
        self.interface = iface.name
        self.source_mac = iface.mac

    def send(self, batch: Sequence[int]) -> None:
        """The prebuilt echoes (plain and erroneous) or NS of each target."""
        send, frames = self._sender.send, self._frames
        for i in batch:
            for frame in frames[i]:
                try:
                    send(frame)
                except OSError as exc:
                    rawsock.send_when_room(partial(send, frame), exc, WHAT)

    def source(self, reply: bytes) -> bytes:
        """An echo reply answers the source it was sent to, a Parameter Problem the source it
        quotes; an NA, the address it claims."""
        reply = without_extensions(reply) or _NOTHING
        kind = reply[AT_TYPE]
        if kind == ICMPV6_PARAM_PROBLEM:
            return reply[AT_QUOTED_SOURCE]
        return reply[AT_DEST] if kind == ICMPV6_ECHO_REPLY else reply[AT_TARGET]

    def admit(self, reply: bytes) -> bytes | None:
        """The responder (echo: its address and MAC; NA: the MAC claiming the target), or None."""
        reply = without_extensions(reply) or _NOTHING
        if reply[AT_TYPE] == ICMPV6_ECHO_REPLY:
            if reply[AT_IDENT] != self._ident or not self._allowed(reply[AT_SOURCE]):
                return None
            return reply[AT_SOURCE] + reply[6:12]
        if reply[AT_TYPE] == ICMPV6_PARAM_PROBLEM:
            # Our erroneous echo, quoted: a responder of its own (a host answers both probes).
            if not self._quotes_ours(reply) or not self._allowed(reply[AT_SOURCE]):
                return None
            return reply[AT_SOURCE] + reply[6:12] + b"!"
        if len(reply) < AT_TARGET.stop or reply[HOP_LIMIT] != 255 or reply[AT_TYPE + 1] != 0:
            return None  # RFC 4861 7.1.2: an NA from off the link, or malformed
        mac = target_link_layer(reply[AT_TYPE:]) or reply[6:12]
        claimants = self._claimants.setdefault(reply[AT_TARGET], set())
        if mac not in claimants:
            if len(claimants) >= MAX_RESPONDERS_PER_TARGET:
                return None
            claimants.add(mac)
        return mac

    def observation(
        self, target: bytes, reply: bytes, seen_at: datetime, rtt_ms: float | None
    ) -> Observation:
        """An IPv6 address answering from a MAC (and the MAC's vendor)."""
        reply = without_extensions(reply) or _NOTHING
        if reply[AT_TYPE] in (ICMPV6_ECHO_REPLY, ICMPV6_PARAM_PROBLEM):
            ip, raw_mac = reply[AT_SOURCE], reply[6:12]
        else:
            ip, raw_mac = reply[AT_TARGET], target_link_layer(reply[AT_TYPE:]) or reply[6:12]
        mac = raw_mac.hex(":")
        vendor = lookup_vendors((mac,), self._by_oui)[mac]
        text = str(ipaddress.IPv6Address(ip))
        return Observation(text, mac, seen_at, ObservationSource.NDP, None, rtt_ms, vendor)

    def close(self) -> None:
        """Close both sockets on a background thread."""
        rawsock.close_soon(self._sender.close, self.receiver.close)

    def _quotes_ours(self, reply: bytes) -> bool:
        """A Parameter Problem (unrecognized option) quoting our erroneous echo, identifier and
        all."""
        return (
            len(reply) >= AT_QUOTED_IDENT.stop
            and reply[AT_TYPE + 1] == UNRECOGNIZED_OPTION
            and reply[AT_QUOTED_NEXT] == NH_DEST_OPTIONS
            and reply[AT_QUOTED_TYPE] == ICMPV6_ECHO_REQUEST
            and reply[AT_QUOTED_IDENT] == self._ident
        )

    def _allowed(self, address: bytes) -> bool:
        """Link-local (fe80::/10), or inside one of the scan's IPv6 prefixes."""
        if address[0] == 0xFE and address[1] & 0xC0 == 0x80:
            return True
        value = int.from_bytes(address, "big")
        return any(value & mask == network for network, mask in self._prefixes)


def _reply_filter(mac: str) -> list[rawsock.Insn]:
    """Kernel filter: ICMPv6 echo replies, Parameter Problems and Neighbor Advertisements sent to
    our MAC.

    Unicast to us only: hosts announce address changes with unsolicited NAs to ff02::1, and
    those are neither answers nor a flood worth a warning. Extension headers may come before
    the ICMPv6 header (the frame is then read without them, see `_plain`).
    """
    own = bytes.fromhex(mac.replace(":", ""))
    to_us = [
        (rawsock.LDW_ABS, 0, (int.from_bytes(own[:4], "big"),)),
        (rawsock.LDH_ABS, 4, (int.from_bytes(own[4:], "big"),)),
    ]
    types = [(rawsock.LDB_IND, 0, (ICMPV6_ECHO_REPLY, ICMPV6_NA, ICMPV6_PARAM_PROBLEM))]
    return upper_layer_filter(NH_ICMPV6, types, SNAPLEN, to_us)


@dataclass
class Ipv6Seen:
    """What the ipv6 phase saw: routers, DHCPv6 servers, addresses; or why it could not look."""

    adverts: list[RouterAdvert] = field(default_factory=list)
    servers: list[Dhcp6Advert] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    ignored: Counter[IgnoredReply] = field(default_factory=Counter)
    dropped: int = 0
    uncovered: list[Uncovered] = field(default_factory=list)  # no IPv6 on the interface
    ran: bool = False  # the phase could look (the interface has IPv6)


def collect(
    request: ScanRequest,
    scope: Scope,
    ledger_ready: threading.Event,
    stop: threading.Event,
    progress: Progress | None = None,
    *,
    statics: Callable[[], Iterable[str]] | None = None,
    warn: bool = True,
) -> Ipv6Seen:
    """The ipv6 phase: RAs and ADVERTISEs for ``ra_wait`` s, discovery meanwhile.

    The solicitations go out at once; discovery waits for the ledger (the static addresses to
    solicit arrive with it, `ledger_ready`; `statics` reads them then, default the request's),
    well inside the RA window. An interface without a
    link-local address is reported as uncovered (one warning line of the run) when `warn`, and
    does not count as having run.
    """
    from ipguard.scanners.ipv6 import Ipv6Probe

    seen = Ipv6Seen()
    if link_local(request.interface) is None:
        if not warn:
            return seen
        reason = f"interface {request.interface} has no IPv6 link-local address; ipv6 phase skipped"
        prefixes = [text for text in scope.subnets if ":" in text] or ["fe80::/10"]
        seen.uncovered = [Uncovered(range=text, reason=reason) for text in prefixes]
        return seen
    probe = Ipv6Probe(request.interface, wait=request.ra_wait)
    failure: list[BaseException] = []

    def solicit() -> None:
        try:
            seen.adverts, seen.servers = probe.probe()
        except BaseException as error:  # raised below, in the phase's thread
            failure.append(error)

    thread = threading.Thread(target=solicit, name="ipguard-ra-probe", daemon=True)
    thread.start()
    try:
        while not ledger_ready.wait(0.05):
            if stop.is_set():
                return seen  # not run
        found = NdpSweep(
            request.interface,
            scope,
            rate=request.rate,
            retries=request.retries,
            timeout=request.timeout,
            progress=progress,
        ).discover(request.static_ipv6 if statics is None else statics())
        seen.observations = found.observations
        seen.ignored.update(found.replies_ignored)
        seen.dropped = found.replies_dropped
    finally:
        thread.join()
    if failure:
        raise failure[0]
    if probe.ignored:
        seen.ignored[IgnoredReply.IPV6_IGNORED] += probe.ignored
    seen.ran = True
    return seen


def off_the_link(interface: str, ipv4: str | None, scope: Scope) -> list[Uncovered] | None:
    """Why the scan's IPv6 prefixes are not the interface's link (one entry per prefix), or None.

    Neighbour discovery reaches the interface's link and nothing else, so it runs when that link
    is in scope: the interface's IPv4 address lies in the subnets, or one of its IPv6 addresses
    does (an IPv6-only scan of a prefix the interface is on). A scan of IPv6 prefixes the
    interface is not on would find the hosts of another link under them: it is skipped with one
    warning, as is a link-local-only interface without its IPv4 subnet (`fe80::/10` in the
    subnets says the link itself is meant). An interface without IPv6 is `collect`'s to report.
    """
    prefixes = [text for text in scope.subnets if ":" in text]
    own = addresses(interface)
    if (ipv4 is not None and ipv4 in scope) or not prefixes or not own:
        return None
    if any(ip in scope for ip in own):
        return None
    reason = (
        f"not on interface {interface}: none of its addresses ({ipv4 or 'no IPv4'}, "
        f"{', '.join(own)}) lies in the scan's subnets; ipv6 phase skipped"
    )
    return [Uncovered(range=text, reason=reason) for text in prefixes]
