"""One scan run: scanner → stored observations → policies → stored findings.

    with scan lock of the site:
        store runs the ledger could not take earlier (spool)       (transactions 2 and 3 each)
        mark dead runs aborted, record the run as running          (transaction 1)
        scanner.collect(request)                                   (the network part)
            meanwhile read the ledger the run is judged against      (runfacts.LedgerView)
        store what was seen                                        (transaction 2)
        policies over the ledger snapshot, sync findings, complete (transaction 3)

A run killed at any point leaves the ledger and earlier runs intact: the run stays `running` until
the next scan of the site, holding the lock, marks it aborted. SIGTERM and SIGINT mark it aborted
at once. When transaction 2 or 3 fails because the ledger is unavailable (disk full, read-only,
server down), what the scan saw is kept in a spool file (ipguard.spool) and stored, as the
complete run it was, by the next scan of the site.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from functools import partial
from types import FrameType
from typing import Any, Protocol

from ipguard import __version__, runfacts, spool
from ipguard.addresses import ip_sort_key
from ipguard.config import PolicySettings
from ipguard.errors import IpguardError, LedgerUnavailable, ScanAborted
from ipguard.ledger import devices, findings, locks, runs, skew
from ipguard.ledger.coverage import Answered
from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.ledger.store import Store
from ipguard.ledger.tables import utcnow
from ipguard.localtime import zone_name
from ipguard.model import Phase, RunStatus, ScanRequest, ScanResult

# phase name, done, total
Progress = Callable[[str, int, int], None]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Rogue DHCP servers heard this recently set how long the DHCP probe listens.
DHCP_HISTORY = timedelta(days=1)

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
    spooled: list[int] = field(default_factory=list)  # earlier runs stored from the spool now
    # (run, sensor, zone) of the site's last scan when it judged days in another zone than this
    other_calendar: tuple[int, str, str] | None = None


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
        with store.session(write=False) as session:
            skew.refuse_skewed(session)  # before anything is written with this machine's times
        spooled = _store_spooled(store, request.site, policy)
        with store.session() as session:
            aborted_before = runs.abort_dead(session, request.site, now=clock())
            request = _with_service_baseline(session, request, clock())
            request = _with_static_ipv6(session, request)
            request = _with_dhcp_history(session, request, clock())
            zone = zone_name(policy.timezone)  # the calendar this run judges days in
            calendar = runs.last_calendar(session, request.site)
            run = runs.start(
                session,
                site=request.site,
                interface=request.interface,
                subnets=request.subnets,
                settings={**_recorded(request), "fail_on": policy.fail_on.value, "timezone": zone},
                actor=actor,
                sensor=socket.gethostname(),
                version=__version__,
                now=clock(),
            )
        assert run.id is not None
        try:
            with _abort_on_signals():
                outcome = _complete(store, run, request, scanner, policy, progress, clock)
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
    outcome.spooled = spooled
    outcome.other_calendar = calendar if calendar is not None and calendar[2] != zone else None
    return outcome


def _recorded(request: ScanRequest) -> dict[str, Any]:
    """The request as the run records it (without the service baseline, which is history)."""
    recorded = {
        item.name: getattr(request, item.name)
        for item in fields(request)
        if item.name not in ("known_services", "snmp_devices", "static_ipv6", "dhcp_slowest")
    }
    # Devices by name and address only: a spooled run is re-judged, never re-polled.
    recorded["snmp"] = [f"{device.name} {device.host}" for device in request.snmp_devices]
    return recorded


def _with_service_baseline(session: Any, request: ScanRequest, now: datetime) -> ScanRequest:
    """Let the scanner skip version probes of hosts that did not change since the last scan."""
    if not request.services or request.full or request.full_rescan_hours <= 0:
        return request
    since = now - timedelta(hours=request.full_rescan_hours)
    known = runs.service_baseline(session, request.site, full_since=since)
    return replace(request, known_services=known)


def _with_dhcp_history(session: Any, request: ScanRequest, now: datetime) -> ScanRequest:
    """The slowest rogue DHCP server heard on this link in the last day, which the DHCP probe
    waits for."""
    if Phase.DHCP.value not in request.phases:
        return request
    link = (socket.gethostname(), request.interface)
    slowest = findings.slowest_dhcp_offer(session, request.site, link, since=now - DHCP_HISTORY)
    return replace(request, dhcp_slowest=slowest)


def _with_static_ipv6(session: Any, request: ScanRequest) -> ScanRequest:
    """The registered static IPv6 addresses, which the ipv6 phase solicits (when it runs)."""
    # Only statics inside the IPv6 prefixes are solicited: without prefixes, nothing to load.
    if Phase.IPV6.value not in request.phases or not any(":" in s for s in request.subnets):
        return request
    # A record whose ip is IPv6 (an IPv6-only device) holds that address as a static one too.
    statics = {
        ip
        for binding in devices.snapshot(session)
        for ip in (binding.ip, *binding.ipv6)
        if ":" in ip
    }
    return replace(request, static_ipv6=tuple(sorted(statics, key=ip_sort_key)))


def _complete(
    store: Store,
    run: ScanRun,
    request: ScanRequest,
    scanner: Scanner,
    policy: PolicySettings,
    progress: Progress | None,
    clock: Callable[[], datetime],
) -> RunOutcome:
    started = time.monotonic()
    view = _ledger_view(store)  # while the phases run: see runfacts.LedgerView
    result = runs.storable(scanner.collect(request, progress))
    # The phases' offsets count from the collection's start, which may precede this call (the
    # scanner may have begun before the run was recorded): the last phase ended just now.
    ends = [span["end"] for span in result.timings.values() if isinstance(span, Mapping)]
    started = min(started, time.monotonic() - max(ends, default=0.0))
    assert run.id is not None
    try:
        return _record(store, run.id, request, result, policy, clock, started, view)
    except LedgerUnavailable as error:
        raise _spool(store, run, result, error, clock) from None


def _ledger_view(store: Store) -> runfacts.LedgerView | None:
    """The ledger as the run judges it; None when it cannot be read now (read again later)."""
    try:
        with store.session() as session:
            return runfacts.ledger_view(session)
    except LedgerUnavailable:  # the run's results are still to come: they will be spooled
        return None


def _record(
    store: Store,
    run_id: int,
    request: ScanRequest,
    result: ScanResult,
    policy: PolicySettings,
    clock: Callable[[], datetime],
    started: float,
    view: runfacts.LedgerView | None = None,
) -> RunOutcome:
    """Transactions 2 and 3: store what a run saw, judge it, complete the run.

    Timings are {"start": s, "end": s} offsets from `started` (the run's start), and "total".
    `view` is the ledger read while the phases ran (else it is read here).
    """
    timings: dict[str, Any] = dict(result.timings)

    def span(mark: float) -> dict[str, float]:
        return {
            "start": round(mark - started, 3),
            "end": round(time.monotonic() - started, 3),
        }

    mark = time.monotonic()
    with store.session() as session:
        counts: dict[str, Any] = runs.store_results(session, run_id, result)
    timings["storage"] = span(mark)

    mark = time.monotonic()
    with store.session() as session:
        now = clock()
        grace = policy.unregistered_grace_days
        facts = runfacts.facts(session, request, result, now, view, grace_days=grace)
        found = runfacts.evaluate_policies(facts, policy)
        timings["policies"] = span(mark)
        synced = findings.sync(
            session,
            site=request.site,
            run_id=run_id,
            now=now,
            findings=found,
            subnets=runfacts.covered_subnets(request.subnets, result.uncovered),
            phases=result.phases,
            evidence=runfacts.evidence_of(result),
            partial_hosts=result.partial_hosts,
            answered=Answered.of(result),
            snmp_polled=frozenset(
                poll.device for poll in result.snmp if poll.answered and not poll.unread_vlans
            ),
        )
        timings["total"] = round(time.monotonic() - started, 3)
        counts.update(
            findings_new=len(synced.new),
            findings_resolved=len(synced.resolved),
            findings_seen=len(synced.new) + len(synced.seen_again),
            timings=timings,
        )
        if result.snmp:  # which devices answered: coverage of their findings depends on it
            counts["snmp"] = {
                poll.device: {
                    "answered": poll.answered,
                    "warning": poll.warning,
                    "unread_vlans": list(poll.unread_vlans),
                    "arp": len(poll.arp),
                    "fdb": len(poll.fdb),
                    "lldp": len(poll.lldp),
                }
                for poll in result.snmp
            }
        if result.uncovered:
            counts["uncovered"] = [asdict(item) for item in result.uncovered]
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


def _spool(
    store: Store,
    run: ScanRun,
    result: ScanResult,
    error: LedgerUnavailable,
    clock: Callable[[], datetime],
) -> LedgerUnavailable:
    """Keep a run's results for the next scan; the error to raise says where (or why not)."""
    assert run.id is not None
    kept = spool.SpooledRun(
        run_id=run.id,
        site=run.site,
        interface=run.interface,
        subnets=tuple(run.subnets),
        settings=run.settings,
        actor=run.actor,
        sensor=run.sensor,
        version=run.version,
        started_at=run.started_at,
        finished_at=clock(),
        failure=str(error),
        result=result,
    )
    try:
        path = spool.keep(store.url, kept)
    except spool.SpoolError as problem:
        return LedgerUnavailable(
            f"{error}; the results of scan run {run.id} could not be kept either ({problem}), "
            "so they are lost: fix the ledger and scan again"
        )
    return LedgerUnavailable(
        f"{error}; the results of scan run {run.id} are kept in {path} and the next scan of "
        f"site {run.site} stores them"
    )


def _store_spooled(store: Store, site: str, policy: PolicySettings) -> list[int]:
    """Store the runs the ledger could not take earlier, oldest first, each as a complete run.

    Done again from scratch if interrupted: the run's earlier results are replaced, and a file
    whose run is already complete is only removed.
    """
    stored = []
    for kept in spool.pending(store.url, site):
        with store.session() as session:
            run = runs.find_spooled(session, kept.run_id, site, kept.started_at)
            if run is not None and run.status == RunStatus.COMPLETE.value:
                kept.remove()
                continue
            if run is None:
                run = runs.start(
                    session,
                    site=kept.site,
                    interface=kept.interface,
                    subnets=kept.subnets,
                    settings=dict(kept.settings),
                    actor=kept.actor,
                    sensor=kept.sensor,
                    version=kept.version,
                    now=kept.started_at,
                )
            else:
                runs.clear_results(session, run)
            assert run.id is not None
            run_id = run.id
        recorded: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in kept.settings.items()
            if key in {item.name for item in fields(ScanRequest)}
        }
        clock = partial(_fixed, kept.finished_at)
        _record(
            store, run_id, ScanRequest(**recorded), kept.result, policy, clock, time.monotonic()
        )
        kept.remove()
        stored.append(run_id)
    return stored


def _fixed(moment: datetime) -> datetime:
    return moment


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
