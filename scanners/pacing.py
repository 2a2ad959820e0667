"""Pacing probes to a rate: a token bucket that is refilled from the clock and spent in batches."""

from __future__ import annotations

import time
from collections.abc import Callable

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
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
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
                return taken
            self._sleep((goal - self._tokens) / self.rate)

    def refund(self, unused: int) -> None:
        """Give back packets' worth that were acquired but not sent."""
        self._tokens = min(self._cap, self._tokens + unused)
