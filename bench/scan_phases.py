"""Section 4: a full `ipguard scan` of the demo lab, phase by phase, then an incremental one.

    python -m bench --only scan

The demo lab (tests.lab.scenarios.demo) is built, its ledger imported and its configuration written
as `make demo` does; `ipguard scan` runs inside the lab's scanner namespace, twice: the first scan
probes every live host's services, the second only those that changed since (the incremental
service phase). Then `ipguard scan --no-services`. Phases overlap, so each phase is shown as its
start and end in seconds from the run's start (`ipguard runs show ID --format json`), and the run's
wall time is its critical path.

The scans run as `make demo` runs them, at the demo lab configuration's rate (tests.lab.scenarios
DEMO_RATE, 20,000 a second): one pacing budget covers every phase, nmap included, and the first
service scan's open-port pass alone is some 35,000 SYNs (34 live hosts x 1,028 ports), which at
ipguard's default 2,000 a second would take 18 s by itself.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ChildRun, Log, Section, Target, ipguard_argv, run_child, table
from tests.lab import netns
from tests.lab.scenarios import DEMO_RATE

PHASES = (
    "dhcp",
    "sweep",
    "names",
    "services",
    "versions",
    "proxy",
    "evidence",
    "late-proxies",
    "late-titles",
)
AFTER = ("storage", "policies")
SCAN_LIMIT = 900.0
FIRST_TARGET = 15.0
NO_SERVICES_SLACK = 0.5


def _ipguard(work: Path, *args: str, ns: str | None = None) -> ChildRun:
    argv = ipguard_argv(
        "--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml"), *args
    )
    child = run_child(netns.exec_argv(ns, argv) if ns else argv, timeout=SCAN_LIMIT)
    if child.returncode not in (0, 1):  # 1: findings at or above fail_on, as the lab plants
        raise SystemExit(f"ipguard {' '.join(args)} failed: {child.stderr.strip()[-800:]}")
    return child


def _scan(work: Path, ns: str, *extra: str) -> dict[str, Any]:
    scan = _ipguard(work, "scan", "--format", "json", *extra, ns=ns)
    document = json.loads(scan.stdout)
    run_id = document["run"]["id"]
    shown = json.loads(_ipguard(work, "runs", "show", str(run_id), "--format", "json").stdout)
    counts = shown.get("counts") or {}
    found = sorted([f["kind"], f["ip"], f["mac"], f["port"]] for f in document.get("findings", []))
    return {
        "run": run_id,
        "wall": scan.wall,
        "cpu": scan.cpu,
        "maxrss_mb": scan.maxrss_mb,
        "timings": shown.get("timings") or {},
        "service_mode": counts.get("service_mode", ""),
        "rescanned": counts.get("services_rescanned"),
        "findings": found,
    }


def _expected(lab: Any) -> list[list[str | None]]:
    return sorted(
        [kind, ip, mac, f"tcp/{port}" if port is not None else None]
        for kind, ip, mac, port in lab.expected_findings()
    )


def scan_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section 4: `runs` rounds of (first scan, second scan, --no-services), on fresh ledgers."""
    from tests.lab.builder import Lab
    from tests.lab.scenarios import demo

    rounds: list[list[dict[str, Any]]] = []
    with Lab.build(demo()) as lab:
        expected = _expected(lab)
        for k in range(runs):
            with tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
                work = Path(tmp)
                lab.write_ledger_csv(work / "ledger.csv")
                lab.write_config(work / "ipguard.toml")
                _ipguard(work, "ledger", "import", str(work / "ledger.csv"))
                scans = [
                    _scan(work, lab.scanner_ns),
                    _scan(work, lab.scanner_ns),
                    _scan(work, lab.scanner_ns, "--no-services"),
                ]
                for scan in scans[:2]:
                    scan["planted"] = scan["findings"] == expected
                log(
                    f"scan round {k + 1}: first {scans[0]['wall']:.1f} s, second "
                    f"{scans[1]['wall']:.1f} s, --no-services {scans[2]['wall']:.1f} s"
                )
                rounds.append(scans)
    return _section(rounds)


def _median(rounds: list[list[dict[str, Any]]], which: int, phase: str, key: str) -> float | None:
    values = [r[which]["timings"].get(phase, {}).get(key) for r in rounds]
    present = [v for v in values if isinstance(v, int | float)]
    return statistics.median(present) if present else None


def _span(rounds: list[list[dict[str, Any]]], which: int, phase: str) -> str:
    start, end = _median(rounds, which, phase, "start"), _median(rounds, which, phase, "end")
    if start is None or end is None:
        seconds = _median(rounds, which, phase, "seconds")
        return "—" if seconds is None else f"{seconds:.2f} s"
    return f"{start:.2f} → {end:.2f} ({end - start:.2f})"


def _longest(scan: dict[str, Any]) -> float:
    """The longest single phase of a run (its critical path is at least that)."""
    return max(
        (float(t.get("seconds") or 0.0) for name, t in scan["timings"].items() if name in PHASES),
        default=0.0,
    )


def _section(rounds: list[list[dict[str, Any]]]) -> Section:
    names = [*PHASES, *AFTER]
    body = [[name, *(_span(rounds, which, name) for which in range(3))] for name in names]
    total = [
        statistics.median(
            float(r[which]["timings"].get("total", {}).get("seconds") or 0.0) for r in rounds
        )
        for which in range(3)
    ]
    body.append(["run total (critical path)", *(f"{value:.2f} s" for value in total)])
    walls = [statistics.median(r[which]["wall"] for r in rounds) for which in range(3)]
    body.append(["`ipguard scan` command, wall", *(f"{value:.2f} s" for value in walls)])
    cpus = [statistics.median(r[which]["cpu"] for r in rounds) for which in range(3)]
    body.append(["`ipguard scan` command, CPU", *(f"{value:.2f} s" for value in cpus)])
    rss = [max(r[which]["maxrss_mb"] for r in rounds) for which in range(3)]
    body.append(["peak RSS MB", *(f"{value:.0f}" for value in rss)])
    no_services = [r[2] for r in rounds]
    slack = statistics.median(s["wall"] - _longest(s) for s in no_services)
    longest = statistics.median(_longest(s) for s in no_services)
    planted = all(r[0]["planted"] and r[1]["planted"] for r in rounds)
    targets = [
        Target(
            "first full demo scan (command wall)",
            f"≤ {FIRST_TARGET:.0f} s, exactly the planted findings",
            f"{walls[0]:.2f} s; planted findings {'exact' if planted else 'DIFFER'}",
            walls[0] <= FIRST_TARGET and planted,
        ),
        Target(
            "second (incremental) demo scan",
            "faster than the first",
            f"{walls[1]:.2f} s vs {walls[0]:.2f} s",
            walls[1] < walls[0],
        ),
        Target(
            "`scan --no-services` of the demo lab (command wall)",
            f"≤ longest phase + {NO_SERVICES_SLACK} s",
            f"{walls[2]:.2f} s, longest phase {longest:.2f} s (+{slack:.2f} s)",
            slack <= NO_SERVICES_SLACK,
        ),
    ]
    first, second = rounds[-1][0], rounds[-1][1]
    text = "\n\n".join(
        [
            table(
                [
                    "phase: start → end (seconds), median",
                    "first scan",
                    "second scan",
                    "--no-services",
                ],
                body,
                "lrrr",
            ),
            f"{len(rounds)} round(s), each on a fresh ledger, at the demo configuration's "
            f"`rate = {DEMO_RATE}` (a lab of virtual links; ipguard's default is 2,000; one budget "
            "for every phase, nmap included). Service phase: "
            f"{first['service_mode'] or 'n/a'} on the first scan, "
            f"{second['service_mode'] or 'n/a'} on the second ({second['rescanned']} host(s) "
            "version-probed again). `services` is nmap's open-port pass; `versions` names the "
            "software behind each open port, one nmap per port within its budget, alongside "
            "proxy and evidence. The command's wall time adds start-up, the lock and the output.",
        ]
    )
    return Section(
        name="scan",
        title="4. A full `ipguard scan` of the demo lab, phase by phase",
        markdown=text,
        targets=targets,
        data={"rounds": rounds},
    )
