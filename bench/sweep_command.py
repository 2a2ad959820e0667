"""The whole `ipguard scan --phases sweep` command vs `arp-scan -B100M`, process start included.

A user's sweep is a command: the interpreter starts, the sweep runs while the ledger opens, the
run is stored and judged. This is timed as a child process in the case's namespace, like arp-scan,
on a ledger where every live host is registered and that already holds one earlier run (a scan
from cron on a network in order: the hosts are seen again, nothing to report).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import ipguard_argv, run_child
from tests.lab import netns
from tests.lab.scale import ScaleLab

if TYPE_CHECKING:
    from bench.sweep import Measure, SweepCase, Tool

LIMIT = 1_800.0


def _config(case: SweepCase, rate: float) -> str:
    return "\n".join(
        [
            "[scan]",
            f'interface = "{case.interface}"',
            f'subnets = ["{case.subnet}"]',
            f"rate = {int(rate)}",
            "retries = 2",
            "timeout = 1.0",
            'site = "bench"',
            "",
        ]
    )


def command_run(case: SweepCase, rate: float) -> Measure:
    """A warm-up run (creates the ledger, stores the first findings), then the timed one."""
    from bench.sweep import Measure

    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        work = Path(tmp)
        (work / "ipguard.toml").write_text(_config(case, rate))
        base = ["--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml")]
        ledger = work / "ledger.csv"
        ledger.write_text(
            "ip,mac\n" + "".join(f"{ip},{ScaleLab.mac_for(ip)}\n" for ip in sorted(case.live))
        )
        imported = run_child(ipguard_argv(*base, "ledger", "import", str(ledger)))
        if imported.returncode != 0:
            raise SystemExit(f"ipguard ledger import failed: {imported.stderr[-500:]}")
        argv = netns.exec_argv(case.ns, ipguard_argv(*base, "scan", "--phases", "sweep", "--quiet"))
        for _warm_then_timed in range(2):
            child = run_child(argv, timeout=LIMIT)
            if child.returncode not in (0, 1):
                raise SystemExit(f"ipguard scan --phases sweep failed: {child.stderr[-500:]}")
        listed = run_child(ipguard_argv(*base, "runs", "list", "--format", "json"))
        seen = int(json.loads(listed.stdout)[0]["hosts_seen"])
    return Measure(wall=child.wall, cpu=child.cpu, found=min(seen, len(case.live)), extra=0)


def command_tool(rate: float) -> Tool:
    """`ipguard scan --phases sweep` at `rate`, the whole process."""
    from bench.sweep import Tool

    return Tool(
        "ipguard-command",
        f"`ipguard scan --phases sweep` command (rate {rate:,.0f}/s, retries 2)",
        lambda case: command_run(case, rate),
    )
