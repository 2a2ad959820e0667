"""Scale labs for the sweep tests, one per test module, and running a sweep inside a lab."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from ipguard.scanners.base import Sweep, SweepResult
from tests.lab.netns import inside
from tests.lab.scale import ScaleLab, lab_unavailable, scale_lab


def _lab(**kwargs: Any) -> Iterator[ScaleLab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with scale_lab(**kwargs) as lab:
        yield lab


@pytest.fixture(scope="module")
def small_lab() -> Iterator[ScaleLab]:
    """A /24 with 100 live hosts on the scanner's link; one duplicate IP, one double answerer."""
    yield from _lab(subnet="198.19.0.0/24", live=100, second_mac=1, repeat=1, seed=7)


@pytest.fixture(scope="module")
def routed_lab() -> Iterator[ScaleLab]:
    """A /24 with 60 live hosts behind a gateway, answering echo with TTL 61."""
    yield from _lab(subnet="198.19.7.0/24", live=60, routed=True, ttl=61, seed=11)


def sweep_in(lab: ScaleLab, sweep: Sweep, targets: Iterable[str]) -> SweepResult:
    """Run a sweep from the lab's scanner namespace."""
    with inside(lab.scanner_ns):
        return sweep.sweep(targets)
