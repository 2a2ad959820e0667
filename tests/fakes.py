"""The one fake in the suite: a scanner at the scanner seam, for CLI and runner tests."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ipguard.model import (
    DhcpOffer,
    Evidence,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    ScanResult,
    ServiceObservation,
)
from ipguard.runner import Progress, ScanRequest

ALL_PHASES = frozenset(Phase)


def seen(ip: str, mac: str, *, source: str = "arp") -> Observation:
    """One ARP reply."""
    return Observation(ip=ip, mac=mac, seen_at=datetime.now(UTC), source=source)


def result(
    *hosts: tuple[str, str],
    services: Sequence[tuple[str, str]] = (),
    names: Sequence[NameObservation] = (),
    offers: Sequence[DhcpOffer] = (),
    proxies: Sequence[ProxyVerdict] = (),
    evidence: Sequence[Evidence] = (),
    ignored: Mapping[str, int] | None = None,
    phases: frozenset[Phase] = ALL_PHASES,
    service_mode: str = "full",
    partial_hosts: frozenset[str] = frozenset(),
) -> ScanResult:
    """A scan result from (ip, mac) pairs (the hosts that answered the sweep) and (ip, "tcp/port")
    open ports.

    Names, DHCP offers, proxy verdicts and evidence are passed as the scanners make them;
    `ignored` counts replies the sweeps read but did not keep (a flood), by reason.
    """
    return ScanResult(
        observations=tuple(seen(ip, mac) for ip, mac in hosts),
        services=tuple(
            ServiceObservation(ip=ip, proto=port.split("/")[0], port=int(port.split("/")[1]))
            for ip, port in services
        ),
        names=tuple(names),
        dhcp_offers=tuple(offers),
        proxies=tuple(proxies),
        evidence=tuple(evidence),
        ignored=dict(ignored or {}),
        phases=phases,
        service_mode=service_mode if Phase.SERVICES in phases else "",
        partial_hosts=partial_hosts,
        live_hosts=frozenset(ip for ip, _mac in hosts),
    )


@dataclass
class FakeScanner:
    """Returns prepared results, one per run (the last one repeats).

    `hold` seconds of waiting after writing `started_flag`, to let tests interrupt a run;
    `error` is raised instead of returning.
    """

    results: list[ScanResult]
    hold: float = 0.0
    started_flag: Path | None = None
    error: Exception | None = None
    requests: list[ScanRequest] = field(default_factory=list)

    def collect(self, request: ScanRequest, progress: Progress | None) -> ScanResult:
        self.requests.append(request)
        if self.started_flag is not None:
            self.started_flag.write_text("started")
        deadline = time.monotonic() + self.hold
        while time.monotonic() < deadline:  # bounded: at most `hold` seconds
            time.sleep(0.05)
        if self.error is not None:
            raise self.error
        if progress is not None:
            progress("sweep", 1, 1)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]
