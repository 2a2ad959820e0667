"""The pacer: the long-run rate is exact, sleeps come in batches, stalls do not become bursts."""

from __future__ import annotations

import pytest

from ipguard.scanners.pacing import Pacer
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
