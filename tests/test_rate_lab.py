"""One pacing budget for every phase: a whole scan never sends more than `rate` probes a second.

The probes are counted where they enter the lab's bridge (the scanner's port, in the switch
namespace), over every one-second window of a full scan whose phases overlap: the sweep with the
DHCP probe, names with nmap's open-port pass, nmap's version probes with the proxy and evidence
phases.
"""

from __future__ import annotations

import bisect
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import small

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
REPO = Path(__file__).resolve().parents[1]
RATE = 400
# A token bucket may run a few milliseconds ahead, and nmap paces on its own clock: a window may
# hold a little more than RATE, never anything like the sum of the phases' rates.
SLACK = 1.1


@requires_lab("nmap")
@pytest.mark.lab
def test_the_probes_of_all_phases_together_stay_within_the_rate(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = lab_factory(small())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    base = [
        IPGUARD,
        "--db",
        str(tmp_path / "ledger.db"),
        "--config",
        str(tmp_path / "ipguard.toml"),
    ]
    imported = subprocess.run(
        [*base, "ledger", "import", str(tmp_path / "ledger.csv")], capture_output=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    out = tmp_path / "frames.json"
    sniffer = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.switch_ns,
            sys.executable,
            "-m",
            "tests.hardening.framerate",
            str(out),
            "p0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        scan = subprocess.run(
            ["ip", "netns", "exec", lab.scanner_ns, *base, "scan", "--rate", str(RATE), "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        sniffer.send_signal(signal.SIGTERM)
        sniffer.wait(timeout=30)
    assert scan.returncode in (0, 1), scan.stderr
    frames = json.loads(out.read_text())["frames"]
    times = sorted(when for when, _kind in frames)
    kinds = Counter(kind for _when, kind in frames)
    # The scan did send at the limit for seconds: the /24 sweep, 3 hosts x 1,028 ports of SYNs.
    assert kinds["arp"] >= 253 and kinds["tcp-syn"] >= 3 * 1028, kinds
    busiest = max(bisect.bisect_left(times, start + 1.0) - k for k, start in enumerate(times))
    assert busiest <= RATE * SLACK, (busiest, kinds)
