"""The whole `ipguard scan --phases sweep` command vs `arp-scan -B100M`, process start included.

    python -m bench --only command     # just these rows: the /20 scale lab, a minute or two

A user's sweep is a command: the interpreter starts, the sweep runs while the ledger opens, the
run is stored and judged. This is timed as a child process in the case's namespace, like arp-scan,
on a ledger where every live host is registered and that already holds one earlier run (a scan
from cron on a network in order: the hosts are seen again, nothing to report).

Both send at comparable rates: arp-scan -B100M paces its 42-byte requests (64 bytes on the wire
with padding, 84 with preamble and gap) to 100 Mbit/s, about 150,000 frames a second; ipguard runs
at `rate = COMMAND_RATE`, the same. The two run alternately, so that both meet the same load.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import Log, Section, Target, ipguard_argv, run_child
from tests.lab import netns
from tests.lab.scale import ScaleLab

if TYPE_CHECKING:
    from bench.sweep import Measure, Row, SweepCase, Tool

LIMIT = 1_800.0
COMMAND_RATE = 150_000  # arp-scan -B100M's frames a second (see above)
COMMAND_TARGET = 2.0  # times faster than arp-scan -B100M


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


def command_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """The /20 rows alone: the command and arp-scan -B100M, `runs` times each, alternately."""
    from bench.sweep import ARP_SCAN_100M, SCALE, SEED, _comparison, _require, measure, scale_case
    from tests.lab.scale import scale_lab

    _require("nft", "arp-scan")
    subnet, live = SCALE["20"]
    tools = [command_tool(COMMAND_RATE), ARP_SCAN_100M]
    rounds: list[list[Row]] = []
    with scale_lab(subnet=subnet, live=live, seed=SEED) as lab:
        case = scale_case(lab, live)
        for _ in range(runs):
            rounds.append([measure(tool, case, 1, 0.0, log) for tool in tools])
    rows = [_median_row([r[k] for r in rounds]) for k in range(len(tools))]
    command, arp_100m = rows
    ratio = arp_100m.wall / command.wall
    target = Target(
        "/20: the whole `ipguard scan --phases sweep` command vs arp-scan -B100M",
        f"≥ {COMMAND_TARGET:g}× faster",
        f"{ratio:.1f}× ({command.wall:.2f} s, CPU {command.cpu:.2f} s, vs {arp_100m.wall:.2f} s;"
        f" recall {command.worst_recall:.2%})",
        ratio >= COMMAND_TARGET and command.worst_recall == 1.0,
    )
    text = (
        _comparison(rows)
        + f"\n\nipguard at `rate = {COMMAND_RATE:,}`, arp-scan -B100M at about 150,000 frames a "
        "second: comparable rates. Each round runs the command, then arp-scan; medians of "
        f"{len(rounds)} round(s). The command's time counts from the kernel starting the process "
        "to its exit: start-up, the sweep, storing 1,000 observations and judging them."
    )
    return Section(
        name="command",
        title="1b. The whole `ipguard scan --phases sweep` command on the /20",
        markdown=text,
        targets=[target],
        data={"rows": [r.__dict__ for r in rows], "rate": COMMAND_RATE},
    )


def _median_row(rows: list[Row]) -> Row:
    """One row from single runs: medians of the times, the worst recall."""
    import statistics
    from dataclasses import replace

    return replace(
        rows[0],
        runs=len(rows),
        wall=statistics.median(r.wall for r in rows),
        cpu=statistics.median(r.cpu for r in rows),
        recall=statistics.median(r.recall for r in rows),
        worst_recall=min(r.worst_recall for r in rows),
    )
