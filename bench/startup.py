"""Section 5: start-up: `ipguard --help`, `ipguard ledger list` on an empty ledger, and how soon
`ipguard scan` sends its first probe (bench.first_probe, in the small lab).

    python -m bench --only startup

Ten timed runs of each (after one untimed run that creates the empty ledger and warms the page
cache), and where the time goes: `python -X importtime` of `ipguard --help`.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ChildRun, Log, Section, Target, ipguard_argv, run_child, table

REPEAT = 10
HELP_TARGET = 0.3


def _repeat(argv: list[str], log: Log, what: str) -> list[ChildRun]:
    run_child(argv)  # warm-up: page cache, .pyc files, the ledger's first creation
    runs = []
    for _ in range(REPEAT):
        child = run_child(argv)
        if child.returncode != 0:
            raise SystemExit(f"{what} failed: {child.stderr.strip()[-500:]}")
        runs.append(child)
    log(f"{what}: median {statistics.median(r.wall for r in runs):.3f} s")
    return runs


def _imports(argv: list[str]) -> list[tuple[str, float]]:
    """The top-level packages `argv` imports, by cumulative import time (python -X importtime)."""
    child = run_child(argv, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    totals: dict[str, float] = {}
    for line in child.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if found and len(found.group(3)) == 1:  # top level: one space of indent
            name = found.group(4).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(found.group(2)) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])[:8]


def _first_probe(log: Log) -> tuple[list[float], list[str], Target | None]:
    """bench.first_probe in the small lab, or nothing when the lab cannot be built here."""
    from tests.lab.fixtures import lab_unavailable

    reason = lab_unavailable()
    if reason is not None:
        log(f"first probe: not measured ({reason})")
        return [], [], None
    from bench.first_probe import first_probe

    return first_probe(log)


def startup_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section 5."""
    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        empty = str(Path(tmp) / "empty.db")
        cases = {
            "`python -c pass` (the interpreter alone)": _repeat(
                [sys.executable, "-c", "pass"], log, "python"
            ),
            "`ipguard --help`": _repeat(ipguard_argv("--help"), log, "--help"),
            "`ipguard ledger list` (empty ledger)": _repeat(
                ipguard_argv("--db", empty, "ledger", "list"), log, "ledger list"
            ),
        }
        imports = _imports(ipguard_argv("--help"))
    probe_seconds, probe_heavy, probe_target = _first_probe(log)
    rows = []
    for what, measured in cases.items():
        walls = [r.wall for r in measured]
        rows.append(
            [
                what,
                f"{statistics.median(walls):.3f}",
                f"{min(walls):.3f}",
                f"{max(walls):.3f}",
                f"{statistics.median(r.cpu for r in measured):.3f}",
                f"{max(r.maxrss_mb for r in measured):.0f}",
            ]
        )
    if probe_seconds:
        rows.append(
            [
                "`ipguard scan --phases sweep`: process start → first probe",
                f"{statistics.median(probe_seconds):.3f}",
                f"{min(probe_seconds):.3f}",
                f"{max(probe_seconds):.3f}",
                "",
                "",
            ]
        )
    help_median = statistics.median(r.wall for r in cases["`ipguard --help`"])
    targets = [
        Target(
            "`ipguard --help`",
            f"< {HELP_TARGET} s",
            f"{help_median:.3f} s (median of {REPEAT})",
            help_median < HELP_TARGET,
        ),
        *([probe_target] if probe_target is not None else []),
    ]
    text = "\n\n".join(
        [
            table(
                ["command", "median s", "min s", "max s", "CPU s", "peak RSS MB"],
                rows,
                "lrrrrr",
            ),
            "Where `ipguard --help` spends its imports (`PYTHONPROFILEIMPORTTIME`, cumulative "
            "seconds per top-level package, one run): "
            + ", ".join(f"{name} {secs:.3f}" for name, secs in imports)
            + ".",
        ]
    )
    return Section(
        name="startup",
        title="5. Start-up",
        markdown=text,
        targets=targets,
        data={"rows": rows, "imports": imports, "first_probe": probe_seconds, "heavy": probe_heavy},
    )
