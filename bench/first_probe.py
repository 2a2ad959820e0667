"""Start-up of a scan: seconds from the process's start to its first probe, and what was imported.

`ipguard scan --phases sweep` runs REPEAT times in the small lab's scanner namespace under
tests.firstprobe, which notes, at the first frame sent, the time since the kernel started the
process and the heavy modules already imported (the issue's bound: 0.25 s, nothing heavy).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, Log, Target, ipguard_argv, run_child
from tests.lab import netns

REPEAT = 10
FIRST_PROBE_TARGET = 0.25


def first_probe(log: Log) -> tuple[list[float], list[str], Target]:
    """The seconds to the first probe of each run, the heavy modules any run had loaded, target."""
    from tests.lab.builder import Lab
    from tests.lab.scenarios import small

    seconds: list[float] = []
    heavy: set[str] = set()
    with Lab.build(small()) as lab, tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        work = Path(tmp)
        lab.write_ledger_csv(work / "ledger.csv")
        lab.write_config(work / "ipguard.toml")
        base = ["--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml")]
        run_child(ipguard_argv(*base, "ledger", "import", str(work / "ledger.csv")))
        out = work / "first.json"
        argv = [sys.executable, "-m", "tests.firstprobe", str(out), *base]
        for k in range(REPEAT + 1):  # the first run warms the page cache, untimed
            out.unlink(missing_ok=True)
            child = run_child(
                netns.exec_argv(lab.scanner_ns, [*argv, "scan", "--phases", "sweep", "--quiet"]),
                cwd=REPO,
            )
            if child.returncode not in (0, 1):
                raise SystemExit(f"scan --phases sweep failed: {child.stderr[-500:]}")
            if k:
                found = json.loads(out.read_text())
                seconds.append(found["seconds"])
                heavy.update(found["modules"])
    median = statistics.median(seconds)
    log(f"first probe: median {median:.3f} s after the process started")
    target = Target(
        "`ipguard scan`: first probe after process start",
        f"≤ {FIRST_PROBE_TARGET} s, nothing heavy imported",
        f"{median:.3f} s (median of {REPEAT}); imported by then: "
        + (", ".join(sorted(heavy)) or "nothing heavy"),
        median <= FIRST_PROBE_TARGET and not heavy,
    )
    return seconds, sorted(heavy), target
