"""Pacing probes to a rate: a token bucket that is refilled from the clock and spent in batches.

One run's phases overlap, yet `[scan] rate` bounds them all together: while a run is under way
(:func:`shared`), every :class:`Pacer` also draws from the run's :class:`Budget`, and a sender that
paces itself (nmap, with `--max-rate`) takes its share out of the budget with
:meth:`Budget.reserve` for as long as it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Sleeping costs tens of microseconds and overshoots by as much, so at high rates the sender sleeps
# about once per millisecond and sends what accrued meanwhile. Tokens saved beyond a few batches are
# forgotten, so that a stall (GC, a busy core) never turns into a burst the network would drop.
BATCH_SECONDS = 0.001
BURST_SECONDS = 0.005
TOKEN_SLACK = 1e-6


class Pacer:
    """Hands out permission to send at `rate` packets per second, a batch at a time.

    Deadlines come from the clock, not from summed sleeps, so the long-run rate stays exact even
    at 100,000 packets per second where a single sleep is longer than a packet's share of time.

    >>> pacer = Pacer(50_000)
    >>> n = pacer.acquire(1_000)   # blocks until at least a batch is due; 1 <= n <= 1_000
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: Budget | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        # The run's budget, when one is being shared (see `shared`): drawn from after this pacer.
        self.budget = budget if budget is not None else _current
        self._clock = clock
        self._sleep = sleep
        self._batch = max(1.0, self.rate * BATCH_SECONDS)
        self._cap = max(self._batch * 2, self.rate * BURST_SECONDS)
        self._tokens = 1.0  # the first probe goes out at once
        self._last = clock()

    def acquire(self, want: int) -> int:
        """Wait until a batch is due, then take up to `want` packets' worth (at least one)."""
        if want <= 0:
            return 0
        goal = min(self._batch, float(want))
        while True:
            now = self._clock()
            self._tokens = min(self._cap, self._tokens + (now - self._last) * self.rate)
            self._last = now
            # The slack absorbs float rounding: 0.9999999 tokens are one token.
            if self._tokens + TOKEN_SLACK >= goal:
                taken = min(want, int(self._tokens + TOKEN_SLACK))
                self._tokens -= taken
                break
            self._sleep((goal - self._tokens) / self.rate)
        if self.budget is None:
            return taken
        granted = self.budget.acquire(taken)
        self._tokens += taken - granted
        return granted

    def refund(self, unused: int) -> None:
        """Give back packets' worth that were acquired but not sent."""
        self._tokens = min(self._cap, self._tokens + unused)
        if self.budget is not None:
            self.budget.refund(unused)


class Budget:
    """One run's probe rate, shared by every sender of every phase (thread-safe).

    Pacers draw from it (each keeps its own rate too); `reserve` sets part of the rate aside for a
    sender that paces itself, such as nmap with `--max-rate`, so that the rates add up to `rate`.

    >>> with shared(2000) as budget:
    ...     with budget.reserve(1500) as nmap_rate:   # the pacers share the other 500 a second
    ...         pass
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._reserved = 0.0
        self._cap = max(2.0, self.rate * BURST_SECONDS)
        self._tokens = 1.0
        self._last = clock()
        # Set at the first grant: the first probe of the run is about to leave.
        self.first_grant = threading.Event()

    def _refill(self) -> float:
        """Tokens accrued since the last look, at the rate left after reservations (lock held)."""
        now = self._clock()
        free = self.rate - self._reserved
        self._tokens = min(self._cap, self._tokens + (now - self._last) * free)
        self._last = now
        return free

    def acquire(self, want: int) -> int:
        """Wait until at least one packet's worth is free, then take up to `want`."""
        if want <= 0:
            return 0
        while True:
            with self._lock:
                free = self._refill()
                if self._tokens + TOKEN_SLACK >= 1.0:
                    taken = min(want, int(self._tokens + TOKEN_SLACK))
                    self._tokens -= taken
                    self.first_grant.set()
                    return taken
                wait = (1.0 - self._tokens) / free if free > 0 else BATCH_SECONDS
            self._sleep(max(wait, BATCH_SECONDS / 10))

    def refund(self, unused: int) -> None:
        """Give back packets' worth that were acquired but not sent."""
        with self._lock:
            self._refill()
            self._tokens = min(self._cap, self._tokens + unused)

    @contextmanager
    def reserve(self, wanted: float, *, keep: float = 0.0) -> Iterator[float]:
        """Set aside up to `wanted` packets a second, leaving at least `keep` to the pacers.

        Yields the rate granted (at least 1): the self-pacing sender must stay below it.
        """
        with self._lock:
            self._refill()
            granted = max(1.0, min(wanted, self.rate - self._reserved - keep))
            self._reserved += granted
        try:
            yield granted
        finally:
            with self._lock:
                self._refill()
                self._reserved -= granted


_current: Budget | None = None


def current() -> Budget | None:
    """The budget being shared now (inside `shared`), if any."""
    return _current


@contextmanager
def shared(rate: float | Budget) -> Iterator[Budget]:
    """While inside, every new Pacer also draws from one Budget (of `rate` packets a second)."""
    global _current
    outer, _current = _current, rate if isinstance(rate, Budget) else Budget(rate)
    try:
        yield _current
    finally:
        _current = outer
