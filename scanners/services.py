"""Service scan: which ports of the live hosts are open, and what answers there (nmap `-sV`).

nmap runs through python-nmap on live hosts only, in batches, each host bounded by nmap's
`--host-timeout`. ipguard's port spec `tcp/1-1024;tcp/3128;udp/161` becomes nmap's
`-p T:1-1024,3128,U:161`; a UDP scan (`-sU`) is added only when the spec holds UDP ports.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ipguard.errors import InvalidValue, PrivilegeError, ScanError, ToolMissing
from ipguard.model import ServiceObservation
from ipguard.scanners.base import Progress
from ipguard.scanners.nmapfacts import port_observations, xml_facts
from ipguard.scanners.scope import Scope

WHAT = "service scan"
# nmap's version intensity 2 is `--version-light`: the common probes only, a few seconds per port.
DEFAULT_INTENSITY = 2
# Seconds a port's version probes may take. A banner (SSH) tells in under one; nmap waits 6 s for a
# banner before its first question (DNS, SOCKS tell then); a port that accepts and stays silent,
# or HTTP nmap cannot name, would hold it for its whole probe list (half a minute and more).
VERSION_BUDGET = 7.0
_PORT_ITEM = re.compile(r"^(tcp|udp)/(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class PortSpec:
    """ipguard's `proto/low-high` list, grouped by protocol and ready for nmap."""

    tcp: tuple[tuple[int, int], ...]
    udp: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> PortSpec:
        """Parse `tcp/1-1024;tcp/3128;udp/161`; InvalidValue names the bad item."""
        ranges: dict[str, list[tuple[int, int]]] = {"tcp": [], "udp": []}
        for raw in text.split(";"):
            item = raw.strip().lower()
            if not item:
                continue
            match = _PORT_ITEM.match(item)
            low = int(match.group(2)) if match else 0
            high = int(match.group(3) or low) if match else 0
            if match is None or not 0 < low <= high < 65536:
                raise InvalidValue(
                    f"ports: {item!r} is not proto/port or proto/low-high (e.g. tcp/1-1024;udp/161)"
                )
            ranges[match.group(1)].append((low, high))
        if not ranges["tcp"] and not ranges["udp"]:
            raise InvalidValue("ports: no ports given (e.g. tcp/1-1024;tcp/3128)")
        return cls(tcp=_merged(ranges["tcp"]), udp=_merged(ranges["udp"]))

    def nmap(self) -> str:
        """The nmap `-p` argument: `T:1-1024,3128,U:161`."""
        parts = []
        for prefix, ranges in (("T:", self.tcp), ("U:", self.udp)):
            if ranges:
                parts.append(prefix + ",".join(_range_text(low, high) for low, high in ranges))
        return ",".join(parts)


class ServiceScan:
    """Finds the open ports of live hosts and the service behind each, with nmap `-sV`.

    Example (as root nmap sends a SYN scan, otherwise a connect scan)::

        scan = ServiceScan(Scope(["198.18.0.0/24"]), ports="tcp/1-1024;tcp/3128", host_timeout=60)
        scan.scan(["198.18.0.35"])
        # [ServiceObservation(ip='198.18.0.35', proto='tcp', port=3128, service='http-proxy', …)]

    Hosts that nmap gave up on (host timeout) are listed in `timed_out` after a scan. Batches of
    `batch` hosts run `workers` nmap processes at a time: a service scan mostly waits for silent
    ports, so a few processes side by side finish much sooner than one after the other.
    """

    def __init__(
        self,
        scope: Scope,
        *,
        ports: str,
        host_timeout: float,
        batch: int = 64,
        progress: Progress | None = None,
        intensity: int = DEFAULT_INTENSITY,
        workers: int = 1,
        versions: bool = True,
        rate: float | None = None,
        version_budget: float = VERSION_BUDGET,
    ) -> None:
        if host_timeout <= 0 or batch < 1 or workers < 1 or not 0 <= intensity <= 9:
            raise ValueError(
                f"host_timeout must be > 0, batch and workers >= 1, intensity 0-9 "
                f"(got {host_timeout}, {batch}, {workers}, {intensity})"
            )
        if (rate is not None and rate < 1) or version_budget <= 0:
            raise ValueError(f"rate must be >= 1, version_budget > 0 ({rate}, {version_budget})")
        self.scope = scope
        self.ports = PortSpec.parse(ports)
        self.host_timeout = host_timeout
        self.batch = batch
        self.progress = progress
        self.intensity = intensity
        self.workers = workers
        # Without version probes nmap only finds which ports are open: seconds instead of a minute,
        # which is what an incremental scan needs to decide who deserves a full look.
        self.versions = versions
        # Probes a second for all of this scan's nmap processes together (its share of the run's
        # pacing budget), and the seconds a port may take to name its software.
        self.rate = rate
        self.version_budget = version_budget
        self.timed_out: list[str] = []

    def arguments(
        self,
        hosts: int,
        *,
        versions: bool | None = None,
        processes: int = 1,
        port: tuple[str, int] | None = None,
    ) -> str:
        """The nmap options of one batch of `hosts` addresses (without targets and `-oX`).

        `versions` (default: the scan's) adds version probes; `processes` is how many nmap
        processes share the scan's rate at once; `port` (proto, number) asks for that port only,
        within the version budget.
        """
        versions = self.versions if versions is None else versions
        ports = f"{'T' if port[0] == 'tcp' else 'U'}:{port[1]}" if port else self.ports.nmap()
        timeout = self.version_budget if port else self.host_timeout
        root = os.geteuid() == 0
        if self.ports.udp and not root:
            raise PrivilegeError(
                f"{WHAT}: nmap's UDP scan needs raw sockets: run as root or give nmap CAP_NET_RAW, "
                "or leave udp/ ports out of [scan] ports"
            )
        kinds = ["-sS" if root else "-sT"] + (["-sU"] if self.ports.udp else [])
        return " ".join(
            [
                *kinds,
                *(["-sV", f"--version-intensity {self.intensity}"] if versions else []),
                "-n",
                "-Pn",
                f"-p {ports}",
                *self._pace(processes),
                f"--host-timeout {max(1, round(timeout * 1000))}ms",
                # One host group per batch: nmap's default groups of four would run one after the
                # other, each waiting for its slowest service probe.
                f"--min-hostgroup {hosts}",
            ]
        )

    def _pace(self, processes: int) -> list[str]:
        """nmap's rate options: each of `processes` processes gets its part of the scan's rate.

        --min-rate keeps nmap from starting slow and backing off on a LAN that answers at once;
        --max-rate keeps it inside the budget.
        """
        if self.rate is None:
            return []
        share = max(1.0, self.rate / processes)
        return [f"--min-rate {max(1, int(share / 2))}", f"--max-rate {max(1, int(share))}"]

    def scan(self, live_ips: Iterable[str]) -> list[ServiceObservation]:
        """Open ports of every live host, then (with versions) what answers on each.

        ScopeError before nmap starts if a host lies outside the scope. The open ports come from
        one fast pass without version probes; version probes then run on the open ports only,
        each port within `version_budget` seconds: a port that does not tell in time keeps the
        name nmap's port table gives it (enough for every finding), without product or version.
        """
        found = self.open_ports(live_ips)
        if not self.versions or not found:
            return found
        return self.identify(found)

    def open_ports(self, live_ips: Iterable[str]) -> list[ServiceObservation]:
        """The open ports of every live host, without version probes (one fast pass).

        Observations come batch by batch in the order of `live_ips`, whatever order the batches
        finish in.
        """
        targets = list(dict.fromkeys(self.scope.check(ip) for ip in live_ips))
        for ip in targets:
            if ":" in ip:
                raise InvalidValue(f"{ip}: the service scan probes IPv4 hosts only")
        self.timed_out = []
        if not targets:
            return []
        _port_scanner()  # ToolMissing before anything else
        batches = [targets[k : k + self.batch] for k in range(0, len(targets), self.batch)]
        done = 0
        lock = threading.Lock()
        self._report(0, len(targets))

        processes = min(self.workers, len(batches))

        def one(hosts: list[str]) -> tuple[list[ServiceObservation], list[str]]:
            nonlocal done
            scanner = _port_scanner()  # one per batch: a PortScanner keeps its last result
            arguments = self.arguments(len(hosts), versions=False, processes=processes)
            result = _run(scanner, hosts, arguments)
            assert result is not None  # no limit
            fingerprints, timed_out = xml_facts(scanner.get_nmap_last_output())
            seen = result.get("scan", {})
            found = [
                o for ip in hosts for o in port_observations(ip, seen.get(ip, {}), fingerprints)
            ]
            with lock:
                done += len(hosts)
                self._report(done, len(targets))
            return found, [ip for ip in hosts if ip in timed_out]

        # nmap processes start from worker threads, which share this thread's network namespace.
        with ThreadPoolExecutor(max_workers=processes) as pool:
            outcomes = list(pool.map(one, batches))
        for _found, timed_out in outcomes:
            self.timed_out += timed_out
        return [o for found, _timed_out in outcomes for o in found]

    def identify(self, found: list[ServiceObservation]) -> list[ServiceObservation]:
        """`found` with what nmap's version probes tell of each port, each within the budget.

        One nmap process per port, `workers` at a time: a port that accepts and stays silent
        holds only its own process, for `version_budget` seconds at most.
        """
        if not found:
            return []
        processes = min(self.workers, len(found))

        def one(item: ServiceObservation) -> ServiceObservation:
            arguments = self.arguments(
                1, versions=True, processes=processes, port=(item.proto, item.port)
            )
            scanner = _port_scanner()
            # nmap checks its host timeout only between probes, and a probe may wait 6 s or more:
            # the process is killed when the budget (and its start-up) is spent.
            result = _run(scanner, [item.ip], arguments, limit=self.version_budget + 0.5)
            if result is None:
                return item
            fingerprints, _timed_out = xml_facts(scanner.get_nmap_last_output())
            seen = result.get("scan", {}).get(item.ip, {})
            named = [
                o for o in port_observations(item.ip, seen, fingerprints) if o.port == item.port
            ]
            return named[0] if named else item

        with ThreadPoolExecutor(max_workers=processes) as pool:
            return list(pool.map(one, found))

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def _port_scanner() -> Any:
    import nmap

    try:
        return nmap.PortScanner()
    except nmap.PortScannerError as exc:
        raise ToolMissing("nmap is not installed: apt-get install nmap") from exc


def _run(
    scanner: Any, hosts: list[str], arguments: str, *, limit: float = 0.0
) -> Mapping[str, Any] | None:
    """nmap's result; None when it ran longer than `limit` seconds (0: no limit) and was killed."""
    import nmap

    try:
        result: Mapping[str, Any] = scanner.scan(
            hosts=" ".join(hosts), arguments=arguments, timeout=limit
        )
    except nmap.PortScannerTimeout:
        return None
    except nmap.PortScannerError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "no output"
        if "root privileges" in str(exc) or "Operation not permitted" in str(exc):
            raise PrivilegeError(
                f"{WHAT}: nmap needs raw sockets: run as root or give nmap CAP_NET_RAW ({message})"
            ) from exc
        raise ScanError(f"{WHAT}: nmap failed: {message}") from exc
    return result


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return tuple(merged)


def _range_text(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"
