"""The pacer: the long-run rate is exact, sleeps come in batches, stalls do not become bursts."""

from __future__ import annotations

import pytest

from ipguard.scanners.pacing import Budget, Pacer, current, shared
from tests.scanners.fakeclock import FakeClock


@pytest.mark.parametrize("rate", [100, 2_000, 50_000, 100_000])
def test_long_run_rate_is_exact(rate: int) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, clock=clock, sleep=clock.sleep)
    start, sent = clock(), 0
    while sent < rate * 3:
        sent += pacer.acquire(rate * 3 - sent)
        clock.advance(0.00001)  # sending a batch is not free
    assert sent == rate * 3
    assert clock() - start == pytest.approx(3.0, rel=0.01)


def test_high_rates_sleep_once_per_batch_not_once_per_packet() -> None:
    clock = FakeClock()
    pacer = Pacer(100_000, clock=clock, sleep=clock.sleep)
    sent = 0
    while sent < 100_000:
        sent += pacer.acquire(100_000 - sent)
    assert len(clock.sleeps) <= 1_100  # about one per millisecond
    assert min(clock.sleeps) > 0.0005


def test_a_stall_is_not_made_up_by_a_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(10_000, clock=clock, sleep=clock.sleep)
    pacer.acquire(10)
    clock.advance(2.0)  # the process was descheduled for two seconds
    assert pacer.acquire(100_000) <= 10_000 * 0.005 + 1


def test_never_more_than_asked_and_refund_returns_tokens() -> None:
    clock = FakeClock()
    pacer = Pacer(1_000, clock=clock, sleep=clock.sleep)
    assert pacer.acquire(1) == 1
    clock.advance(0.004)
    assert pacer.acquire(2) == 2
    pacer.refund(2)
    assert pacer.acquire(100) >= 3
    assert pacer.acquire(0) == 0


@pytest.mark.parametrize("rate", [0, -5])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate)


def test_pacers_drawing_from_one_budget_share_its_rate() -> None:
    # Two senders at 1,000 a second each, one budget of 1,000: together they send 1,000 a second.
    clock = FakeClock()
    budget = Budget(1_000, clock=clock, sleep=clock.sleep)
    first = Pacer(1_000, clock=clock, sleep=clock.sleep, budget=budget)
    second = Pacer(1_000, clock=clock, sleep=clock.sleep, budget=budget)
    start, sent = clock(), 0
    while sent < 3_000:
        sent += first.acquire(10) + second.acquire(10)
    assert clock() - start == pytest.approx(3.0, rel=0.02)


def test_a_reservation_leaves_the_pacers_the_rest() -> None:
    clock = FakeClock()
    budget = Budget(1_000, clock=clock, sleep=clock.sleep)
    pacer = Pacer(1_000, clock=clock, sleep=clock.sleep, budget=budget)
    with budget.reserve(900, keep=100) as granted:
        assert granted == 900
        start, sent = clock(), 0
        while sent < 300:
            sent += pacer.acquire(300 - sent)
        assert clock() - start == pytest.approx(3.0, rel=0.02)  # 100 a second left to it
    with budget.reserve(5_000, keep=250) as granted:
        assert granted == 750  # never more than the budget minus what the others keep


def test_pacers_made_inside_shared_draw_from_it_and_not_after() -> None:
    with shared(500) as budget:
        assert current() is budget
        assert Pacer(100_000).budget is budget
    assert current() is None and Pacer(100_000).budget is None


def test_the_budget_tells_when_its_first_probe_is_granted() -> None:
    clock = FakeClock()
    budget = Budget(1_000, clock=clock, sleep=clock.sleep)
    assert not budget.first_grant.is_set()
    assert budget.acquire(0) == 0 and not budget.first_grant.is_set()
    assert budget.acquire(1) == 1 and budget.first_grant.is_set()
