"""Scale labs for the sweep tests, one per test module, and running a sweep inside a lab."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipguard.scanners.base import SweepResult
from ipguard.scanners.sweep import Sweep
from tests.lab import netns
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


NO_SCAPY_PROBE = """
import json, sys, time
started = time.monotonic()
from ipguard.scanners.{module} import {cls}
from ipguard.scanners.scope import Scope
scope = Scope([sys.argv[1]])
result = {cls}({args}scope, timeout=0.3).sweep(scope.targets())
print(json.dumps({{
    "live": sorted(result.live),
    "scapy": sorted(name for name in sys.modules if name.split(".")[0] == "scapy"),
}}))
"""


def sweep_in_fresh_process(lab: ScaleLab, module: str, cls: str, args: str) -> dict[str, Any]:
    """Sweep the lab's subnet from a new interpreter in its scanner namespace: what it saw and
    which scapy modules it imported on the way."""
    code = NO_SCAPY_PROBE.format(module=module, cls=cls, args=args)
    result = subprocess.run(
        netns.exec_argv(lab.scanner_ns, [sys.executable, "-c", code, lab.subnet]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found
