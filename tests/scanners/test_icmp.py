"""ICMP echo sweep against the routed scale lab: completeness, TTL, refusals."""

from __future__ import annotations

import pytest

from ipguard.errors import ScopeError
from ipguard.scanners.icmp import IcmpSweep
from ipguard.scanners.scope import Scope
from tests.lab.scale import ScaleLab, lab_unavailable
from tests.scanners.conftest import sweep_in, sweep_in_fresh_process
from tests.scanners.test_arp import run_without_capabilities

pytestmark = pytest.mark.lab


def test_finds_every_live_host_and_records_its_ttl(routed_lab: ScaleLab) -> None:
    scope = Scope([routed_lab.subnet])
    result = sweep_in(routed_lab, IcmpSweep(scope, rate=10_000, timeout=0.3), scope.targets())
    assert result.live == set(routed_lab.live)
    assert len(result.observations) == len(routed_lab.live)
    for o in result.observations:
        assert o.source == "icmp" and o.mac is None
        assert o.ttl == 61
        assert o.rtt_ms is not None and o.rtt_ms >= 0
    assert result.source_ip == routed_lab.scanner_ip
    assert result.replies_dropped == 0 and result.replies_ignored == {}


def test_sweeping_imports_no_scapy(routed_lab: ScaleLab) -> None:
    """The echo request is built with struct: no scapy import on the way to the first probe."""
    swept = sweep_in_fresh_process(routed_lab, "icmp", "IcmpSweep", "")
    assert swept["live"] == sorted(routed_lab.live)
    assert swept["scapy"] == []


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_probe_only_silent_addresses(routed_lab: ScaleLab, retries: int) -> None:
    scope = Scope([routed_lab.subnet])
    targets = scope.targets()
    before = routed_lab.responder_stats()["icmp_requests"]
    sweep = IcmpSweep(scope, rate=10_000, retries=retries, timeout=0.3)
    result = sweep_in(routed_lab, sweep, targets)
    silent = len(targets) - len(routed_lab.live)
    assert result.probes_sent == len(targets) + retries * silent
    assert routed_lab.responder_stats()["icmp_requests"] - before == result.probes_sent


def test_out_of_scope_targets_are_refused_before_any_probe(routed_lab: ScaleLab) -> None:
    before = routed_lab.responder_stats()["icmp_requests"]
    with pytest.raises(ScopeError):
        sweep_in(routed_lab, IcmpSweep(Scope([routed_lab.subnet])), ["198.19.8.1"])
    assert routed_lab.responder_stats()["icmp_requests"] == before


def test_privilege_error_without_cap_net_raw(routed_lab: ScaleLab) -> None:
    if lab_unavailable("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    out = run_without_capabilities(routed_lab, "icmp", "IcmpSweep", "")
    assert "ICMP sweep needs raw sockets: run as root or give the interpreter CAP_NET_RAW" in out
