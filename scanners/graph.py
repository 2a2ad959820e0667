"""A scan's phases as a dependency graph: each starts as soon as the phases it follows are done.

Phases wait on the network (replies, timeouts, nmap), not on the CPU, so each runs on a thread of
its own and independent ones overlap: a run lasts as long as its critical path.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One phase to run: its name, the steps it follows (absent ones are ignored), its work."""

    name: str
    after: tuple[str, ...]
    work: Callable[[], None]


def run_steps(
    steps: Sequence[Step],
    *,
    origin: float,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, dict[str, float]]:
    """Run every step once its predecessors are done; {name: {"start", "end"}} from `origin`.

    The first step to fail stops the run: no further step starts, and its error is raised here
    (steps already running finish on their own, on daemon threads that never hold up an exit).
    When `stop` is set, no further step starts either.
    """
    names = {step.name for step in steps}
    unknown = [name for step in steps for name in step.after if name == step.name]
    if unknown or len(names) != len(steps):
        raise ValueError(f"steps must have distinct names and not follow themselves: {unknown}")
    pending = {step.name: step for step in steps}
    done: set[str] = set()
    spans: dict[str, dict[str, float]] = {}
    finished: queue.Queue[tuple[str, BaseException | None, float, float]] = queue.Queue()
    running = 0

    def launch(step: Step) -> None:
        def body() -> None:
            started = clock()
            failure: BaseException | None = None
            try:
                step.work()
            except BaseException as error:  # handed to the waiting thread, which raises it
                failure = error
            finished.put((step.name, failure, started, clock()))

        threading.Thread(target=body, name=f"ipguard-{step.name}", daemon=True).start()

    while pending or running:
        if stop is None or not stop.is_set():
            ready = [
                step
                for step in pending.values()
                if all(name in done or name not in names for name in step.after)
            ]
            for step in ready:
                del pending[step.name]
                launch(step)
                running += 1
        if not running:
            break  # stopped, or a cycle: what is left can never start
        name, failure, started, ended = finished.get()
        running -= 1
        if failure is not None:
            if stop is not None:
                stop.set()
            raise failure
        done.add(name)
        spans[name] = {"start": round(started - origin, 3), "end": round(ended - origin, 3)}
    if pending and (stop is None or not stop.is_set()):
        raise ValueError(f"steps that can never start (a cycle): {sorted(pending)}")
    return spans
