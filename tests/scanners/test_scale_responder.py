"""The scale responder stands in for a whole /16: arp-scan, a peer tool, sees every address."""

from __future__ import annotations

import shutil
import time

import pytest


@pytest.mark.skipif(shutil.which("arp-scan") is None, reason="arp-scan is not installed")
def test_arp_scan_sees_every_address_of_a_fully_live_slash_16(scale_lab_factory) -> None:
    lab = scale_lab_factory(subnet="198.19.0.0/16", live=65_533)
    started = time.monotonic()
    done = lab.run(["arp-scan", "-I", lab.interface, "-q", "-x", "--bandwidth=1000M", lab.subnet])
    took = time.monotonic() - started
    answered = [line.split("\t")[0] for line in done.stdout.splitlines() if line.strip()]
    assert len(answered) == len(set(answered)) == 65_533  # one reply each: nothing lost or doubled
    assert set(answered) == set(lab.live)
    print(f"arp-scan saw all {len(answered)} addresses in {took:.1f} s")
