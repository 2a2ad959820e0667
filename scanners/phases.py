"""A scan's phases: what each one does, what it follows and what it needs to see everything.

    phase      starts after      what
    dhcp       -                 DISCOVERs for [scan] dhcp_wait s, every offer kept (link in scope)
    sweep      -                 ARP on the local link, ICMP echo (then TCP ping) routed
    services   sweep             nmap: the open ports of the live hosts (a fast pass)
     versions  services          nmap: the software behind each open port, within a port budget
    names      sweep             reverse DNS, NetBIOS, mDNS for the live hosts
    proxy      sweep, services   canary relay checks on proxy-looking and HTTP ports
    evidence   sweep, services   routing / access-point signs
    snmp       -                 the configured switches' and routers' tables (scanners.snmp)
    ipv6       -                 an RS and a DHCPv6 SOLICIT, every RA and ADVERTISE for [scan]
                                 ra_wait s; meanwhile echo to ff02::1 and NS for the static
                                 IPv6 addresses (scanners.ipv6disc; link in scope)

scanners.suite runs them as a dependency graph. A phase counts as done, and so may resolve the
findings it looks for, only when the phases it needs ran too (`needs`). A new phase is one entry
in PHASES (and its name in ipguard.model.Phase).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipguard.addresses import ip_sort_key
from ipguard.model import (
    Dhcp6Advert,
    DhcpOffer,
    Evidence,
    IgnoredReply,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    RouterAdvert,
    ScanRequest,
    ScanResult,
    ServiceMode,
    ServiceObservation,
    SnmpPoll,
    Uncovered,
)
from ipguard.scanners import rawsock, reach
from ipguard.scanners.scope import Scope

if TYPE_CHECKING:
    from ipguard.scanners.evidence import RouterApEvidence
    from ipguard.scanners.servicephase import OpenPorts


PhaseProgress = Callable[[str, int, int], None]


class Collection:
    """One run's phases and what they found so far (each phase writes only its own fields)."""

    def __init__(self, request: ScanRequest, progress: PhaseProgress | None) -> None:
        self.request = request
        self.progress = progress
        self.scope = Scope(request.subnets)
        # The ipv6 phase alone on IPv6 prefixes sends nothing from an IPv4 address (IPv6-only link).
        v6_only = set(request.phases) == {Phase.IPV6} and ":" in "".join(request.subnets)
        self.interface = rawsock.usable_interface(
            request.interface, "the scan", need_ipv4=not v6_only
        )
        self.observations: list[Observation] = []
        self.live: list[str] = []
        self.services: list[ServiceObservation] = []
        self.service_mode: ServiceMode | None = None  # None: the services phase did not run
        self.rescanned = 0
        self.found: OpenPorts | None = None
        self.partial: set[str] = set()
        self.offers: list[DhcpOffer] = []
        self.router_adverts: list[RouterAdvert] = []
        self.dhcp6_adverts: list[Dhcp6Advert] = []
        self.ndp: list[Observation] = []  # IPv6 addresses seen on the link (phase ipv6)
        self.ipv6_uncovered: list[Uncovered] = []  # the interface has no IPv6
        self.proxies: list[ProxyVerdict] = []
        self.names: list[NameObservation] = []
        self.evidence: list[Evidence] = []
        self.looking: RouterApEvidence | None = None  # the evidence phase's, for late titles
        self.uncovered: list[Uncovered] = []
        self.polls: tuple[SnmpPoll, ...] = ()
        self.routed: list[Observation] = []  # routers' ARP entries (snmp)
        self.ignored: Counter[IgnoredReply] = Counter()  # replies read and not kept: floods
        self.dropped: Counter[str] = Counter()  # replies the kernel dropped (receive buffer full)
        self.ran: set[Phase] = set()
        # The service baseline comes from the ledger, which may still be opening: the services
        # phase waits for it (see NetworkScanner.begin).
        self.baseline_ready = threading.Event()
        self.stop = threading.Event()

    def phase_progress(self, name: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    # -- the phases -------------------------------------------------------------------------

    def run_dhcp(self) -> None:
        # A DISCOVER reaches every server on the interface's link: only when that link is in scope.
        if self.interface.ipv4 is None or self.interface.ipv4 not in self.scope:
            return
        from ipguard.scanners.dhcp import DhcpProbe, listen_window

        wait = self.request.dhcp_wait
        probe = DhcpProbe(self.request.interface, self.scope, wait=wait)
        probe.start()
        # The ledger opens meanwhile and tells how slow the rogue servers heard lately were.
        self.baseline_ready.wait(wait)
        self.offers = probe.finish(listen_window(wait, self.request.dhcp_slowest))
        if probe.ignored:
            self.ignored[IgnoredReply.DHCP_IGNORED] += probe.ignored
        self.ran.add(Phase.DHCP)

    def run_ipv6(self) -> None:
        # Like DHCP: the solicitations reach the whole link, so only when that link is in scope
        # (its IPv4 subnet or, for an IPv6-only scan, a prefix holding one of its addresses).
        ipv4 = self.interface.ipv4
        if (ipv4 is None or ipv4 not in self.scope) and ":" not in "".join(self.scope.subnets):
            return  # a run of other IPv4 subnets: not about this link
        from ipguard.scanners import ipv6disc

        outside = ipv6disc.off_the_link(self.request.interface, ipv4, self.scope)
        if outside is not None:
            self.ipv6_uncovered = outside
            return

        # Without IPv6 on the interface the phase says so when it was asked for: by name
        # (--phases), or by IPv6 prefixes in the subnets; a default run on IPv4 says nothing.
        every = {phase.value for phase in Phase} - {Phase.SERVICES.value}
        asked = bool(every - set(self.request.phases)) or any(":" in s for s in self.scope.subnets)
        seen = ipv6disc.collect(
            self.request,
            self.scope,
            self.baseline_ready,
            self.stop,
            self.phase_progress("ipv6"),
            statics=lambda: self.request.static_ipv6,  # handed over once the ledger is open
            warn=asked,
        )
        self.router_adverts, self.dhcp6_adverts = seen.adverts, seen.servers
        self.ndp = seen.observations
        self.ignored.update(seen.ignored)
        self.dropped["ndp"] += seen.dropped
        self.ipv6_uncovered = seen.uncovered
        if seen.ran and not self.stop.is_set():
            self.ran.add(Phase.IPV6)

    def run_sweep(self) -> None:
        observations, self.uncovered = reach.sweep(
            self.request,
            self.scope,
            self.interface,
            self.phase_progress("sweep"),
            self.ignored,
            self.dropped,
        )
        self.observations = observations
        self.live = sorted({seen.ip for seen in observations}, key=ip_sort_key)
        self.ran.add(Phase.SWEEP)

    def run_services(self) -> None:
        if not self.request.services:
            return
        from ipguard.scanners.servicephase import open_ports

        while not self.baseline_ready.wait(0.05):
            if self.stop.is_set():
                return
        if self.live:
            self.found = open_ports(
                self.request,
                self.scope,
                self.observations,
                self.live,
                self.phase_progress("services"),
            )
            self.services = self.found.services
            self.service_mode, self.rescanned = self.found.mode, self.found.rescanned
            self.partial = set(self.found.partial)
        self.ran.add(Phase.SERVICES)

    def run_versions(self) -> None:
        """Version probes on the ports found (proxy and evidence need only ports and names)."""
        if self.found is not None and self.found.unnamed:
            from ipguard.scanners.servicephase import name_ports

            self.services = name_ports(self.request, self.scope, self.found)

    def run_names(self) -> None:
        if self.live:
            from ipguard.scanners.names import NameProbe

            request = self.request
            self.names = NameProbe(
                self.scope, dns_servers=request.dns_servers, timeout=request.name_timeout
            ).lookup(self.live)
        self.ran.add(Phase.NAMES)

    def run_proxy(self) -> None:
        from ipguard.scanners.proxy import proxy_candidates

        self._ask_proxies(proxy_candidates(self.services))
        self.ran.add(Phase.PROXY)

    def run_late_proxies(self) -> None:
        """The ports only the version probes show may relay (servicephase.late_candidates)."""
        if self.found is not None:
            from ipguard.scanners.servicephase import late_candidates

            self._ask_proxies(late_candidates(self.services))

    def _ask_proxies(self, candidates: list[tuple[str, int]]) -> None:
        """Proxy probes of the candidates not asked yet, in address order."""
        from ipguard.scanners.proxy import ProxyProbe

        asked = {(verdict.ip, verdict.port) for verdict in self.proxies}
        fresh = sorted(set(candidates) - asked, key=lambda pair: (ip_sort_key(pair[0]), pair[1]))
        assert self.interface.ipv4 is not None
        if fresh:
            self.proxies = self.proxies + ProxyProbe(
                self.scope,
                canary_ip=self.interface.ipv4,
                timeout=max(2.0, self.request.timeout * 2),
            ).probe_many(fresh)

    def run_evidence(self) -> None:
        from ipguard.scanners.evidence import RouterApEvidence

        looking = RouterApEvidence(
            self.request.interface, self.scope, timeout=max(1.0, self.request.timeout)
        )
        self.evidence = looking.collect(self.observations, self.services)
        self.ignored.update(looking.ignored)
        self.looking = looking
        self.ran.add(Phase.EVIDENCE)

    def run_late_titles(self) -> None:
        """The pages only the version probes show may be management pages (late_titles)."""
        if self.found is not None and self.looking is not None:
            from ipguard.scanners.evidence import merged

            more = self.looking.late_titles(self.observations, self.services)
            self.evidence = merged(self.evidence, more)

    def run_snmp(self) -> None:
        if not self.request.snmp_devices:
            return
        from ipguard.scanners import snmp

        self.routed, self.polls = snmp.collect(
            self.request,
            self.scope,
            own_ip=self.interface.ipv4 or "",
            own_mac=self.interface.mac,
        )
        self.ran.add(Phase.SNMP)

    def result(self, timings: dict[str, dict[str, float]]) -> ScanResult:
        """What the run saw; `phases` holds only the phases that could see all they look for."""
        done = set(self.ran)
        changed = True
        while changed:  # a phase whose needs did not run is blind to part of what it looks for
            changed = False
            for spec in PHASES:
                if spec.phase in done and not set(spec.needs) <= done:
                    done.discard(spec.phase)
                    changed = True
        observations = [*self.observations, *self.ndp]
        if self.polls:
            from ipguard.scanners import snmp

            observations = snmp.merge_routed(observations, self.routed)
        return ScanResult(
            observations=tuple(observations),
            services=tuple(self.services),
            dhcp_offers=tuple(self.offers),
            proxies=tuple(self.proxies),
            names=tuple(self.names),
            evidence=tuple(self.evidence),
            phases=frozenset(done),
            timings=timings,
            service_mode=self.service_mode,
            services_rescanned=self.rescanned,
            partial_hosts=frozenset(self.partial),
            live_hosts=frozenset(self.live),
            ignored=dict(self.ignored),
            replies_dropped=dict(+self.dropped),  # the nonzero ones
            uncovered=(*self.uncovered, *self.ipv6_uncovered),
            snmp=self.polls,
            router_adverts=tuple(self.router_adverts),
            dhcp6_adverts=tuple(self.dhcp6_adverts),
        )


@dataclass(frozen=True)
class PhaseSpec:
    """One phase: what it follows (when those run), what it needs to see everything, its work."""

    phase: Phase
    after: tuple[Phase, ...]
    needs: tuple[Phase, ...]
    work: Callable[[Collection], None]


# DHCP first (its wait is the longest), then the sweep; the rest once the sweep found hosts.
PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec(Phase.DHCP, (), (), Collection.run_dhcp),
    PhaseSpec(Phase.SWEEP, (), (), Collection.run_sweep),
    PhaseSpec(Phase.SERVICES, (Phase.SWEEP,), (Phase.SWEEP,), Collection.run_services),
    PhaseSpec(Phase.NAMES, (Phase.SWEEP,), (Phase.SWEEP,), Collection.run_names),
    # Both after the sweep as well: without services in the run they still need its hosts.
    PhaseSpec(Phase.PROXY, (Phase.SWEEP, Phase.SERVICES), (Phase.SERVICES,), Collection.run_proxy),
    # Evidence reads web pages the service scan found: without it, it cannot see them all.
    PhaseSpec(
        Phase.EVIDENCE,
        (Phase.SWEEP, Phase.SERVICES),
        (Phase.SWEEP, Phase.SERVICES),
        Collection.run_evidence,
    ),
    PhaseSpec(Phase.SNMP, (), (), Collection.run_snmp),
    PhaseSpec(Phase.IPV6, (), (), Collection.run_ipv6),
)


# Steps that are part of a phase (they run when it does, after it and the steps named) without
# being one: the services phase finds open ports, then names their software while proxy and
# evidence already use the ports; the proxy phase then asks what only the names showed.
PARTS: tuple[tuple[str, Phase, tuple[str, ...], Callable[[Collection], None]], ...] = (
    ("versions", Phase.SERVICES, (), Collection.run_versions),
    ("late-proxies", Phase.PROXY, ("versions",), Collection.run_late_proxies),
    ("late-titles", Phase.EVIDENCE, ("versions",), Collection.run_late_titles),
)
