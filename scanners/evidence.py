"""Router and access-point evidence: signs that a host routes traffic or runs a wireless network.

Strong signs come from probing: the host forwards a packet handed to its MAC for someone else, or
sends an ICMP redirect for it (scanners.forwarding); it announces itself over SSDP as a UPnP
Internet gateway or WLAN access point (scanners.upnp). Weaker ones come from looking: the title of
its web management page, the maker of its MAC (OUI), a TTL that betrays NAT, and MACs of one maker
next to each other. Policies weigh them; this module only reports what it saw.

    kind             points_to      from
    forwarding       router         a relayed echo request was answered (or refused as routers do)
    icmp-redirect    router         the host redirected a relayed packet
    ttl              router         its replies on the local link arrive with TTL 63/127/254
    upnp-igd         router         SSDP / description: InternetGatewayDevice
    ssdp-ap          access-point   SSDP / description: WLANAccessPointDevice
    http-title       router or AP   a consumer router/AP management page title
    vendor           access-point   the MAC's OUI belongs to a router/AP maker
    mac-adjacency    access-point   a neighbouring MAC (±1, ±2) of a host with other signs
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

from ipguard.addresses import ip_sort_key
from ipguard.model import (
    Evidence,
    EvidenceKind,
    IgnoredReply,
    Observation,
    ServiceObservation,
)
from ipguard.scanners import forwarding, http, rawsock, signs, upnp
from ipguard.scanners.base import Progress, clipped
from ipguard.scanners.scope import Scope

WHAT = "router/AP evidence"
HTTP_PORTS = frozenset({80, 81, 8000, 8008, 8080, 8081, 8088, 8888, 443, 8443})
TLS_PORTS = frozenset({443, 8443})
HTTP_WORDS = ("http", "upnp", "www")
MAX_REDIRECTS = 2
# An embedded web server (a router's or an AP's management UI, its UPnP description) often takes
# over a second to render a page; the fetches run side by side and beside the versions and DHCP
# phases, so waiting longer than the sweep's `timeout` for them costs a scan little.
PAGE_TIMEOUT = 3.0
MAX_WORKERS = 16
PHASES = 4  # forwarding, SSDP, web pages, vendors and adjacency


class RouterApEvidence:
    """Looks for routers and wireless access points among the hosts a sweep found.

    Example (needs CAP_NET_RAW for the forwarding probe)::

        evidence = RouterApEvidence("eth0", Scope(["198.18.0.0/24"]), timeout=1.0)
        evidence.collect(sweep.observations, services)
        # [Evidence(ip='198.18.0.60', mac='02:66:00:00:00:60', kind='forwarding', …), …]
    """

    def __init__(
        self,
        interface: str,
        scope: Scope,
        *,
        timeout: float,
        rate: float = 1000,
        progress: Progress | None = None,
    ) -> None:
        if timeout <= 0 or rate <= 0:
            raise ValueError(f"timeout and rate must be > 0 (got {timeout}, {rate})")
        self.interface = interface
        self.scope = scope
        self.timeout = timeout
        self.page_timeout = max(PAGE_TIMEOUT, timeout)  # for web pages and UPnP descriptions
        self.rate = rate
        self.progress = progress
        self.ignored: Counter[IgnoredReply] = Counter()  # answers not kept (upnp.search), by reason
        self.pages_read: set[tuple[str, int]] = set()  # (ip, port) of every page asked for

    def collect(
        self, observations: Sequence[Observation], services: Sequence[ServiceObservation]
    ) -> list[Evidence]:
        """Every sign found; ScopeError before any probe if an address lies outside the scope."""
        for ip in {o.ip for o in observations} | {s.ip for s in services}:
            self.scope.check(ip)
        iface = rawsock.usable_interface(self.interface, WHAT)
        assert iface.ipv4 is not None  # usable_interface guarantees it
        macs_by_ip = _macs_by_ip(observations, iface)
        suspects = [(ip, mac) for ip, macs in macs_by_ip.items() for mac in macs]
        witnesses = sorted(
            (ip for ip, macs in macs_by_ip.items() if len(macs) == 1), key=ip_sort_key
        )
        done = 0
        lock = threading.Lock()

        def finished() -> None:
            nonlocal done
            with lock:
                done += 1
                if self.progress is not None:
                    self.progress(done, PHASES)

        if self.progress is not None:
            self.progress(0, PHASES)
        # Threads started here share this thread's network namespace (the lab relies on it).
        with ThreadPoolExecutor(max_workers=3) as pool:
            routed = _run(pool, finished, self._forwarding, iface, suspects, witnesses)
            announced = _run(pool, finished, self._ssdp, iface.ipv4, list(macs_by_ip), macs_by_ip)
            pages = [(s.ip, s.port) for s in services if _speaks_http(s)]
            titled = _run(pool, finished, self._titles, pages, macs_by_ip)
            found = routed.result() + announced.result() + titled.result()
        found += self._vendors(observations, macs_by_ip, found)
        finished()
        return merged(found, [])

    # -- probing ----------------------------------------------------------------------------

    def _forwarding(
        self, iface: rawsock.InterfaceInfo, suspects: list[tuple[str, str]], candidates: list[str]
    ) -> list[Evidence]:
        return forwarding.probe(iface, suspects, candidates, timeout=self.timeout, rate=self.rate)

    def _ssdp(
        self, source_ip: str, hosts: list[str], macs_by_ip: dict[str, list[str]]
    ) -> list[Evidence]:
        responders = upnp.search(
            source_ip, hosts, self.scope, timeout=self.timeout, rate=self.rate, ignored=self.ignored
        )
        locations = list(dict.fromkeys(url for r in responders.values() for url in r.locations))
        descriptions: dict[str, upnp.Description | str] = {}
        if locations:
            with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(locations))) as pool:
                read = pool.map(
                    lambda url: upnp.describe(url, self.scope, timeout=self.page_timeout),
                    locations,
                )
                descriptions = dict(zip(locations, read, strict=True))
        found = []
        for ip, responder in sorted(responders.items(), key=lambda item: ip_sort_key(item[0])):
            facts = sorted(responder.targets)
            notes = [f"SERVER {server}" for server in sorted(responder.servers)]
            for location in responder.locations:
                described = descriptions[location]
                if isinstance(described, str):
                    notes.append(described)
                    continue
                facts += described.device_types
                parts = (described.friendly_name, described.manufacturer, described.model)
                who = " / ".join(part for part in parts if part)
                notes.append(f"{location}: {who}" if who else location)
            detail = "; ".join(notes)
            mac = _only_mac(macs_by_ip, ip)
            if any("InternetGatewayDevice" in fact for fact in facts):
                found.append(
                    Evidence(ip, mac, EvidenceKind.UPNP_IGD, signs.ROUTER, clipped(detail, 500))
                )
            if any("WLANAccessPointDevice" in fact for fact in facts):
                found.append(
                    Evidence(
                        ip, mac, EvidenceKind.SSDP_AP, signs.ACCESS_POINT, clipped(detail, 500)
                    )
                )
        return found

    def late_titles(
        self, observations: Sequence[Observation], services: Sequence[ServiceObservation]
    ) -> list[Evidence]:
        """Title evidence of the pages `collect` did not read, once the version probes are done.

        `collect` reads the pages of the fast pass's HTTP ports, named by number alone (nmap's
        port table calls a router's page on tcp/88 `kerberos-sec`); this reads those the version
        probes named HTTP and the TCP ports whose software nobody could name (no product, no
        banner), any of which may be a management page.
        """
        pages = [
            (s.ip, s.port)
            for s in services
            if s.proto == "tcp"
            and (s.ip, s.port) not in self.pages_read
            and (_speaks_http(s) or not (s.product or s.banner))
        ]
        for ip, _port in pages:
            self.scope.check(ip)
        if not pages:
            return []
        iface = rawsock.usable_interface(self.interface, WHAT)
        return self._titles(pages, _macs_by_ip(observations, iface))

    def _titles(
        self, pages: list[tuple[str, int]], macs_by_ip: dict[str, list[str]]
    ) -> list[Evidence]:
        pages = list(dict.fromkeys(pages))
        self.pages_read.update(pages)
        if not pages:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(pages))) as pool:
            titles = list(pool.map(lambda page: self._title(*page), pages))
        found = []
        for (ip, port), title in zip(pages, titles, strict=True):
            points_to = signs.title_points_to(title) if title else None
            if title and points_to:
                detail = f"tcp/{port}: {title}"
                found.append(
                    Evidence(
                        ip, _only_mac(macs_by_ip, ip), EvidenceKind.HTTP_TITLE, points_to, detail
                    )
                )
        return found

    def _title(self, ip: str, port: int) -> str | None:
        """The title of the page at / (following up to two redirects on the same address)."""
        path, tls = "/", port in TLS_PORTS
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                reply = http.get(ip, port, path, timeout=self.page_timeout, tls=tls)
            except (OSError, ValueError):
                return None
            location = reply.headers.get("location", "")
            if reply.status not in (301, 302, 303, 307, 308) or not location:
                return http.title(reply)
            scheme = "https" if tls else "http"
            target = urlsplit(urljoin(f"{scheme}://{ip}:{port}{path}", location))
            try:
                target_port = target.port
            except ValueError:
                return None
            if target.hostname != ip or target.scheme not in ("http", "https"):
                return None  # never follow a device elsewhere, not even to a name for itself
            tls = target.scheme == "https"
            port = target_port or (443 if tls else 80)
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        return None

    # -- looking ----------------------------------------------------------------------------

    def _vendors(
        self,
        observations: Sequence[Observation],
        macs_by_ip: dict[str, list[str]],
        found: list[Evidence],
    ) -> list[Evidence]:
        vendors: dict[str, str | None] = {}
        for seen in observations:
            if seen.mac and seen.mac.lower() not in vendors:
                mac = seen.mac.lower()
                vendors[mac] = None if signs.is_local(mac) else seen.vendor or signs.vendor_of(mac)
        ips_by_mac: dict[str, list[str]] = defaultdict(list)
        for ip, macs in macs_by_ip.items():
            for mac in macs:
                ips_by_mac[mac].append(ip)
        evidence = [
            Evidence(
                ip,
                mac,
                EvidenceKind.VENDOR,
                signs.ACCESS_POINT,
                f"OUI registered to {vendors[mac]}",
            )
            for mac, ips in ips_by_mac.items()
            for ip in ips
            if signs.is_router_vendor(vendors.get(mac))
        ]
        return evidence + signs.adjacency_evidence(ips_by_mac, found + evidence, vendors)


def _run(
    pool: ThreadPoolExecutor,
    finished: Callable[[], None],
    work: Callable[..., list[Evidence]],
    *args: object,
) -> Future[list[Evidence]]:
    def job() -> list[Evidence]:
        try:
            return work(*args)
        finally:
            finished()

    return pool.submit(job)


def _speaks_http(seen: ServiceObservation) -> bool:
    name = seen.service.lower()
    if seen.proto != "tcp" or "socks" in name:
        return False
    return seen.port in HTTP_PORTS or any(word in name for word in HTTP_WORDS)


def _only_mac(macs_by_ip: dict[str, list[str]], ip: str) -> str | None:
    """The MAC behind an address, when exactly one answered for it."""
    macs = macs_by_ip.get(ip, [])
    return macs[0] if len(macs) == 1 else None


def merged(found: Iterable[Evidence], more: Iterable[Evidence]) -> list[Evidence]:
    """Two lists of evidence as one, in `collect`'s order, each (ip, mac, kind) once."""
    both = _unique([*found, *more])
    return sorted(both, key=lambda e: (ip_sort_key(e.ip), e.kind, e.mac or ""))


def _macs_by_ip(
    observations: Sequence[Observation], iface: rawsock.InterfaceInfo
) -> dict[str, list[str]]:
    """The MACs that answered at each address, but the scanner's own."""
    macs_by_ip: dict[str, list[str]] = defaultdict(list)
    for seen in observations:
        if seen.mac and seen.ip != iface.ipv4 and seen.mac != iface.mac:
            mac = seen.mac.lower()
            if mac not in macs_by_ip[seen.ip]:
                macs_by_ip[seen.ip].append(mac)
    return macs_by_ip


def _unique(found: Iterable[Evidence]) -> list[Evidence]:
    """One piece of evidence per (ip, mac, kind): the first found."""
    first: dict[tuple[str, str | None, str], Evidence] = {}
    for evidence in found:
        first.setdefault((evidence.ip, evidence.mac, evidence.kind), evidence)
    return list(first.values())
