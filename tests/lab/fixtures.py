"""pytest fixtures for lab tests: ``lab_factory`` (any scenario) and ``demo_lab`` (shared demo).

Registered by ``tests/conftest.py`` with ``pytest_plugins = ["tests.lab.fixtures"]``. Tests that
need the lab and run without root or without a tool skip with the reason::

    @requires_lab("nmap")
    def test_sees_rogue_dhcp(demo_lab): ...

``demo_lab`` is shared by a whole module: do not change it (move/stop/remove); build your own with
``lab_factory(demo())`` for that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from tests.lab.builder import Lab
from tests.lab.scenario import Scenario
from tests.lab.scenarios import demo

LAB_TOOLS = ("ip", "nft", "sysctl", "dnsmasq", "tinyproxy", "socat")

LabFactory = Callable[..., Lab]


def lab_unavailable(*tools: str) -> str | None:
    """Why lab tests cannot run here (no root, a missing tool), or None when they can."""
    if os.geteuid() != 0:
        return "the lab network needs root (network namespaces, veth, nftables)"
    missing = [tool for tool in (*LAB_TOOLS, *tools) if shutil.which(tool) is None]
    if missing:
        return f"the lab network needs {', '.join(missing)} (apt-get install it)"
    return None


def requires_lab(*tools: str) -> pytest.MarkDecorator:
    """Mark: skip unless running as root with the lab's tools plus ``tools`` installed."""
    reason = lab_unavailable(*tools)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def _skip_if_unavailable() -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    """Build labs from scenarios (``lab_factory(small())``); all are torn down afterwards."""
    _skip_if_unavailable()
    with contextlib.ExitStack() as labs:  # tears every lab down even if one teardown fails

        def build(scenario: Scenario, *, run_id: str | None = None) -> Lab:
            return labs.enter_context(Lab.build(scenario, run_id=run_id))

        yield build


@pytest.fixture(scope="module")
def demo_lab() -> Iterator[Lab]:
    """The demo scenario, built once per test module and shared read-only by its tests."""
    _skip_if_unavailable()
    with Lab.build(demo()) as lab:
        yield lab
