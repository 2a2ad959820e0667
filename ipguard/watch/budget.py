"""How much work a flood of made-up stations may cause the watcher: a token bucket per kind."""

from __future__ import annotations

# Each station judged may be one more finding in the ledger (and a line in the journal): a LAN
# with an empty ledger has its first 2,000 newcomers at once, the rest as they speak again; a
# flood of made-up stations opens 7,200 an hour at most, not 200 a second (720,000).
NEW_HOSTS_PER_SECOND = 2.0
NEW_HOSTS_BURST = 2_000.0


class Budget:
    """`rate` takings a second, at most `burst` at once (a token bucket on monotonic seconds).

    Example::

        budget = Budget()
        budget.take(0.0)   # True, until `burst` were taken within the same second
    """

    def __init__(self, rate: float = NEW_HOSTS_PER_SECOND, burst: float = NEW_HOSTS_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, 0.0

    def take(self, moment: float) -> bool:
        """Take one at `moment`; False when the budget is spent (nothing is taken then)."""
        refill = (moment - self._at) * self.rate
        self._tokens = min(self.burst, self._tokens + max(0.0, refill))
        self._at = moment
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
