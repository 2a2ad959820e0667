"""The phase graph: independent steps overlap, each waits for those it follows, failures stop it."""

from __future__ import annotations

import threading
import time

import pytest

from ipguard.scanners.graph import Step, run_steps

WAIT = 10.0  # bound on every wait below; never reached when the graph behaves


def test_independent_steps_run_at_the_same_time() -> None:
    # Each of the two steps waits until the other has started: they can only both finish when
    # they overlap (one after the other, the first would wait in vain and fail).
    started = {"a": threading.Event(), "b": threading.Event()}

    def step(me: str, other: str) -> None:
        started[me].set()
        assert started[other].wait(WAIT), f"{other} did not run alongside {me}"

    spans = run_steps(
        [Step("a", (), lambda: step("a", "b")), Step("b", (), lambda: step("b", "a"))],
        origin=time.monotonic(),
    )
    assert set(spans) == {"a", "b"}
    # Offsets are rounded to the millisecond: overlapping spans may touch.
    assert spans["a"]["start"] <= spans["b"]["end"] and spans["b"]["start"] <= spans["a"]["end"]


def test_a_step_starts_only_after_the_steps_it_follows() -> None:
    order: list[str] = []
    lock = threading.Lock()

    def note(name: str) -> None:
        with lock:
            order.append(name)

    spans = run_steps(
        [
            Step("proxy", ("services",), lambda: note("proxy")),
            Step("services", ("sweep",), lambda: note("services")),
            Step("sweep", (), lambda: note("sweep")),
            Step("names", ("sweep",), lambda: note("names")),
            Step("evidence", ("services", "absent"), lambda: note("evidence")),
        ],
        origin=time.monotonic(),
    )
    assert order.index("sweep") < order.index("services") < order.index("proxy")
    assert order.index("sweep") < order.index("names")
    assert order.index("services") < order.index("evidence")  # "absent" is not in this run
    assert spans["services"]["start"] >= spans["sweep"]["end"]
    assert spans["proxy"]["start"] >= spans["services"]["end"]


def test_offsets_count_from_the_origin() -> None:
    origin = time.monotonic() - 5.0
    spans = run_steps([Step("sweep", (), lambda: None)], origin=origin)
    assert 5.0 <= spans["sweep"]["start"] <= spans["sweep"]["end"] < 5.0 + WAIT


def test_the_first_failure_is_raised_and_nothing_after_it_starts() -> None:
    ran: list[str] = []
    stop = threading.Event()

    def fail() -> None:
        raise RuntimeError("sweep broke")

    with pytest.raises(RuntimeError, match="sweep broke"):
        run_steps(
            [Step("sweep", (), fail), Step("services", ("sweep",), lambda: ran.append("x"))],
            origin=time.monotonic(),
            stop=stop,
        )
    assert ran == [] and stop.is_set()


def test_once_stopped_no_further_step_starts() -> None:
    stop = threading.Event()
    ran: list[str] = []
    spans = run_steps(
        [Step("sweep", (), stop.set), Step("services", ("sweep",), lambda: ran.append("x"))],
        origin=time.monotonic(),
        stop=stop,
    )
    assert ran == [] and set(spans) == {"sweep"}


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        run_steps(
            [Step("a", ("b",), lambda: None), Step("b", ("a",), lambda: None)],
            origin=time.monotonic(),
        )


def test_every_phase_that_reads_the_hosts_starts_after_the_sweep() -> None:
    # Whatever phases a run leaves out (--no-services, --phases), none may start on an empty
    # host list: the graph ignores absent predecessors, so each must name the sweep itself.
    from ipguard.model import Phase
    from ipguard.scanners.phases import PHASES

    independent = {Phase.DHCP, Phase.SWEEP, Phase.SNMP, Phase.IPV6}  # none reads the hosts
    assert {spec.phase for spec in PHASES} == set(Phase)
    for spec in PHASES:
        if spec.phase not in independent:
            assert Phase.SWEEP in spec.after, spec.phase
