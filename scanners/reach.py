"""The sweep phase: ARP for the part of each subnet on the interface's link, ICMP for the rest
(and TCP ping for the routed addresses that ignored the echo request, unless `tcp_ping = false`).

The link is every IPv4 network the interface holds an address in, secondaries included (a VLAN
carrying two subnets): each is asked by ARP from the interface's own address in it. (Sent as
routed echo requests, such a subnet's 254 addresses all waited on the kernel's neighbour
resolution at once, and the sweep failed with its transmit queue full.)

A subnet may reach beyond what the scanner can get to: `--subnet 10.20.0.0/20` on an interface
whose address is a /24, with no route for the rest. The parts without a route are not swept and
are returned as uncovered (with why), so that the run sweeps what it can, says what it could not,
and resolves nothing there; only when nothing at all can be swept is that an error.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial

from ipguard.errors import ScanError
from ipguard.model import IgnoredReply, Observation, ScanRequest, Uncovered
from ipguard.scanners import rawsock
from ipguard.scanners.ifaddrs import ipv4_networks
from ipguard.scanners.scope import Scope
from ipguard.scanners.sweep import Sweep

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What connect() on a UDP socket says when the routing table has nothing for an address.
NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})
ROUTE_GRAIN = 24


def sweep(
    request: ScanRequest,
    scope: Scope,
    interface: rawsock.InterfaceInfo,
    progress: Callable[[int, int], None] | None,
    ignored: Counter[IgnoredReply],
    dropped: Counter[str],
) -> tuple[list[Observation], list[Uncovered]]:
    """Sweep what can be reached: (observations, uncovered ranges).

    What each sweep ignored (a flood) and what the kernel dropped is added to the counters.
    ScanError when no part of the subnets can be swept at all.
    """
    from ipguard.scanners.arp import ArpSweep
    from ipguard.scanners.icmp import IcmpSweep
    from ipguard.scanners.tcpping import TcpSweep

    assert interface.ipv4 is not None and interface.prefixlen is not None
    links = own_networks(interface)
    on_link, routed, uncovered = split(request.subnets, links)
    ipv4 = [text for text in request.subnets if ipaddress.ip_network(text).version == 4]
    if ipv4 and not on_link and not routed:
        reasons = "; ".join(f"{item.range}: {item.reason}" for item in uncovered)
        raise ScanError(f"the sweep can reach no part of the subnets ({reasons})")
    # The sensor's own addresses, on every interface: a subnet of another of its interfaces,
    # swept as routed, would find the sensor itself answering there.
    own = {ip for ip, _prefixlen in links} | {ip for ip, _length in ipv4_networks(None)}
    observations: list[Observation] = []

    def run(name: str, sweeper: Callable[..., Sweep], targets: list[str]) -> set[str]:
        swept = sweeper(
            scope,
            rate=request.rate,
            retries=request.retries,
            timeout=request.timeout,
            progress=progress,
            round_trip=round_trip(observations),
        ).sweep(targets)
        observations.extend(swept.observations)
        ignored.update(swept.replies_ignored)
        dropped[name] += swept.replies_dropped
        return swept.live

    for source_ip in dict.fromkeys(source for _part, source in on_link):
        parts = [part for part, source in on_link if source == source_ip]
        arp = partial(ArpSweep, request.interface, source_ip=source_ip)
        run("arp", arp, _targets(scope, parts, own))
    if routed:
        targets = _targets(scope, routed, own)
        answered = run("icmp", IcmpSweep, targets)
        silent = [ip for ip in targets if ip not in answered]
        if request.tcp_ping and silent:  # a host firewall may drop echo and still answer TCP
            run("tcp", TcpSweep, silent)
    return observations, uncovered


def round_trip(observations: list[Observation]) -> float:
    """The slowest routed round trip seen so far (seconds; 0 if none): TCP ping follows the
    echo sweep along the same routes, and need not wait its whole timeout to learn how fast
    they are when none of the silent addresses is there."""
    routed = [seen.rtt_ms for seen in observations if seen.mac is None and seen.rtt_ms]
    return max(routed, default=0.0) / 1000


def _targets(scope: Scope, parts: list[str], own: set[str]) -> list[str]:
    return [ip for ip in scope.targets(parts) if ip not in own]


def own_networks(interface: rawsock.InterfaceInfo) -> list[tuple[str, int]]:
    """The interface's IPv4 addresses with their prefix lengths, its primary one first."""
    assert interface.ipv4 is not None and interface.prefixlen is not None
    primary = (interface.ipv4, interface.prefixlen)
    return list(dict.fromkeys([primary, *ipv4_networks(interface.index)]))


def split(
    subnets: tuple[str, ...], links: list[tuple[str, int]]
) -> tuple[list[tuple[str, str]], list[str], list[Uncovered]]:
    """The IPv4 subnets as (on the link, routed, uncovered): what ARP, ICMP and nobody sweeps.

    `links` are the interface's (address, prefix length), primary first; each on-link part comes
    with the address the ARP requests for it are sent from.
    """
    on_link: list[tuple[str, str]] = []
    routed: list[Network] = []
    for text in subnets:
        network = ipaddress.ip_network(text)
        if network.version != 4:
            continue  # IPv6 neighbour discovery is not swept yet
        rest: list[Network] = [network]
        for ip, prefixlen in links:
            link = ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False)
            claimed = [part for part in rest if part.overlaps(link)]
            for part in claimed:
                inner = part if part.subnet_of(link) else link  # type: ignore[arg-type]
                if all(str(inner) != known for known, _source in on_link):
                    on_link.append((str(inner), ip))
                rest.remove(part)
                rest.extend(_minus(part, inner))
        routed.extend(rest)
    reachable: list[str] = []
    unreachable: dict[tuple[str, bool], list[Network]] = {}
    for network in routed:
        # Routes are looked up per /24 (at most): a route may cover part of a larger block.
        parts = network.subnets(new_prefix=max(network.prefixlen, ROUTE_GRAIN))
        reachable_parts: list[Network] = []
        for part in parts:
            problem = route_problem(part)
            if problem is None:
                reachable_parts.append(part)
            else:
                unreachable.setdefault(_reason(problem), []).append(part)
        reachable.extend(str(block) for block in _collapsed(reachable_parts))
    uncovered = [
        Uncovered(range=str(block), reason=f"{reason} {_first(block)}" if to else reason)
        for (reason, to), blocks in unreachable.items()
        for block in _collapsed(blocks)
    ]
    return on_link, reachable, sorted(uncovered, key=lambda item: _network_key(item.range))


def route_problem(network: Network) -> str | None:
    """Why `network` cannot be reached from here (no route to its first address), or None.

    connect() on a UDP socket asks the kernel's routing table and sends nothing.
    """
    first = _first(network)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((first, 9))
        except OSError as error:
            if error.errno in NO_ROUTE:
                return f"no route to {first}"
            raise
    return None


def _reason(problem: str) -> tuple[str, bool]:
    """One reason per kind of problem, so that neighbouring blocks merge into one range."""
    if problem.startswith("no route to "):
        return "no route to", True
    return problem, False


def _first(network: Network) -> str:
    return str(next(iter(network.hosts()), network.network_address))


def _collapsed(blocks: list[Network]) -> list[Network]:
    return list(ipaddress.collapse_addresses(blocks))  # type: ignore[type-var]


def _minus(network: Network, inner: Network) -> Iterator[Network]:
    if inner == network or not inner.subnet_of(network):  # type: ignore[arg-type]
        return iter(())
    return network.address_exclude(inner)  # type: ignore[arg-type]


def _network_key(text: str) -> tuple[int, int]:
    network = ipaddress.ip_network(text)
    return int(network.network_address), network.prefixlen
