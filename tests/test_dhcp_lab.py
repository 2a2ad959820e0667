"""Every kind of DHCP server at its defaults, on one link: each a rogue-dhcp in every scan.

The lab (:mod:`tests.lab.dhcp_lab`) holds the authorised dnsmasq plus five rogues: two dnsmasq at
their defaults (they ping before offering, ~3 s), ISC Kea, a dnsmasq that answers after 4 s and a
server that unicasts its OFFER to the client's MAC. One lab serves the module.

The scans run back to back, so the late dnsmasq (single-threaded) is often still busy with the
previous scan's retransmitted DISCOVER when the next one arrives, and answers a second or more
later than its 4 s: each scan listens longer for the slow server the one before heard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipguard.scanners.dhcp import DhcpProbe, listen_window
from ipguard.scanners.scope import Scope
from tests.lab.builder import Lab
from tests.lab.dhcp_lab import VARIANTS, dhcp_servers
from tests.lab.fixtures import lab_unavailable
from tests.lab.netns import inside
from tests.test_scan_lab import ipguard

pytestmark = pytest.mark.lab
SLOW = "physics-pc43"  # --dhcp-reply-delay=4
UNICAST = "chem-pc44"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable("kea-dhcp4", "dhcpd")
    if reason:
        pytest.skip(reason)
    with Lab.build(dhcp_servers()) as built:
        yield built


@pytest.fixture(autouse=True)
def settled(lab: Lab) -> Iterator[None]:
    """Each test meets idle servers: the late dnsmasq may still be answering the DISCOVER a test
    before retransmitted (4 s after reading it), so the next test waits until that is over."""
    remaining = SETTLE - (time.monotonic() - _last_end[0])
    if remaining > 0:
        time.sleep(remaining)
    try:
        yield
    finally:
        _last_end[0] = time.monotonic()


SETTLE = 6.0  # seconds: the late dnsmasq's 4 s, from a retransmission in the window's last second
_last_end = [float("-inf")]


def test_the_probe_hears_every_server_and_how_long_each_took(lab: Lab) -> None:
    with pytest.raises(RuntimeError, match="start the DHCP probe"):
        DhcpProbe("eth0", Scope([lab.subnet])).finish()
    probe = DhcpProbe("eth0", Scope([lab.subnet]))
    with inside(lab.scanner_ns):
        probe.start()  # a scan starts it first and goes on with its sweep meanwhile
    assert probe.sent == [0.0]  # started: the first DISCOVER is out, the rest of the window ahead
    with pytest.raises(RuntimeError, match="already started"):
        probe.start()
    offers = probe.finish()
    by_server = {o.server_mac: o for o in reversed(offers)}  # each server's first offer
    servers = {lab.host(name).mac for name in (*VARIANTS, "office-srv01")}
    assert set(by_server) == servers
    unicast = by_server[lab.host(UNICAST).mac]  # sent to our client MAC, never broadcast
    assert unicast.server_ip == lab.host(UNICAST).ip and unicast.offered_ip.startswith("198.18.0.2")
    slow = by_server[lab.host(SLOW).mac].latency
    assert slow is not None and 3.5 <= slow < probe.wait, slow
    assert all(o.latency is not None and 0 <= o.latency < probe.wait for o in offers)
    assert len(probe.sent) >= 2 and max(probe.sent) < probe.wait  # retransmitted in the window


def test_three_consecutive_scans_each_report_every_rogue_server(lab: Lab, tmp_path: Path) -> None:
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    imported = ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv"))
    assert imported.returncode == 0, imported.stderr
    rogues = {lab.host(name).ip for name in VARIANTS}
    slowest: float | None = None  # the slowest rogue's first offer in the scan before
    for scan in range(1, 4):
        done = ipguard(lab, tmp_path, "scan", "--no-services", "--format", "json", in_lab=True)
        assert done.returncode == 1, done.stderr
        findings = json.loads(done.stdout)["findings"]
        dhcp = {f["ip"]: f for f in findings if f["kind"] == "rogue-dhcp"}
        assert set(dhcp) == rogues, f"scan {scan}: {sorted(dhcp)}"
        found = {(f["kind"], f["ip"], f["mac"]) for f in findings}
        assert found == {(k, ip, mac) for k, ip, mac, _port in lab.expected_findings()}
        # The probe listened half a window beyond the slowest server of the scan before.
        shown = ipguard(lab, tmp_path, "runs", "show", str(scan), "--format", "json")
        listened = json.loads(shown.stdout)["timings"]["dhcp"]["seconds"]
        window = listen_window(6.0, slowest)
        assert window <= listened < window + 1.0, (scan, slowest, listened)
        for finding in dhcp.values():
            latencies = finding["detail"]["seconds_to_offer"]
            assert latencies and all(0 <= s < window for s in latencies), finding
            assert f"after {latencies[0]:.1f} s" in finding["summary"]
        slowest = max(f["detail"]["seconds_to_offer"][0] for f in dhcp.values())
    assert slowest > 3.5  # the late dnsmasq: each scan after the first listened longer
