"""ARP sweep against the scale responder: completeness, duplicates, retries, refusals."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipguard.errors import InterfaceError, ScopeError
from ipguard.scanners import txring
from ipguard.scanners.arp import ArpSweep
from ipguard.scanners.scope import Scope
from tests.lab import netns
from tests.lab.scale import ScaleLab, lab_unavailable, link_loss, scale_lab
from tests.scanners.conftest import sweep_in, sweep_in_fresh_process

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def test_finds_every_live_host_on_each_of_20_sweeps(small_lab: ScaleLab) -> None:
    scope = Scope([small_lab.subnet])
    sweep = ArpSweep("eth0", scope, rate=10_000, timeout=0.3)
    for _ in range(20):
        result = sweep_in(small_lab, sweep, scope.targets())
        assert result.live == set(small_lab.live)
        assert result.replies_dropped == 0


def test_sweeping_imports_no_scapy(small_lab: ScaleLab) -> None:
    """Frames are built with struct: scapy's seconds of import stay off the first probe's path."""
    swept = sweep_in_fresh_process(small_lab, "arp", "ArpSweep", '"eth0", ')
    assert swept["live"] == sorted(small_lab.live)
    assert swept["scapy"] == []


def test_every_reply_is_an_observation_from_the_hosts_own_mac(small_lab: ScaleLab) -> None:
    scope = Scope([small_lab.subnet])
    result = sweep_in(small_lab, ArpSweep("eth0", scope, rate=10_000, timeout=0.3), scope.targets())
    seen: dict[str, list[str]] = {}
    for o in result.observations:
        assert o.source == "arp" and o.ttl is None and o.vendor is None  # lab MACs are local
        assert o.rtt_ms is not None and 0 <= o.rtt_ms < 300
        assert o.seen_at.tzinfo is not None
        seen.setdefault(o.ip, []).append(o.mac or "")
    (dup,) = small_lab.second_mac
    (twice,) = small_lab.repeat
    for ip in small_lab.live:
        if ip == dup:
            assert sorted(seen[ip]) == [small_lab.mac_for(ip, 0), small_lab.mac_for(ip, 1)]
        elif ip == twice:
            assert seen[ip] == [small_lab.mac_for(ip)] * 2
        else:
            assert seen[ip] == [small_lab.mac_for(ip)]


def test_result_names_the_source_address_and_mac(small_lab: ScaleLab) -> None:
    scope = Scope([small_lab.subnet])
    result = sweep_in(small_lab, ArpSweep("eth0", scope, timeout=0.1), [small_lab.live[0]])
    link = json.loads(small_lab.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]
    assert result.interface == "eth0"
    assert result.source_ip == small_lab.scanner_ip
    assert result.source_mac == link["address"]
    assert result.targets == 1 and result.probes_sent == 1


@pytest.mark.parametrize("retries", [0, 1, 2, 4])
def test_retries_probe_only_silent_addresses(small_lab: ScaleLab, retries: int) -> None:
    scope = Scope([small_lab.subnet])
    targets = scope.targets()
    silent = len(set(targets) - set(small_lab.live))
    before = small_lab.responder_stats()["arp_requests"]
    sweep = ArpSweep("eth0", scope, rate=20_000, retries=retries, timeout=0.3)
    result = sweep_in(small_lab, sweep, targets)
    assert result.probes_sent == len(targets) + retries * silent
    assert small_lab.responder_stats()["arp_requests"] - before == result.probes_sent
    assert result.live == set(small_lab.live)


def test_sends_one_frame_at_a_time_where_the_kernel_refuses_a_tx_ring(
    small_lab: ScaleLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object, **_kwargs: object) -> txring.FrameRing:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    monkeypatch.setattr(txring, "FrameRing", refused)
    scope = Scope([small_lab.subnet])
    targets = scope.targets()
    before = small_lab.responder_stats()["arp_requests"]
    sweep = ArpSweep("eth0", scope, rate=20_000, retries=1, timeout=0.3)
    result = sweep_in(small_lab, sweep, targets)
    assert result.live == set(small_lab.live)
    assert small_lab.responder_stats()["arp_requests"] - before == result.probes_sent


def test_progress_reaches_the_probes_sent(small_lab: ScaleLab) -> None:
    scope = Scope([small_lab.subnet])
    calls: list[tuple[int, int]] = []
    sweep = ArpSweep(
        "eth0", scope, rate=2_000, timeout=0.2, progress=lambda d, t: calls.append((d, t))
    )
    result = sweep_in(small_lab, sweep, scope.targets())
    assert calls[-1] == (result.probes_sent, result.probes_sent)
    assert all(done <= total for done, total in calls)


@pytest.mark.parametrize(
    "targets",
    [["198.19.1.1"], ["198.19.0.5", "198.19.0.6", "198.18.0.1"], ["10.0.0.1"]],
)
def test_out_of_scope_targets_are_refused_before_any_probe(
    small_lab: ScaleLab, targets: list[str]
) -> None:
    before = small_lab.responder_stats()["arp_requests"]
    with pytest.raises(ScopeError, match="outside the subnets ipguard may scan"):
        sweep_in(small_lab, ArpSweep("eth0", Scope([small_lab.subnet])), targets)
    assert small_lab.responder_stats()["arp_requests"] == before


def test_missing_interface(small_lab: ScaleLab) -> None:
    sweep = ArpSweep("nosuch0", Scope([small_lab.subnet]))
    with pytest.raises(InterfaceError, match="nosuch0 does not exist"):
        sweep_in(small_lab, sweep, [small_lab.live[0]])


def wait_for_link(lab: ScaleLab, name: str) -> None:
    """Until the link's operational state is up (the kernel's link watch can take a second)."""
    deadline = time.monotonic() + 10
    while "state UP" not in lab.run(["ip", "-o", "link", "show", name]).stdout:
        assert time.monotonic() < deadline, f"{name} never came up"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ([], "ipgx0 is down"),
        (["ip link set ipgx0 up"], "ipgx0 has no link"),  # its peer is down: no carrier
        (["ip link set ipgx0 up", "ip link set ipgx1 up"], "ipgx0 has no IPv4 address"),
    ],
)
def test_unusable_interface(small_lab: ScaleLab, setup: list[str], message: str) -> None:
    # A veth pair inside the lab's scanner namespace (this kernel has no dummy driver).
    small_lab.run(["ip", "link", "add", "ipgx0", "type", "veth", "peer", "name", "ipgx1"])
    try:
        for command in setup:
            small_lab.run(command.split())
        if len(setup) == 2:  # both ends up: the kernel reports the link up a moment later
            wait_for_link(small_lab, "ipgx0")
        sweep = ArpSweep("ipgx0", Scope([small_lab.subnet]))
        with pytest.raises(InterfaceError, match=message):
            sweep_in(small_lab, sweep, [small_lab.live[0]])
    finally:
        small_lab.run(["ip", "link", "del", "ipgx0"])


PRIVILEGE_PROBE = """
import sys
from ipguard.errors import PrivilegeError
from ipguard.scanners.{module} import {cls}
from ipguard.scanners.scope import Scope
scope = Scope([sys.argv[1]])
sweep = {cls}({args}scope)
try:
    sweep.sweep([sys.argv[2]])
except PrivilegeError as exc:
    print("PrivilegeError:", exc)
    sys.exit(0)
sys.exit(1)
"""


def run_without_capabilities(lab: ScaleLab, module: str, cls: str, args: str) -> str:
    """Run a one-probe sweep in the lab as root stripped of every capability; return its output."""
    code = PRIVILEGE_PROBE.format(module=module, cls=cls, args=args)
    argv = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]
    result = subprocess.run(
        netns.exec_argv(
            lab.scanner_ns, [*argv, sys.executable, "-c", code, lab.subnet, lab.live[0]]
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_privilege_error_without_cap_net_raw(small_lab: ScaleLab) -> None:
    if lab_unavailable("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    out = run_without_capabilities(small_lab, "arp", "ArpSweep", '"eth0", ')
    assert "ARP sweep needs raw sockets: run as root or give the interpreter CAP_NET_RAW" in out


@pytest.mark.slow
@pytest.mark.parametrize("lossy_side", ["scanner", "responder"])
def test_finds_999_permille_of_10000_hosts_in_a_slash_16_under_2_percent_loss(
    lossy_side: str,
) -> None:
    """2 % of replies (scanner side) or of probes (responder side) dropped by nftables."""
    reason = lab_unavailable("nft")
    if reason:
        pytest.skip(reason)
    with scale_lab(subnet="198.19.0.0/16", live=10_000, seed=3) as lab:
        scope = Scope([lab.subnet])
        targets = scope.targets()
        ns = lab.scanner_ns if lossy_side == "scanner" else lab.responder_ns
        with link_loss(ns, 2):
            result = sweep_in(lab, ArpSweep("eth0", scope, rate=20_000), targets)
        found = result.live & set(lab.live)
        assert result.live <= set(lab.live)
        assert len(found) >= 9_990, f"found {len(found)} of 10,000"
        # Retries went to silent addresses only: at most (1 + 2) × silent + live probes.
        silent = len(targets) - len(lab.live)
        assert result.probes_sent <= len(targets) + 2 * silent + 2 * 10_000 * 0.05
