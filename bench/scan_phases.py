"""Section 4: a full `ipguard scan` of the demo lab, phase by phase, then an incremental one.

    python -m bench --only scan

The demo lab (tests.lab.scenarios.demo) is built, its ledger imported and its configuration written
as `make demo` does; `ipguard scan` runs inside the lab's scanner namespace, twice: the first scan
probes every live host's services, the second only those that changed since (the incremental
service phase). Each run's per-phase timings come from `ipguard runs show ID --format json`.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ChildRun, Log, Section, ipguard_argv, run_child, table
from tests.lab import netns

PHASES = ("sweep", "services", "proxy", "dhcp", "names", "evidence", "storage", "policies")
SCAN_LIMIT = 900.0


def _ipguard(work: Path, *args: str, ns: str | None = None) -> ChildRun:
    argv = ipguard_argv(
        "--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml"), *args
    )
    child = run_child(netns.exec_argv(ns, argv) if ns else argv, timeout=SCAN_LIMIT)
    if child.returncode not in (0, 1):  # 1: findings at or above fail_on, as the lab plants
        raise SystemExit(f"ipguard {' '.join(args)} failed: {child.stderr.strip()[-800:]}")
    return child


def _scan(work: Path, ns: str) -> dict[str, Any]:
    scan = _ipguard(work, "scan", "--format", "json", ns=ns)
    run_id = json.loads(scan.stdout)["run"]["id"]
    shown = json.loads(_ipguard(work, "runs", "show", str(run_id), "--format", "json").stdout)
    counts = shown.get("counts") or {}
    return {
        "run": run_id,
        "wall": scan.wall,
        "cpu": scan.cpu,
        "maxrss_mb": scan.maxrss_mb,
        "timings": counts.get("timings", {}),
        "service_mode": counts.get("service_mode", ""),
        "rescanned": counts.get("services_rescanned"),
        "hosts": (shown.get("hosts_seen") or counts.get("hosts_seen")),
    }


def scan_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section 4: `runs` pairs of (first scan, second scan), each pair on a fresh ledger."""
    from tests.lab.builder import Lab
    from tests.lab.scenarios import demo

    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with Lab.build(demo()) as lab:
        for k in range(runs):
            with tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
                work = Path(tmp)
                lab.write_ledger_csv(work / "ledger.csv")
                lab.write_config(work / "ipguard.toml")
                _ipguard(work, "ledger", "import", str(work / "ledger.csv"))
                first = _scan(work, lab.scanner_ns)
                second = _scan(work, lab.scanner_ns)
                log(f"scan pair {k + 1}: {first['wall']:.1f} s then {second['wall']:.1f} s")
                pairs.append((first, second))

    def median(which: int, key: str) -> float:
        values = [pair[which]["timings"].get(key) for pair in pairs]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else float("nan")

    names = list(PHASES) + sorted(
        {k for pair in pairs for s in pair for k in s["timings"]} - {*PHASES, "total"}
    )
    body = [
        [name, f"{median(0, name):.3f}", f"{median(1, name):.3f}"] for name in [*names, "total"]
    ]
    body.append(
        [
            "`ipguard scan` command, wall",
            f"{statistics.median(p[0]['wall'] for p in pairs):.2f}",
            f"{statistics.median(p[1]['wall'] for p in pairs):.2f}",
        ]
    )
    body.append(
        [
            "`ipguard scan` command, CPU",
            f"{statistics.median(p[0]['cpu'] for p in pairs):.2f}",
            f"{statistics.median(p[1]['cpu'] for p in pairs):.2f}",
        ]
    )
    body.append(
        [
            "peak RSS MB",
            f"{max(p[0]['maxrss_mb'] for p in pairs):.0f}",
            f"{max(p[1]['maxrss_mb'] for p in pairs):.0f}",
        ]
    )
    first, second = pairs[-1]
    text = "\n\n".join(
        [
            table(["phase (s, median)", "first scan", "second scan"], body, "lrr"),
            f"{len(pairs)} pair(s) of scans, each pair on a fresh ledger. Service phase: "
            f"{first['service_mode'] or 'n/a'} on the first scan, "
            f"{second['service_mode'] or 'n/a'} on the second ({second['rescanned']} host(s) "
            "version-probed again). `total` is the "
            "run from start to stored findings; the command's wall time adds start-up, the lock "
            "and the output. The lab's configuration (tests.lab.files) sweeps at 2,000 probes/s "
            "with one retry.",
        ]
    )
    return Section(
        name="scan",
        title="4. A full `ipguard scan` of the demo lab, phase by phase",
        markdown=text,
        data={"pairs": [list(pair) for pair in pairs]},
    )
