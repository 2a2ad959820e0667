"""The probe schedule: who is probed how often, with a simulated network and clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ipguard.scanners.probing import (
    MIN_EVIDENCE,
    MIN_RETRY_GAP,
    MIN_SETTLE,
    RTT_FACTOR,
    ProbeLog,
    run_schedule,
)
from tests.scanners.fakeclock import FakeClock


class FakeNetwork:
    """Targets in `live` answer after `rtt` seconds, from their `answer_from_try`-th probe on.

    `late` overrides that try for some targets (a lost probe or reply looks the same).
    """

    def __init__(
        self,
        clock: FakeClock,
        live: set[int],
        rtt: float = 0.001,
        answer_from_try: int = 1,
        late: dict[int, int] | None = None,
    ) -> None:
        self.clock = clock
        self.live = live
        self.rtt = rtt
        self.answer_from_try = answer_from_try
        self.late = late or {}
        self.probes: list[tuple[int, float]] = []
        self.tries: dict[int, int] = {}
        self.in_flight: list[tuple[int, float]] = []

    def send(self, batch: Sequence[int]) -> None:
        for i in batch:
            self.probes.append((i, self.clock()))
            self.tries[i] = self.tries.get(i, 0) + 1
            if i in self.live and self.tries[i] >= self.late.get(i, self.answer_from_try):
                self.in_flight.append((i, self.clock() + self.rtt))

    def answers(self) -> list[tuple[int, float]]:
        due = [(i, t) for i, t in self.in_flight if t <= self.clock()]
        self.in_flight = [(i, t) for i, t in self.in_flight if t > self.clock()]
        return due


def schedule(net: FakeNetwork, count: int, **settings: Any) -> ProbeLog:
    """`run_schedule` of `count` targets on the simulated network and its clock."""
    return run_schedule(
        count, net.send, net.answers, clock=net.clock, sleep=net.clock.sleep, **settings
    )


@pytest.mark.parametrize("retries", [0, 1, 2, 5])
def test_only_silent_targets_are_probed_again(retries: int) -> None:
    clock = FakeClock()
    live = set(range(0, 1000, 7))
    net = FakeNetwork(clock, live)
    log = schedule(net, 1000, rate=10_000, retries=retries, timeout=1.0)
    silent = 1000 - len(live)
    assert log.probes_sent == len(net.probes) == 1000 + retries * silent
    assert all(net.tries[i] == 1 for i in live)
    assert all(net.tries[i] == 1 + retries for i in range(1000) if i not in live)


def test_a_retry_pass_that_finds_nobody_ends_the_retries_when_many_answered() -> None:
    clock = FakeClock()
    live = set(range(0, 2 * MIN_EVIDENCE, 2))  # MIN_EVIDENCE live, as many silent
    net = FakeNetwork(clock, live)
    log = schedule(net, 2 * MIN_EVIDENCE, rate=100_000, retries=3, timeout=1.0)
    # One retry pass found nobody: no loss to make up for, so passes 2 and 3 are not made.
    assert log.probes_sent == 2 * MIN_EVIDENCE + MIN_EVIDENCE
    assert len(log.passes) == 2
    assert all(net.tries[i] == 2 for i in range(1, 2 * MIN_EVIDENCE, 2))
    # It still waited for that retry pass's replies (the settling wait), then no longer.
    assert log.finished - log.last_probe == pytest.approx(MIN_SETTLE, abs=0.01)


def test_retries_go_on_while_each_pass_finds_someone() -> None:
    clock = FakeClock()
    live = set(range(0, 2 * MIN_EVIDENCE, 2))
    late = {2 * k: 2 for k in range(20)} | {2 * k: 3 for k in range(20, 25)}  # lost once, twice
    net = FakeNetwork(clock, live, late=late)
    log = schedule(net, 2 * MIN_EVIDENCE, rate=100_000, retries=5, timeout=1.0)
    assert set(log.first_replies) == live
    silent = MIN_EVIDENCE
    # Pass 1 found 20, pass 2 found 5, pass 3 found nobody: passes 4 and 5 are not made.
    assert log.probes_sent == 2 * MIN_EVIDENCE + (silent + 25) + (silent + 5) + silent
    assert len(log.passes) == 4


def test_every_retry_is_made_when_few_answered() -> None:
    clock = FakeClock()
    live = set(range(MIN_EVIDENCE - 1))
    net = FakeNetwork(clock, live)
    log = schedule(net, MIN_EVIDENCE + 99, rate=100_000, retries=3, timeout=1.0)
    assert log.probes_sent == MIN_EVIDENCE + 99 + 3 * 100


def test_a_target_answering_only_its_second_probe_is_not_probed_a_third_time() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, {3, 4}, answer_from_try=2)
    schedule(net, 10, rate=1_000, retries=3, timeout=0.5)
    assert net.tries[3] == net.tries[4] == 2
    assert net.tries[0] == 4


def test_a_retry_waits_for_the_previous_probe_to_be_answered() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, {0}, rtt=0.030)
    schedule(net, 5, rate=100_000, retries=2, timeout=1.0)
    first: dict[int, float] = {}
    for i, when in net.probes:
        if i in first:
            # RTT_FACTOR times the slowest round trip (0.03 s), and never sooner than the floor
            assert when - first[i] >= max(MIN_RETRY_GAP, RTT_FACTOR * 0.030) - 1e-9
        first[i] = when


def test_waits_timeout_after_the_last_probe() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, set())
    log = schedule(net, 3, rate=1_000, retries=0, timeout=0.75)
    assert log.finished - log.last_probe == pytest.approx(0.75, abs=1e-6)
    assert log.last_probe == max(t for _, t in net.probes)


def test_a_known_round_trip_spares_a_silent_sweep_its_timeouts() -> None:
    """TCP ping after the echo sweep: nobody answers, but the route's round trip is known."""
    clock = FakeClock()
    net = FakeNetwork(clock, set())
    log = schedule(net, 3, rate=1_000, retries=2, timeout=1.0, round_trip=0.004)
    sent = sorted(t for _, t in net.probes)
    assert len(sent) == 9  # every silent target still gets all its probes
    assert sent[3] - sent[0] == pytest.approx(MIN_RETRY_GAP, abs=0.005)  # not the timeout
    assert log.finished - log.last_probe == pytest.approx(MIN_SETTLE, abs=1e-6)
    # Without it the sweep learns nothing and waits the timeout between passes and at the end.
    slow = schedule(FakeNetwork(FakeClock(), set()), 3, rate=1_000, retries=2, timeout=1.0)
    assert slow.finished - slow.first_probe > 3.0


@pytest.mark.parametrize(
    ("rtt", "wait"),
    [
        # counted from the last reply, which came one round trip after the last probe
        (0.002, 0.002 + MIN_SETTLE),  # a LAN: the floor
        (0.1, 0.1 + RTT_FACTOR * 0.1),  # a slow network: RTT_FACTOR slowest round trips
        (0.5, 1.0),  # slower still: never beyond the timeout
    ],
)
def test_the_final_wait_ends_once_replies_have_settled(rtt: float, wait: float) -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, {0, 3}, rtt=rtt)
    log = schedule(net, 5, rate=100_000, retries=0, timeout=1.0)
    assert log.finished - log.last_probe == pytest.approx(wait, abs=0.01)


def test_a_reply_during_the_final_wait_extends_it() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, {0}, rtt=0.001)
    late: list[tuple[int, float]] = []

    def answers() -> list[tuple[int, float]]:
        found = net.answers()
        if found:  # target 0 answers twice, the second time (another MAC) 0.08 s later
            late.append((0, found[0][1] + 0.08))
        due = [(i, t) for i, t in late if t <= clock()]
        late[:] = [(i, t) for i, t in late if t > clock()]
        return found + due

    log = run_schedule(
        1, net.send, answers, rate=1_000, retries=0, timeout=1.0, clock=clock, sleep=clock.sleep
    )
    # Settled MIN_SETTLE after the late reply, not after the probe.
    assert log.finished - log.last_probe == pytest.approx(0.001 + 0.08 + MIN_SETTLE, abs=0.01)


def test_nothing_to_probe_returns_at_once() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, set())
    log = schedule(net, 0, rate=1_000, retries=2, timeout=5.0)
    assert log.probes_sent == 0 and clock.sleeps == []


def test_progress_counts_up_to_the_probes_actually_sent() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, set(range(0, 500, 2)))
    calls: list[tuple[int, int]] = []
    log = schedule(
        net,
        500,
        rate=1_000,
        retries=2,
        timeout=0.2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(calls) > 3
    assert calls[-1] == (log.probes_sent, log.probes_sent)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert all(done <= total for done, total in calls)


def test_probe_before_finds_the_probe_a_reply_answers() -> None:
    clock = FakeClock()
    net = FakeNetwork(clock, set())
    log = schedule(net, 2, rate=1_000, retries=1, timeout=0.1)
    first, second = (t for i, t in net.probes if i == 0)
    assert log.probe_before(0, first + 0.001) == first
    assert log.probe_before(0, second + 0.001) == second
    assert log.probe_before(0, first - 0.001) is None


def test_the_remembered_first_replies_agree_with_the_probes() -> None:
    clock = FakeClock()
    live = set(range(0, 3000, 3))
    net = FakeNetwork(clock, live, rtt=0.004, late={0: 2, 3: 3})
    log = schedule(net, 3000, rate=50_000, retries=2, timeout=1.0)
    assert set(log.first_replies) == live
    for index, (when, probed) in log.first_replies.items():
        sent = [t for i, t in net.probes if i == index]
        assert probed == max(t for t in sent if t <= when)
        assert when - probed == pytest.approx(0.004)
    assert log.first_replies[3][1] == [t for i, t in net.probes if i == 3][2]
