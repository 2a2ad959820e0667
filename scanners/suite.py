"""The real scanner behind `ipguard scan`: every phase, in order, over the request's subnets.

    sweep     ARP on the local link, ICMP echo for routed subnets
    services  nmap -sV on the live hosts
    proxy     canary relay checks on proxy-looking and HTTP ports
    dhcp      DISCOVERs for [scan] dhcp_wait seconds, every offer collected
    names     reverse DNS, NetBIOS, mDNS for the live hosts
    evidence  routing / access-point signs

Each phase reports progress as (phase, done, total) and its duration in `ScanResult.timings`.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ipguard.addresses import ip_sort_key
from ipguard.model import (
    IgnoredReply,
    Observation,
    Phase,
    ScanRequest,
    ScanResult,
    ServiceMode,
    ServiceObservation,
)
from ipguard.scanners import rawsock
from ipguard.scanners.scope import Scope

PhaseProgress = Callable[[str, int, int], None]


class NetworkScanner:
    """Sweeps, scans services and probes the request's subnets from its interface."""

    def collect(self, request: ScanRequest, progress: PhaseProgress | None) -> ScanResult:
        """Carry out every phase the request asks for."""
        scope = Scope(request.subnets)
        interface = rawsock.usable_interface(request.interface, "the scan")
        timings: dict[str, float] = {}
        phases = {Phase.SWEEP}
        ignored: Counter[IgnoredReply] = Counter()  # replies read and not kept: floods, spoofers
        dropped: Counter[str] = Counter()  # replies the kernel dropped (receive buffer full)

        def phase_progress(name: str) -> Callable[[int, int], None] | None:
            if progress is None:
                return None
            return lambda done, total: progress(name, done, total)

        with _timed(timings, "sweep"):
            observations = self._sweep(
                request, scope, interface, phase_progress("sweep"), ignored, dropped
            )
        live = sorted({seen.ip for seen in observations}, key=ip_sort_key)

        services: list[ServiceObservation] = []
        service_mode, rescanned, partial = None, 0, set[str]()
        if request.services and live:
            with _timed(timings, "services"):
                services, service_mode, rescanned = self._services(
                    request, scope, observations, live, phase_progress("services"), partial
                )
            phases.add(Phase.SERVICES)

        proxies = []
        if Phase.SERVICES in phases:
            from ipguard.scanners.proxy import ProxyProbe, proxy_candidates

            candidates = sorted(
                proxy_candidates(services), key=lambda pair: (ip_sort_key(pair[0]), pair[1])
            )
            assert interface.ipv4 is not None
            with _timed(timings, "proxy"):
                proxies = ProxyProbe(
                    scope, canary_ip=interface.ipv4, timeout=max(2.0, request.timeout * 2)
                ).probe_many(candidates)
            phases.add(Phase.PROXY)

        offers = []
        # A DISCOVER reaches every server on the interface's link: only when that link is in scope.
        if interface.ipv4 is not None and interface.ipv4 in scope:
            from ipguard.scanners.dhcp import DhcpProbe

            with _timed(timings, "dhcp"):
                dhcp = DhcpProbe(request.interface, scope, wait=request.dhcp_wait)
                offers = dhcp.probe()
            if dhcp.ignored:
                ignored[IgnoredReply.DHCP_IGNORED] += dhcp.ignored
            phases.add(Phase.DHCP)

        names = []
        if live:
            from ipguard.scanners.names import NameProbe

            with _timed(timings, "names"):
                names = NameProbe(
                    scope, dns_servers=request.dns_servers, timeout=request.name_timeout
                ).lookup(live)
        phases.add(Phase.NAMES)

        from ipguard.scanners.evidence import RouterApEvidence

        with _timed(timings, "evidence"):
            looking = RouterApEvidence(request.interface, scope, timeout=max(1.0, request.timeout))
            evidence = looking.collect(observations, services)
        ignored.update(looking.ignored)
        phases.add(Phase.EVIDENCE)

        return ScanResult(
            observations=tuple(observations),
            services=tuple(services),
            dhcp_offers=tuple(offers),
            proxies=tuple(proxies),
            names=tuple(names),
            evidence=tuple(evidence),
            phases=frozenset(phases),
            timings=timings,
            service_mode=service_mode,
            services_rescanned=rescanned,
            partial_hosts=frozenset(partial),
            ignored=dict(ignored),
            replies_dropped=dict(+dropped),  # the nonzero ones
        )

    def _services(
        self,
        request: ScanRequest,
        scope: Scope,
        observations: list[Observation],
        live: list[str],
        progress: Callable[[int, int], None] | None,
        partial: set[str],
    ) -> tuple[list[ServiceObservation], ServiceMode, int]:
        """Services of the live hosts: nmap -sV on all of them, or only on those that changed.

        With a baseline from the last scan, a quick open-port scan (no version probes) finds
        which hosts changed MAC or open ports; only those get version probes, the others keep
        what the baseline knew. Returns (services, "full" | "incremental", hosts probed); hosts
        nmap gave up on are added to `partial`.
        """
        from ipguard.scanners.services import ServiceScan

        def scanner(versions: bool) -> ServiceScan:
            # Light version probes and parallel nmap processes: the phase mostly waits on ports
            # that accept and stay silent.
            return ServiceScan(
                scope,
                ports=request.ports,
                host_timeout=max(120.0, request.timeout * 60),
                intensity=0,
                workers=4,
                versions=versions,
                progress=progress,
            )

        def scan(versions: bool, hosts: list[str]) -> list[ServiceObservation]:
            service_scan = scanner(versions)
            found = service_scan.scan(hosts)
            partial.update(service_scan.timed_out)
            return found

        known = request.known_services
        if known is None:
            return scan(True, live), ServiceMode.FULL, len(live)
        open_ports: dict[str, set[tuple[str, int]]] = {}
        for item in scan(False, live):
            open_ports.setdefault(item.ip, set()).add((item.proto, item.port))
        macs = {seen.ip: seen.mac for seen in observations}
        changed = [
            ip
            for ip in live
            if ip not in known
            or known[ip].mac != macs.get(ip)
            or {(s.proto, s.port) for s in known[ip].services} != open_ports.get(ip, set())
        ]
        detailed = scan(True, changed) if changed else []
        unchanged = [ip for ip in live if ip not in set(changed)]
        kept = [item for ip in unchanged for item in known[ip].services]
        return detailed + kept, ServiceMode.INCREMENTAL, len(changed)

    def _sweep(
        self,
        request: ScanRequest,
        scope: Scope,
        interface: rawsock.InterfaceInfo,
        progress: Callable[[int, int], None] | None,
        ignored: Counter[IgnoredReply],
        dropped: Counter[str],
    ) -> list[Observation]:
        """ARP for the part of each subnet on the interface's link, ICMP for the rest.

        What each sweep ignored (a flood) and what the kernel dropped is added to the counters.
        """
        from ipguard.scanners.arp import ArpSweep
        from ipguard.scanners.icmp import IcmpSweep

        assert interface.ipv4 is not None and interface.prefixlen is not None
        link = ipaddress.ip_network(f"{interface.ipv4}/{interface.prefixlen}", strict=False)
        on_link: list[str] = []
        routed: list[str] = []
        for text in request.subnets:
            network = ipaddress.ip_network(text)
            if network.version != 4:
                continue  # IPv6 neighbour discovery is not swept yet
            if network.overlaps(link):
                inner = network if network.subnet_of(link) else link  # type: ignore[arg-type]
                on_link.append(str(inner))
                routed.extend(str(rest) for rest in _minus(network, inner))
            else:
                routed.append(text)
        own = {interface.ipv4}
        observations: list[Observation] = []
        if on_link:
            targets = [ip for ip in scope.targets(on_link) if ip not in own]
            sweep = ArpSweep(
                request.interface,
                scope,
                rate=request.rate,
                retries=request.retries,
                timeout=request.timeout,
                progress=progress,
            )
            swept = sweep.sweep(targets)
            observations.extend(swept.observations)
            ignored.update(swept.replies_ignored)
            dropped["arp"] += swept.replies_dropped
        if routed:
            targets = [ip for ip in scope.targets(routed) if ip not in own]
            icmp = IcmpSweep(
                scope,
                rate=request.rate,
                retries=request.retries,
                timeout=request.timeout,
                progress=progress,
            )
            pinged = icmp.sweep(targets)
            observations.extend(pinged.observations)
            ignored.update(pinged.replies_ignored)
            dropped["icmp"] += pinged.replies_dropped
        return observations


def _minus(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if inner == network or not inner.subnet_of(network):  # type: ignore[arg-type]
        return iter(())
    return network.address_exclude(inner)  # type: ignore[arg-type]


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = time.monotonic() - started
