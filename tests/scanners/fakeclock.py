"""A clock that moves only when someone sleeps: pacing and scheduling tested without waiting."""

from __future__ import annotations


class FakeClock:
    """`clock()` and `sleep(seconds)` for code that takes both as parameters."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, "negative sleep"
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Time passing while the code works (sending costs time too)."""
        self.now += seconds
