"""Benchmark: ipguard's ARP sweep against arp-scan and nmap on the scale lab.

    python -m bench.sweep [--runs 5] [--quick] [--out FILE] [--sizes 24,20,16] [--tools ...]

Needs root, `ip`, `nft`, `arp-scan` and `nmap`. Everything happens in two namespaces built for
the run (tests.lab.scale): the scanner side and one responder impersonating the live hosts.

What it measures, and how:
- the responder's own capacity (CPU per request), so that it is known not to be the bottleneck;
- the highest rate at which ipguard (no retries) still finds every live host of a /16: the
  "best lossless rate", used for ipguard in the comparison;
- for a /24 (100 live), a /20 (1,000 live) and a /16 (10,000 live), without loss and with 2 % of
  probes dropped: wall time, CPU time and recall of each tool, the median of N runs. A tool whose
  first run takes longer than --slow-after seconds is run once (the table says so).

Loss is applied with nftables on the responder's ingress: a dropped probe is invisible to every
scanner. (Dropping replies on the scanner's ingress would favour arp-scan and nmap: libpcap taps
frames before the netfilter ingress hook, so they would still see the "lost" replies.)
ipguard runs in this process (`inside` the scanner namespace): its times are those of the sweep
itself, without the interpreter's start-up and imports (reported separately).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from scanners.arp import ArpSweep
from scanners.scope import Scope
from tests.lab import netns
from tests.lab.scale import ScaleLab, lab_unavailable, link_loss, scale_lab

SIZES = {
    "24": ("198.19.0.0/24", 100),
    "20": ("198.19.0.0/20", 1_000),
    "16": ("198.19.0.0/16", 10_000),
}
LOSS_PERCENT = 2.0
RATE_STEPS = (20_000, 50_000, 100_000, 150_000, 200_000, 300_000)
TOOL_NAMES = ("ipguard", "arp-scan", "arp-scan-max", "nmap")
EXTRA_TOOLS = ("ipguard-default", "ipguard-r1")
IP_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\s")
NMAP_UP = re.compile(r"^Host: (\S+) .*Status: Up")
HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measure:
    """One run of one tool."""

    wall: float
    cpu: float
    found: int
    extra: int  # answered but not live (nmap counts the scanner itself)


@dataclass(frozen=True)
class Row:
    """The medians of a tool's runs on one case."""

    case: str
    loss: float
    tool: str
    runs: int
    wall: float
    cpu: float
    recall: float


# --- running the tools ---------------------------------------------------------------------------


def ipguard_run(lab: ScaleLab, rate: float, *, retries: int = 2, timeout: float = 1.0) -> Measure:
    """One ArpSweep of the lab's subnet from the scanner namespace, timed in-process."""
    scope = Scope([lab.subnet])
    targets = scope.targets()
    sweep = ArpSweep(lab.interface, scope, rate=rate, retries=retries, timeout=timeout)
    before, started = _own_cpu(), time.perf_counter()
    with netns.inside(lab.scanner_ns):
        result = sweep.sweep(targets)
    wall, cpu = time.perf_counter() - started, _own_cpu() - before
    return _score(lab, result.live, wall, cpu)


def external_run(lab: ScaleLab, argv: Sequence[str], limit: float) -> Measure:
    """One run of an external scanner in the scanner namespace; CPU from its resource usage."""
    before, started = _children_cpu(), time.perf_counter()
    process = subprocess.Popen(
        netns.exec_argv(lab.scanner_ns, list(argv)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise SystemExit(f"{argv[0]} took longer than {limit:.0f} s; raise --limit") from None
    wall, cpu = time.perf_counter() - started, _children_cpu() - before
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {err.strip()[-500:]}")
    pattern = NMAP_UP if argv[0] == "nmap" else IP_LINE
    found = {m.group(1) for line in out.splitlines() if (m := pattern.match(line))}
    return _score(lab, found, wall, cpu)


def tool_runner(
    tool: str, subnet: str, best_rate: float, limit: float
) -> Callable[[ScaleLab], Measure]:
    """How to run `tool` once against `subnet`."""
    commands = {
        "arp-scan": ["arp-scan", "-I", "eth0", "-x", subnet],
        "arp-scan-max": ["arp-scan", "-I", "eth0", "-x", "--bandwidth=1000M", subnet],
        "nmap": ["nmap", "-sn", "-PR", "-n", "-T4", "-oG", "-", subnet],
    }
    if tool == "ipguard":
        return lambda lab: ipguard_run(lab, best_rate)
    if tool == "ipguard-default":
        return lambda lab: ipguard_run(lab, 2_000)
    if tool == "ipguard-r1":  # arp-scan's own settings: two tries, 500 ms
        return lambda lab: ipguard_run(lab, best_rate, retries=1, timeout=0.5)
    argv = commands[tool]
    return lambda lab: external_run(lab, argv, limit)


def tool_label(tool: str, best_rate: float) -> str:
    """The tool's name in the table, with the settings that matter."""
    return {
        "ipguard": f"ipguard ArpSweep (rate {best_rate:,.0f}/s asked, retries 2, timeout 1 s)",
        "ipguard-default": "ipguard ArpSweep (defaults: rate 2,000/s, retries 2, timeout 1 s)",
        "ipguard-r1": f"ipguard ArpSweep (rate {best_rate:,.0f}/s asked, retries 1, timeout 0.5 s)",
        "arp-scan": "arp-scan (defaults)",
        "arp-scan-max": "arp-scan --bandwidth=1000M",
        "nmap": "nmap -sn -PR -n -T4",
    }[tool]


def _score(lab: ScaleLab, found: set[str], wall: float, cpu: float) -> Measure:
    live = set(lab.live)
    return Measure(wall=wall, cpu=cpu, found=len(found & live), extra=len(found - live))


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime


# --- the measurements ----------------------------------------------------------------------------


def responder_capacity(log: Callable[[str], None]) -> dict[str, float]:
    """Requests per second of responder CPU, and the reply rate it sustained, on an all-live /16."""
    with scale_lab(subnet="198.19.0.0/16", live=65_533, seed=5) as lab:
        pid = _responder_pid(lab)
        cpu0 = _process_cpu(pid)
        stats0 = lab.responder_stats()
        scope = Scope([lab.subnet])
        with netns.inside(lab.scanner_ns):
            result = ArpSweep(lab.interface, scope, rate=1e6, retries=0, timeout=1.0).sweep(
                scope.targets()
            )
        stats1 = lab.responder_stats()
        cpu = _process_cpu(pid) - cpu0
        requests = stats1["arp_requests"] - stats0["arp_requests"]
        seen = sorted(o.seen_at for o in result.observations)
        span = (seen[-1] - seen[0]).total_seconds() if len(seen) > 1 else float("nan")
        figures = {
            "requests": requests,
            "replies": stats1["arp_replies"] - stats0["arp_replies"],
            "cpu_s": cpu,
            "requests_per_cpu_second": requests / cpu if cpu else float("nan"),
            "replies_per_second_end_to_end": len(seen) / span if span else float("nan"),
            "kernel_drops": stats1["kernel_drops"] - stats0["kernel_drops"],
            "found": len(result.live),
        }
        log(f"responder: {figures}")
        return figures


def _responder_pid(lab: ScaleLab) -> int:
    pids = netns.namespace_pids([lab.responder_ns]).get(lab.responder_ns, [])
    if len(pids) != 1:
        raise SystemExit(f"expected one responder process in {lab.responder_ns}, found {pids}")
    return pids[0]


def lossless_rate(runs: int, log: Callable[[str], None]) -> tuple[float, list[dict[str, float]]]:
    """The highest rate at which ipguard, without retries, finds all 10,000 live hosts of a /16."""
    subnet, live = SIZES["16"]
    steps: list[dict[str, float]] = []
    best = 0.0
    with scale_lab(subnet=subnet, live=live, seed=5) as lab:
        scope = Scope([lab.subnet])
        targets = scope.targets()
        for rate in RATE_STEPS:
            recalls, achieved, drops = [], [], 0
            for _ in range(runs):
                with netns.inside(lab.scanner_ns):
                    result = ArpSweep(
                        lab.interface, scope, rate=rate, retries=0, timeout=1.0
                    ).sweep(targets)
                recalls.append(len(result.live & set(lab.live)) / live)
                achieved.append(result.probes_sent / max(1e-9, result.duration - 1.0))
                drops += result.replies_dropped
            step = {
                "rate": rate,
                "achieved": statistics.median(achieved),
                "recall": min(recalls),
                "drops": drops,
            }
            steps.append(step)
            log(f"lossless search: {step}")
            if min(recalls) == 1.0 and drops == 0:
                best = float(rate)
    return best, steps


def compare(
    sizes: Sequence[str],
    tools: Sequence[str],
    runs: int,
    best_rate: float,
    slow_after: float,
    limit: float,
    log: Callable[[str], None],
) -> list[Row]:
    """Every tool on every case, without and with loss."""
    rows: list[Row] = []
    for size in sizes:
        subnet, live = SIZES[size]
        with scale_lab(subnet=subnet, live=live, seed=5) as lab:
            for loss in (0.0, LOSS_PERCENT):
                lossy: AbstractContextManager[None] = (
                    link_loss(lab.responder_ns, loss) if loss else nullcontext()
                )
                with lossy:
                    for tool in tools:
                        run = tool_runner(tool, subnet, best_rate, limit)
                        measures = [run(lab)]
                        wanted = runs if measures[0].wall <= slow_after else 1
                        measures += [run(lab) for _ in range(wanted - 1)]
                        row = Row(
                            case=f"/{size} ({live:,} live)",
                            loss=loss,
                            tool=tool_label(tool, best_rate),
                            runs=len(measures),
                            wall=statistics.median(m.wall for m in measures),
                            cpu=statistics.median(m.cpu for m in measures),
                            recall=statistics.median(m.found / live for m in measures),
                        )
                        rows.append(row)
                        log(f"{row}")
    return rows


# --- the report ----------------------------------------------------------------------------------


def markdown(
    rows: Sequence[Row],
    best_rate: float,
    steps: Sequence[dict[str, float]],
    responder: dict[str, float],
    startup: float,
) -> str:
    """The results as Markdown tables."""
    lines = [
        "## ARP sweep: ipguard vs arp-scan vs nmap (scale lab, one veth pair)",
        "",
        "| case | loss | tool | runs | wall s (median) | CPU s (median) | recall |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [r.case, f"{r.loss:g} %", r.tool, str(r.runs), f"{r.wall:.2f}", f"{r.cpu:.2f}"]
        lines.append("| " + " | ".join([*cells, f"{r.recall:.2%}"]) + " |")
    lines += [
        "",
        f"ipguard's times are the sweep's own; starting Python and importing the sweep (scapy) "
        f"adds {startup:.2f} s. Each ipguard sweep ends with its 1 s timeout wait.",
        "",
        "### Highest lossless rate (ipguard, /16 with 10,000 live, no retries)",
        "",
        "| rate asked /s | rate achieved /s | worst recall | replies dropped by the kernel |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for s in steps:
        lines.append(
            f"| {s['rate']:,.0f} | {s['achieved']:,.0f} | {s['recall']:.2%} | {s['drops']:.0f} |"
        )
    achieved = next((s["achieved"] for s in steps if s["rate"] == best_rate), None)
    verdict = f"Best lossless rate: **{best_rate:,.0f} probes/s asked**"
    if achieved is not None and achieved < 0.95 * best_rate:
        verdict += (
            f", {achieved:,.0f} probes/s achieved: that is the sender's own ceiling, "
            "and nothing was lost up to it"
        )
    lines += [
        "",
        verdict + "." if best_rate else "No rate was lossless.",
        "",
        "### Scale responder",
        "",
        f"An all-live /16 ({responder['requests']:,.0f} requests) cost the responder "
        f"{responder['cpu_s']:.2f} s of CPU: "
        f"**{responder['requests_per_cpu_second']:,.0f} requests per CPU-second**; end to end it "
        f"answered {responder['replies_per_second_end_to_end']:,.0f} replies/s (limited by the "
        f"sender), with {responder['kernel_drops']:.0f} frames dropped by its kernel buffer.",
        "",
    ]
    return "\n".join(lines)


def startup_cost() -> float:
    """Seconds for a fresh interpreter to import the ARP sweep (scapy included)."""
    started = time.perf_counter()
    code = "import scanners.arp, scapy.layers.l2"
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1]
    )
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) the Markdown report."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per measurement (median reported)"
    )
    parser.add_argument("--quick", action="store_true", help="one run of everything")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--sizes", default="24,20,16", help="prefix lengths to sweep, of 24,20,16")
    parser.add_argument(
        "--tools",
        default=",".join(TOOL_NAMES),
        help=f"comma-separated, of {', '.join(TOOL_NAMES + EXTRA_TOOLS)}",
    )
    parser.add_argument("--rate", type=float, help="skip the lossless-rate search: use this rate")
    parser.add_argument(
        "--slow-after", type=float, default=60.0, help="run once a tool slower than this (s)"
    )
    parser.add_argument(
        "--limit", type=float, default=900.0, help="give up on a run after this many seconds"
    )
    args = parser.parse_args(argv)
    runs = 1 if args.quick else max(1, args.runs)
    sizes = [s.strip().lstrip("/") for s in args.sizes.split(",")]
    tools = [t.strip() for t in args.tools.split(",")]
    unknown = [s for s in sizes if s not in SIZES] + [
        t for t in tools if t not in (*TOOL_NAMES, *EXTRA_TOOLS)
    ]
    if unknown:
        parser.error(f"unknown size or tool: {', '.join(unknown)}")
    needed = ["nft"] + [t for t in ("arp-scan", "nmap") if any(x.startswith(t) for x in tools)]
    reason = lab_unavailable(*needed)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 3

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    responder = responder_capacity(log)
    steps: list[dict[str, float]] = []
    if args.rate:
        best = args.rate
    else:
        best, steps = lossless_rate(min(runs, 3), log)
        if not best:
            best = RATE_STEPS[0]
    rows = compare(sizes, tools, runs, best, args.slow_after, args.limit, log)
    report = markdown(rows, best, steps, responder, startup_cost())
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
