"""The real scanner behind `ipguard scan`: the request's phases over its subnets, overlapping.

The phases, what each follows and what each needs, are in scanners.phases. They run as a
dependency graph (scanners.graph): independent ones at the same time, so a run lasts as long as
its critical path. Every sender draws from one pacing budget of `rate` probes a second
(scanners.pacing.shared), nmap included (its share via `--max-rate`).

Each phase reports progress as (phase, done, total) and its start and end, in seconds from the
run's start, in `ScanResult.timings`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ipguard.model import Phase, ScanRequest, ScanResult
from ipguard.scanners import graph, pacing, rawsock
from ipguard.scanners.phases import PARTS, PHASES, Collection, PhaseProgress


class NetworkScanner:
    """Sweeps, scans services and probes the request's subnets from its interface.

    `begin` starts the phases at once, before the ledger is even open (a scan's first probe goes
    out within a quarter of a second of its start); `collect` hands over the service baseline the
    ledger knows and waits for the result. `collect` alone does both.
    """

    def __init__(self) -> None:
        self._collection: Collection | None = None
        self._thread: threading.Thread | None = None
        self._outcome: dict[str, Any] = {}
        self._budget: pacing.Budget | None = None

    def begin(self, request: ScanRequest, progress: PhaseProgress | None) -> None:
        """Start the request's phases in the background; errors surface from `collect`."""
        origin = time.monotonic()
        try:
            # A scan of lo failed with "the transmit queue stayed full": say what is wrong.
            rawsock.require_ethernet(rawsock.interface_info(request.interface))
            collection = Collection(request, progress)
        except Exception as error:  # raised by collect, inside the recorded run
            self._outcome["error"] = error
            return
        self._collection = collection
        wanted = set(request.phases)
        steps = [
            graph.Step(
                spec.phase.value, tuple(p.value for p in spec.after), _bound(spec.work, collection)
            )
            for spec in PHASES
            if spec.phase.value in wanted
        ] + [
            graph.Step(name, (phase.value, *after), _bound(work, collection))
            for name, phase, after, work in PARTS
            if phase.value in wanted
        ]

        budget = self._budget = pacing.Budget(request.rate)

        def run() -> None:
            try:
                with pacing.shared(budget):
                    self._outcome["timings"] = graph.run_steps(
                        steps, origin=origin, stop=collection.stop
                    )
            except BaseException as error:  # handed to collect
                self._outcome["error"] = error

        self._thread = threading.Thread(target=run, name="ipguard-scan", daemon=True)
        self._thread.start()

    def wait_first_probe(self, timeout: float) -> None:
        """Wait until the sweep's first probe is on its way (or the sweep is over, or `timeout`).

        The caller then imports and opens the ledger; started first, that would hold the
        interpreter for half a second before the sweep got to send anything. A run without a
        sweep does not wait.
        """
        budget, thread, collection = self._budget, self._thread, self._collection
        if budget is None or thread is None or collection is None:
            return
        if Phase.SWEEP.value not in collection.request.phases:
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            if budget.first_grant.wait(0.01):
                time.sleep(0.001)  # the sender sends its first batch meanwhile
                return

    def collect(self, request: ScanRequest, progress: PhaseProgress | None) -> ScanResult:
        """Carry out every phase the request asks for (started by `begin`, or now)."""
        if self._collection is None and "error" not in self._outcome:
            self.begin(request, progress)
        if "error" in self._outcome and self._thread is None:
            raise self._outcome["error"]
        collection, thread = self._collection, self._thread
        assert collection is not None and thread is not None
        collection.request = replace(
            collection.request,
            known_services=request.known_services,
            static_ipv6=request.static_ipv6,
            dhcp_slowest=request.dhcp_slowest,
        )
        collection.baseline_ready.set()
        while thread.is_alive():
            thread.join(0.1)  # short waits: SIGTERM and Ctrl-C are handled meanwhile
        if "error" in self._outcome:
            raise self._outcome["error"]
        return collection.result(self._outcome["timings"])

    def cancel(self) -> None:
        """Start no further phase (the run was not recorded: another scan holds the lock)."""
        if self._collection is not None:
            self._collection.stop.set()


def _bound(work: Callable[[Collection], None], collection: Collection) -> Callable[[], None]:
    return lambda: work(collection)
