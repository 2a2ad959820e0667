"""One scan run: scanner → stored observations → policies → stored findings.

    with scan lock of the site:
        mark dead runs aborted, record the run as running          (transaction 1)
        scanner.collect(request)                                   (the network part)
        store what was seen                                        (transaction 2)
        policies over the ledger snapshot, sync findings, complete (transaction 3)

A run killed at any point leaves the ledger and earlier runs intact: the run stays `running` until
the next scan of the site, holding the lock, marks it aborted. SIGTERM and SIGINT mark it aborted
at once.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from ipguard import __version__
from ipguard.config import PolicySettings
from ipguard.errors import IpguardError, ScanAborted
from ipguard.ledger import devices, findings, locks, runs
from ipguard.ledger.pools import list_pools
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.ledger.store import Store
from ipguard.ledger.tables import utcnow
from ipguard.model import Finding, RunStatus, ScanRequest, ScanResult

# phase name, done, total
Progress = Callable[[str, int, int], None]

__all__ = ["Progress", "RunOutcome", "ScanRequest", "Scanner", "run_scan"]


class Scanner(Protocol):
    """The seam between a run and the network: turns a request into what was seen.

    The real one sweeps, scans services and probes (scanners.suite.NetworkScanner); tests give
    the runner and the CLI a fake one that returns a prepared ScanResult.
    """

    def collect(self, request: ScanRequest, progress: Progress | None) -> ScanResult:
        """Carry out the request's phases and return every sighting."""
        ...


@dataclass
class RunOutcome:
    """A finished run and what it did to the findings."""

    run: ScanRun
    live: list[FindingRow]
    new: list[FindingRow] = field(default_factory=list)
    escalated: list[FindingRow] = field(default_factory=list)
    resolved: list[FindingRow] = field(default_factory=list)
    failing: list[FindingRow] = field(default_factory=list)
    aborted_before: list[int] = field(default_factory=list)


def run_scan(
    store: Store,
    request: ScanRequest,
    scanner: Scanner,
    *,
    policy: PolicySettings,
    actor: str,
    wait: float = 0.0,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RunOutcome:
    """Carry out one complete run under the site's lock; see the module docstring."""
    with locks.scan_lock(store, request.site, wait=wait):
        with store.session() as session:
            aborted_before = runs.abort_dead(session, request.site, now=clock())
            request = _with_service_baseline(session, request, clock())
            run = runs.start(
                session,
                site=request.site,
                interface=request.interface,
                subnets=request.subnets,
                settings={**_recorded(request), "fail_on": policy.fail_on.value},
                actor=actor,
                sensor=socket.gethostname(),
                version=__version__,
                now=clock(),
            )
        assert run.id is not None
        try:
            with _abort_on_signals():
                outcome = _complete(store, run.id, request, scanner, policy, progress, clock)
        except (KeyboardInterrupt, ScanAborted) as stop:
            reason = str(stop) or "interrupted"
            _close(store, run.id, RunStatus.ABORTED, reason, clock)
            raise ScanAborted(
                f"scan run {run.id} aborted ({reason}); the ledger is unchanged"
            ) from None
        except IpguardError as error:
            _close(store, run.id, RunStatus.FAILED, str(error), clock)
            raise
        except Exception as error:
            _close(store, run.id, RunStatus.FAILED, f"{type(error).__name__}: {error}", clock)
            raise
    outcome.aborted_before = aborted_before
    return outcome


def _recorded(request: ScanRequest) -> dict[str, Any]:
    """The request as the run records it (without the service baseline, which is history)."""
    return {
        item.name: getattr(request, item.name)
        for item in fields(request)
        if item.name != "known_services"
    }


def _with_service_baseline(session: Any, request: ScanRequest, now: datetime) -> ScanRequest:
    """Let the scanner skip version probes of hosts that did not change since the last scan."""
    if not request.services or request.full or request.full_rescan_hours <= 0:
        return request
    since = now - timedelta(hours=request.full_rescan_hours)
    known = runs.service_baseline(session, request.site, full_since=since)
    return replace(request, known_services=known)


def _complete(
    store: Store,
    run_id: int,
    request: ScanRequest,
    scanner: Scanner,
    policy: PolicySettings,
    progress: Progress | None,
    clock: Callable[[], datetime],
) -> RunOutcome:
    started = time.monotonic()
    result = scanner.collect(request, progress)
    timings = dict(result.timings)

    mark = time.monotonic()
    with store.session() as session:
        counts: dict[str, Any] = runs.store_results(session, run_id, result)
    timings["storage"] = time.monotonic() - mark

    mark = time.monotonic()
    with store.session() as session:
        now = clock()
        facts = _facts(session, request, result, now)
        found = evaluate_policies(facts, policy)
        timings["policies"] = time.monotonic() - mark
        synced = findings.sync(
            session,
            site=request.site,
            run_id=run_id,
            now=now,
            findings=found,
            subnets=request.subnets,
            phases=result.phases,
            evidence=evidence_of(result),
            partial_hosts=result.partial_hosts,
        )
        timings["total"] = time.monotonic() - started
        counts.update(
            findings_new=len(synced.new),
            findings_resolved=len(synced.resolved),
            findings_seen=len(synced.new) + len(synced.seen_again),
            timings={name: round(seconds, 3) for name, seconds in timings.items()},
        )
        run = runs.get(session, run_id)
        run.settings = {**run.settings, "phases": sorted(phase.value for phase in result.phases)}
        run = runs.finish(session, run_id, RunStatus.COMPLETE, counts=counts, now=clock())
        failing = findings.failing(session, site=request.site, threshold=policy.fail_on, now=now)
        live = findings.list_findings(session, site=request.site, live_only=True)
    return RunOutcome(
        run=run,
        live=live,
        new=synced.new,
        escalated=synced.escalated,
        resolved=synced.resolved,
        failing=failing,
    )


def _facts(session: Any, request: ScanRequest, result: ScanResult, now: datetime) -> Any:
    from policies.base import PoolRange, RunFacts

    records = devices.list_devices(session)
    seen = runs.last_seen(session)
    # A record never seen yet counts from its registration: a fresh import is not stale at once.
    for device in records:
        seen.setdefault((device.ip, device.mac), device.created_at)
    return RunFacts(
        now=now,
        subnets=request.subnets,
        observations=result.observations,
        services=result.services,
        dhcp_offers=result.dhcp_offers,
        proxies=result.proxies,
        names=result.names,
        evidence=result.evidence,
        ledger=tuple(device.to_binding() for device in records),
        pools=tuple(PoolRange(pool.department, pool.cidr) for pool in list_pools(session)),
        last_seen=seen,
        first_seen=findings.first_seen(session, request.site),
        site=request.site,  # the whole ledger is judged; records of other sites authorise nothing
    )


def evaluate_policies(facts: Any, policy: PolicySettings) -> list[Finding]:
    """Every policy over the run's facts."""
    import policies

    return list(policies.evaluate(facts, policy))


def evidence_of(result: ScanResult) -> Callable[[Finding], dict[str, Any]]:
    """For a finding, the sightings of this run about its address (capped per kind)."""
    by_ip: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    groups: list[tuple[str, str, tuple[Any, ...]]] = [
        ("observations", "ip", result.observations),
        ("services", "ip", result.services),
        ("proxies", "ip", result.proxies),
        ("names", "ip", result.names),
        ("evidence", "ip", result.evidence),
        ("dhcp_offers", "server_ip", result.dhcp_offers),
    ]
    for name, key, items in groups:
        for item in items:
            bucket = by_ip[getattr(item, key)][name]
            if len(bucket) < 20:
                bucket.append(_plain(item))

    def evidence(finding: Finding) -> dict[str, Any]:
        found = by_ip.get(finding.ip or "", {})
        return {name: items for name, items in found.items() if items}

    return evidence


def _plain(item: Any) -> dict[str, Any]:
    values = asdict(item)
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = value.isoformat()
        elif isinstance(value, tuple):
            values[key] = list(value)
    return values


def _close(
    store: Store, run_id: int, status: RunStatus, error: str, clock: Callable[[], datetime]
) -> None:
    """Record how a run ended; if even that fails, the next scan marks it aborted."""
    try:
        with store.session() as session:
            runs.finish(session, run_id, status, error=error[:2000], now=clock())
    except IpguardError:
        pass


@contextmanager
def _abort_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into ScanAborted while a run is in progress."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise ScanAborted(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals; its own handlers stay in charge
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(outcome: RunOutcome) -> int:
    """0 when nothing at or above fail_on is open (and unacknowledged), else 1."""
    return 1 if outcome.failing else 0
