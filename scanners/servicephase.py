"""The services phase of a scan: a fast pass for open ports, then versions within a budget.

Every finding services feed (unexpected-service, open-proxy candidates, web pages for evidence)
needs only an open port and what kind of service it is, which the fast pass gives (nmap's port
table); version strings come after, each port within scanners.services.VERSION_BUDGET, while the
proxy and evidence phases already use the ports. nmap paces itself with its share of the run's
budget (scanners.pacing), set aside while it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from ipguard.model import Observation, ScanRequest, ServiceMode, ServiceObservation
from ipguard.scanners import pacing
from ipguard.scanners.proxy import proxy_candidates
from ipguard.scanners.scope import Scope
from ipguard.scanners.services import ServiceScan


@dataclass(frozen=True)
class OpenPorts:
    """The services phase's fast pass: what the run knows of each live host's ports.

    `services` holds every open port (named from nmap's port table) and, in an incremental run,
    what the baseline knew of unchanged hosts; `unnamed` are the ports still to version-probe.
    `mode` is full or incremental, `rescanned` the hosts to version-probe, `partial` the hosts
    nmap gave up on (their port lists are partial).
    """

    services: list[ServiceObservation]
    unnamed: list[ServiceObservation]
    mode: ServiceMode
    rescanned: int
    partial: frozenset[str]


# nmap processes side by side: they mostly wait on the network. One nmap process per port probes
# versions, so a port that accepts and stays silent holds only its own process.
WORKERS = 4
VERSION_WORKERS = 24
# What the other phases keep of the run's rate while nmap runs (names, DHCP run meanwhile).
OTHERS_SHARE = 0.1


def open_ports(
    request: ScanRequest,
    scope: Scope,
    observations: Sequence[Observation],
    live: list[str],
    progress: Callable[[int, int], None] | None,
) -> OpenPorts:
    """The fast pass of the services phase: the open ports of every live host, no versions.

    Without a baseline (`request.known_services` None) every open port is to be version-probed
    ("full"); with one, only the ports of hosts whose MAC or open ports changed are, and the
    others keep what the baseline knew ("incremental").
    """
    with _nmap_rate(request) as rate:
        scan = _scanner(request, scope, rate, progress)
        found = scan.open_ports(live)
    partial = frozenset(scan.timed_out)
    known = request.known_services
    if known is None:
        return OpenPorts(found, found, ServiceMode.FULL, len(live), partial)
    ports: dict[str, set[tuple[str, int]]] = {}
    for item in found:
        ports.setdefault(item.ip, set()).add((item.proto, item.port))
    macs = {seen.ip: seen.mac for seen in observations}
    changed = {
        ip
        for ip in live
        if ip not in known
        or known[ip].mac != macs.get(ip)
        or {(s.proto, s.port) for s in known[ip].services} != ports.get(ip, set())
    }
    unnamed = [item for item in found if item.ip in changed]
    kept = [item for ip in live if ip not in changed for item in known[ip].services]
    return OpenPorts(unnamed + kept, unnamed, ServiceMode.INCREMENTAL, len(changed), partial)


def name_ports(request: ScanRequest, scope: Scope, found: OpenPorts) -> list[ServiceObservation]:
    """`found.services` with the software behind each unnamed port, each within the budget."""
    with _nmap_rate(request) as rate:
        named = _scanner(request, scope, rate, None).identify(found.unnamed)
    by_port = {(item.ip, item.proto, item.port): item for item in named}
    return [by_port.get((item.ip, item.proto, item.port), item) for item in found.services]


def _scanner(
    request: ScanRequest, scope: Scope, rate: float, progress: Callable[[int, int], None] | None
) -> ServiceScan:
    return ServiceScan(
        scope,
        ports=request.ports,
        host_timeout=max(120.0, request.timeout * 60),
        intensity=0,
        workers=VERSION_WORKERS,
        rate=rate,
        progress=progress,
    )


def _nmap_rate(request: ScanRequest) -> AbstractContextManager[float]:
    """nmap's share of the run's pacing budget, set aside while it runs (or the whole rate)."""
    budget = pacing.current()
    if budget is None:
        return nullcontext(float(request.rate))
    return budget.reserve(request.rate, keep=request.rate * OTHERS_SHARE)


def late_candidates(services: Sequence[ServiceObservation]) -> list[tuple[str, int]]:
    """(ip, tcp port) the proxy phase asks once versions are known, beside the fast pass's ones.

    The fast pass names a port by its number alone (nmap's port table: tinyproxy on tcp/81 is
    `hosts2-ns`), so the proxy phase also asks the ports the version probes named HTTP, a proxy
    or SOCKS, and those whose software nobody could name (no product, no banner: the probes ran
    out of budget in this run or the one an incremental run keeps): such a port may be a proxy.
    """
    unnamed = [(s.ip, s.port) for s in services if s.proto == "tcp" and not (s.product or s.banner)]
    return list(dict.fromkeys(proxy_candidates(services) + unnamed))
