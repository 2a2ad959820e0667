"""Sections 1 and 2: ipguard's ARP sweep against arp-scan and nmap, without and with loss.

    python -m bench --only sweep      # /24 (demo lab), /20 and /16 (scale lab)
    python -m bench --only loss       # the /16 with 2 % of the probes dropped

Needs root, `ip`, `nft`, `arp-scan` and `nmap`. The /24 is the demo lab (tests.lab.scenarios.demo:
a bridge, one namespace per host, real daemons); the /20 and /16 are the scale lab (tests.lab.scale:
two namespaces on a veth pair, one responder answering for 1,000 or 10,000 live addresses).

What is measured, and how:
- the responder's own capacity (CPU per request), so that it is known whether it is the bottleneck;
- ipguard's rate on the scale lab: the rate whose full sweep (retries 2, timeout 1 s) of the /16 is
  fastest with every live host found, from RATE_STEPS; sending faster than the responder answers
  only builds a queue, and a queue shows as round trips of tens of milliseconds, which ipguard
  then waits for (the retry gap and the final wait are multiples of the slowest round trip);
- each tool's wall time, CPU time and recall (hosts found / hosts present), the median of N runs;
  a tool whose first run takes longer than SLOW_AFTER seconds is run once (the table says so).

Loss is applied with nftables on the responder's ingress: a dropped probe is invisible to every
scanner. (Dropping replies on the scanner's ingress would favour arp-scan and nmap: libpcap taps
frames before the netfilter ingress hook, so they would still see the "lost" replies.)
ipguard runs in this process, inside the scanner namespace: its times are the sweep's own, without
the interpreter's start-up and imports (reported separately).
"""

from __future__ import annotations

import ipaddress
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, Log, Section, Target, table
from bench.sweep_command import COMMAND_RATE, command_tool
from ipguard.scanners.arp import ArpSweep
from ipguard.scanners.scope import Scope
from tests.lab import netns
from tests.lab.scale import ScaleLab, lab_unavailable, link_loss, scale_lab

SCALE = {
    "20": ("198.19.0.0/20", 1_000),
    "16": ("198.19.0.0/16", 10_000),
}
LOSS_PERCENT = 2.0
RATE_STEPS = (100_000, 200_000, 300_000, 400_000, 500_000, 700_000, 1_000_000)
DEFAULT_RATE = 2_000  # [scan] rate's default
MAX_RATE = 1_000_000  # more than the sender can do: "as fast as it goes"
SLOW_AFTER = 60.0
LIMIT = 1_800.0  # give up on one run of a tool after this many seconds
SEED = 5
NMAP_UP = "Status: Up"
HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class SweepCase:
    """Where to sweep from and who should answer."""

    label: str
    ns: str
    interface: str
    subnet: str
    live: frozenset[str]


@dataclass(frozen=True)
class Measure:
    """One run of one tool."""

    wall: float
    cpu: float
    found: int
    extra: int  # answered but not live (nmap counts the scanner itself)
    probes: float = math.nan  # ipguard only, as are the two below
    rtt_max_ms: float = math.nan
    final_wait: float = math.nan


@dataclass(frozen=True)
class Tool:
    """A way to sweep a case once."""

    key: str
    label: str
    run: Callable[[SweepCase], Measure]


@dataclass(frozen=True)
class Row:
    """The medians of a tool's runs on one case."""

    case: str
    loss: float
    tool: str
    key: str
    runs: int
    wall: float
    cpu: float
    recall: float
    worst_recall: float
    live: int
    probes: float = math.nan  # ipguard's probes sent (median); the peers do not say


# --- running the tools ---------------------------------------------------------------------------


def ipguard_run(case: SweepCase, rate: float, *, retries: int = 2, timeout: float = 1.0) -> Measure:
    """One ArpSweep of the case's subnet from its namespace, timed in this process."""
    scope = Scope([case.subnet])
    targets = scope.targets()
    sweep = ArpSweep(case.interface, scope, rate=rate, retries=retries, timeout=timeout)
    before, started = _own_cpu(), time.perf_counter()
    with netns.inside(case.ns):
        result = sweep.sweep(targets)
    wall, cpu = time.perf_counter() - started, _own_cpu() - before
    rtts = [o.rtt_ms for o in result.observations if o.rtt_ms is not None]
    live = result.live
    return Measure(
        wall=wall,
        cpu=cpu,
        found=len(live & case.live),
        extra=len(live - case.live),
        probes=result.probes_sent,
        rtt_max_ms=max(rtts, default=math.nan),
    )


def external_run(case: SweepCase, argv: Sequence[str]) -> Measure:
    """One run of an external scanner in the case's namespace; CPU from its resource usage."""
    from bench.common import run_child

    child = run_child(netns.exec_argv(case.ns, list(argv)), timeout=LIMIT)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}): {child.stderr[-500:]}")
    if argv[0] == "nmap":
        found = {
            line.split()[1]
            for line in child.stdout.splitlines()
            if line.startswith("Host: ") and NMAP_UP in line
        }
    else:
        found = set()
        for line in child.stdout.splitlines():
            first = line.split("\t", 1)[0]
            try:
                found.add(str(ipaddress.IPv4Address(first)))
            except ValueError:
                continue
    return Measure(
        wall=child.wall,
        cpu=child.cpu,
        found=len(found & case.live),
        extra=len(found - case.live),
    )


def ipguard_tool(key: str, label: str, rate: float, retries: int = 2, timeout: float = 1.0) -> Tool:
    """ipguard's ArpSweep with these settings."""
    return Tool(key, label, lambda case: ipguard_run(case, rate, retries=retries, timeout=timeout))


def external_tool(key: str, label: str, argv: Callable[[SweepCase], list[str]]) -> Tool:
    """A peer, run as its own process."""
    return Tool(key, label, lambda case: external_run(case, argv(case)))


ARP_SCAN = external_tool(
    "arp-scan", "arp-scan (defaults)", lambda c: ["arp-scan", "-I", c.interface, "-x", c.subnet]
)
ARP_SCAN_MAX = external_tool(
    "arp-scan-max",
    "arp-scan --bandwidth=1000M",
    lambda c: ["arp-scan", "-I", c.interface, "-x", "--bandwidth=1000M", c.subnet],
)
ARP_SCAN_100M = external_tool(
    "arp-scan-100m",
    "arp-scan -B100M",
    lambda c: ["arp-scan", "-I", c.interface, "-x", "-B100M", c.subnet],
)
NMAP = external_tool(
    "nmap",
    "nmap -sn -PR -n -T4",
    lambda c: ["nmap", "-sn", "-PR", "-n", "-T4", "-oG", "-", c.subnet],
)


def ipguard_best(rate: float) -> Tool:
    """ipguard at the rate the search picked, default retries and timeout."""
    return ipguard_tool("ipguard", f"ipguard (rate {rate:,.0f}/s, retries 2, timeout 1 s)", rate)


IPGUARD_DEFAULTS = ipguard_tool(
    "ipguard-default", f"ipguard (defaults: rate {DEFAULT_RATE:,}/s, retries 2)", DEFAULT_RATE
)
IPGUARD_MAX = ipguard_tool("ipguard-max", "ipguard (rate unlimited, retries 2)", MAX_RATE)


def ipguard_two_tries(rate: float) -> Tool:
    """ipguard with arp-scan's number of tries (two) and timeout (500 ms)."""
    return ipguard_tool(
        "ipguard-r1", f"ipguard (rate {rate:,.0f}/s, retries 1, timeout 0.5 s)", rate, 1, 0.5
    )


def measure(tool: Tool, case: SweepCase, runs: int, loss: float, log: Log) -> Row:
    """A tool's runs on one case: `runs` of them, or one when the first is slow."""
    measures = [tool.run(case)]
    wanted = runs if measures[0].wall <= SLOW_AFTER else 1
    measures += [tool.run(case) for _ in range(wanted - 1)]
    live = len(case.live)
    row = Row(
        case=case.label,
        loss=loss,
        tool=tool.label,
        key=tool.key,
        runs=len(measures),
        wall=statistics.median(m.wall for m in measures),
        cpu=statistics.median(m.cpu for m in measures),
        recall=statistics.median(m.found / live for m in measures),
        worst_recall=min(m.found / live for m in measures),
        live=live,
        probes=statistics.median(m.probes for m in measures),
    )
    log(f"{row.case} loss {loss:g}% {row.tool}: {row.wall:.3f} s, recall {row.recall:.2%}")
    return row


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime


# --- labs ----------------------------------------------------------------------------------------


def scale_case(lab: ScaleLab, live: int) -> SweepCase:
    """The scale lab as a sweep case."""
    prefix = lab.subnet.split("/")[1]
    return SweepCase(
        f"/{prefix} scale lab ({live:,} live)",
        lab.scanner_ns,
        lab.interface,
        lab.subnet,
        frozenset(lab.live),
    )


@contextmanager
def demo_case() -> Iterator[SweepCase]:
    """The demo lab (tests.lab.scenarios.demo) as a sweep case: its hosts on the scanned LAN."""
    from tests.lab.builder import Lab
    from tests.lab.scenarios import demo

    with Lab.build(demo()) as lab:
        net = ipaddress.ip_network(lab.subnet)
        live = frozenset(h.ip for h in lab.hosts if ipaddress.ip_address(h.ip) in net)
        yield SweepCase(
            f"/24 demo lab ({len(live)} hosts)",
            lab.scanner_ns,
            lab.scanner_interface,
            lab.subnet,
            live,
        )


# --- the measurements ----------------------------------------------------------------------------


def responder_capacity(log: Log) -> dict[str, float]:
    """Requests per second of responder CPU, on an all-live /16 swept once as fast as possible."""
    with scale_lab(subnet="198.19.0.0/16", live=65_533, seed=SEED) as lab:
        pids = netns.namespace_pids([lab.responder_ns]).get(lab.responder_ns, [])
        if len(pids) != 1:
            raise SystemExit(f"expected one responder process in {lab.responder_ns}, found {pids}")
        cpu0 = _process_cpu(pids[0])
        stats0 = lab.responder_stats()
        scope = Scope([lab.subnet])
        started = time.perf_counter()
        with netns.inside(lab.scanner_ns):
            result = ArpSweep(lab.interface, scope, rate=MAX_RATE, retries=0, timeout=1.0).sweep(
                scope.targets()
            )
        wall = time.perf_counter() - started
        stats1 = lab.responder_stats()
        cpu = _process_cpu(pids[0]) - cpu0
        requests = stats1["arp_requests"] - stats0["arp_requests"]
        seen = sorted(o.seen_at for o in result.observations)
        span = (seen[-1] - seen[0]).total_seconds() if len(seen) > 1 else math.nan
        figures = {
            "requests": requests,
            "replies": stats1["arp_replies"] - stats0["arp_replies"],
            "cpu_s": cpu,
            "us_per_request": cpu / requests * 1e6 if requests else math.nan,
            "requests_per_cpu_second": requests / cpu if cpu else math.nan,
            "replies_per_second_end_to_end": len(seen) / span if span else math.nan,
            "kernel_drops": stats1["kernel_drops"] - stats0["kernel_drops"],
            "found": len(result.live),
            "sweep_wall": wall,
        }
        log(f"responder: {figures}")
        return figures


def rate_search(runs: int, log: Log) -> tuple[float, list[dict[str, float]]]:
    """The rate whose full /16 sweep is fastest with every live host found (median of `runs`)."""
    subnet, live = SCALE["16"]
    steps: list[dict[str, float]] = []
    with scale_lab(subnet=subnet, live=live, seed=SEED) as lab:
        case = scale_case(lab, live)
        for rate in RATE_STEPS:
            measures = [ipguard_run(case, rate) for _ in range(runs)]
            wall = statistics.median(m.wall for m in measures)
            probes = statistics.median(m.probes for m in measures)
            step = {
                "rate": rate,
                "wall": wall,
                "cpu": statistics.median(m.cpu for m in measures),
                "worst_recall": min(m.found for m in measures) / live,
                "rtt_max_ms": statistics.median(m.rtt_max_ms for m in measures),
                "probes": probes,
            }
            steps.append(step)
            log(f"rate search: {step}")
    complete = [s for s in steps if s["worst_recall"] == 1.0]
    best = min(complete or steps, key=lambda s: s["wall"])
    return float(best["rate"]), steps


def startup_cost() -> float:
    """Seconds for a fresh interpreter to import the ARP sweep (no scapy: struct builds frames)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ipguard.scanners.arp"], check=True, cwd=REPO)
    return time.perf_counter() - started


# --- the sections --------------------------------------------------------------------------------


def sweep_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section 1: /24, /20 and /16 without loss."""
    _require("nft", "arp-scan", "nmap")
    responder = responder_capacity(log)
    best, steps = rate_search(min(runs, 3), log)
    context["best_rate"] = best
    rows: list[Row] = []
    with demo_case() as case:
        for tool in (IPGUARD_DEFAULTS, ipguard_best(best), ARP_SCAN, ARP_SCAN_MAX, NMAP):
            rows.append(measure(tool, case, runs, 0.0, log))
    for size in ("20", "16"):
        subnet, live = SCALE[size]
        tools = [ipguard_best(best)]
        tools += [IPGUARD_DEFAULTS] if size == "20" else [IPGUARD_MAX, ipguard_two_tries(best)]
        tools += [ARP_SCAN, ARP_SCAN_MAX, NMAP]
        # The whole command on the /20 is section `command` (bench.sweep_command), on its own.
        tools += [command_tool(COMMAND_RATE), ARP_SCAN_100M] if size == "16" else []
        with scale_lab(subnet=subnet, live=live, seed=SEED) as lab:
            case = scale_case(lab, live)
            rows += [measure(tool, case, runs, 0.0, log) for tool in tools]
    startup = startup_cost()

    targets, small_big = _sweep_targets(rows)
    big, scan_max = small_big
    text = "\n\n".join(
        [
            _comparison(rows),
            f"Recall is hosts found / hosts present (median of the runs; extra answers, such as "
            f"nmap listing the scanner itself, are not counted). ipguard's times are the sweep's "
            f"own, in this process; starting Python and importing the sweep adds "
            f"{startup:.2f} s to a command-line scan: counted in, the /16 would take "
            f"{big.wall + startup:.2f} s, {scan_max.wall / (big.wall + startup):.1f}× faster than "
            f"arp-scan at its maximum bandwidth (whose own start-up is a few milliseconds).",
            "### ipguard's rate on the scale lab (/16, 10,000 live, retries 2, timeout 1 s)",
            _steps(steps, best),
            "### Scale responder",
            _responder(responder),
        ]
    )
    return Section(
        name="sweep",
        title="1. ARP sweep: ipguard vs arp-scan vs nmap",
        markdown=text,
        targets=targets,
        data={
            "rows": [r.__dict__ for r in rows],
            "best_rate": best,
            "steps": steps,
            "responder": responder,
            "startup": startup,
        },
    )


def _sweep_targets(rows: list[Row]) -> tuple[list[Target], tuple[Row, Row]]:
    """Section 1's targets, and the /16 rows (ipguard, arp-scan at max bandwidth) its text cites."""

    def pick(case_prefix: str, key: str) -> Row:
        return next(r for r in rows if r.case.startswith(case_prefix) and r.key == key)

    small = pick("/24", "ipguard-default")
    big, scan_max, nmap = pick("/16", "ipguard"), pick("/16", "arp-scan-max"), pick("/16", "nmap")
    two_tries = pick("/16", "ipguard-r1")
    targets = [
        Target(
            "/24 sweep of the demo lab (ipguard defaults)",
            "< 1 s wall, 100 % recall",
            f"{small.wall:.2f} s, {small.recall:.1%}",
            small.wall < 1.0 and small.worst_recall == 1.0,
        ),
        Target(
            "/16 sweep vs arp-scan at its maximum bandwidth",
            "≥ 3× faster",
            f"{scan_max.wall / big.wall:.1f}× ({big.wall:.2f} s vs {scan_max.wall:.2f} s)",
            scan_max.wall / big.wall >= 3.0,
        ),
        Target(
            "(the same, ipguard at arp-scan's two tries: retries 1)",
            "≥ 3× faster",
            f"{scan_max.wall / two_tries.wall:.1f}× ({two_tries.wall:.2f} s, recall "
            f"{two_tries.worst_recall:.2%})",
            scan_max.wall / two_tries.wall >= 3.0 and two_tries.worst_recall == 1.0,
        ),
        Target(
            "/16 sweep vs nmap -sn -PR -T4",
            "≥ 10× faster",
            f"{nmap.wall / big.wall:.0f}× ({big.wall:.2f} s vs {nmap.wall:.1f} s)",
            nmap.wall / big.wall >= 10.0,
        ),
        Target(
            "/16 sweep recall without loss",
            "100 %",
            f"{big.worst_recall:.2%} (worst of {big.runs} runs)",
            big.worst_recall == 1.0,
        ),
    ]
    return targets, (big, scan_max)


def loss_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section 2: the /16 with 2 % of the probes dropped on the responder's ingress."""
    _require("nft", "arp-scan", "nmap")
    best = context.get("best_rate")
    if not best:
        best, _ = rate_search(1, log)
        context["best_rate"] = best
    subnet, live = SCALE["16"]
    rows: list[Row] = []
    with scale_lab(subnet=subnet, live=live, seed=SEED) as lab:
        case = scale_case(lab, live)
        with link_loss(lab.responder_ns, LOSS_PERCENT):
            before = lab.responder_stats()["arp_requests"]
            probe = ipguard_run(case, best)
            seen = lab.responder_stats()["arp_requests"] - before
            dropped = 1 - seen / probe.probes
            for tool in (ipguard_best(best), ipguard_two_tries(best), ARP_SCAN, ARP_SCAN_MAX, NMAP):
                rows.append(measure(tool, case, runs, LOSS_PERCENT, log))
    ours = next(r for r in rows if r.key == "ipguard")
    targets = [
        Target(
            "/16 sweep recall with 2 % loss",
            "≥ 99.9 %",
            f"{ours.worst_recall:.2%} (worst of {ours.runs} runs)",
            ours.worst_recall >= 0.999,
        )
    ]
    text = "\n\n".join(
        [
            _comparison(rows),
            f"The loss really applied: of {probe.probes:,.0f} probes ipguard sent in a check run, "
            f"the responder saw {seen:,} ({dropped:.2%} dropped on its ingress by nftables "
            "`numgen random mod 10000 < 200 drop`).",
        ]
    )
    return Section(
        name="loss",
        title="2. ARP sweep of the /16 with 2 % loss",
        markdown=text,
        targets=targets,
        data={"rows": [r.__dict__ for r in rows], "best_rate": best, "dropped": dropped},
    )


def _require(*tools: str) -> None:
    reason = lab_unavailable(*tools)
    if reason:
        raise SystemExit(f"error: {reason}")


# --- Markdown ------------------------------------------------------------------------------------


def _comparison(rows: Sequence[Row]) -> str:
    body = []
    for r in rows:
        body.append(
            [
                r.case,
                f"{r.loss:g} %",
                r.tool,
                str(r.runs),
                f"{r.wall:.3f}" if r.wall < 10 else f"{r.wall:.1f}",
                f"{r.cpu:.2f}",
                f"{r.recall:.2%}",
                "" if math.isnan(r.probes) else f"{r.probes:,.0f}",
            ]
        )
    return table(
        ["case", "loss", "tool", "runs", "wall s (median)", "CPU s (median)", "recall", "probes"],
        body,
        "lllrrrrr",
    )


def _steps(steps: Sequence[dict[str, float]], best: float) -> str:
    body = [
        [
            f"{s['rate']:,.0f}" + (" ← used" if s["rate"] == best else ""),
            f"{s['wall']:.3f}",
            f"{s['cpu']:.2f}",
            f"{s['rtt_max_ms']:.1f}",
            f"{s['probes']:,.0f}",
            f"{s['worst_recall']:.2%}",
        ]
        for s in steps
    ]
    note = (
        "Each rate's median wall time; the slowest round trip shows the responder's queue: "
        "above the rate it answers at, probes wait in its socket buffer, and ipguard's retry gap "
        "and final wait (two slowest round trips, at least 0.1 s, at most the timeout) grow "
        "with it."
    )
    return (
        table(
            ["rate asked /s", "wall s", "CPU s", "slowest round trip ms", "probes", "worst recall"],
            body,
            "rrrrrr",
        )
        + "\n\n"
        + note
    )


def _responder(r: dict[str, float]) -> str:
    return (
        f"An all-live /16 ({r['requests']:,.0f} requests, ipguard unpaced, no retries) cost the "
        f"responder {r['cpu_s']:.2f} s of CPU: **{r['us_per_request']:.2f} µs per request, "
        f"{r['requests_per_cpu_second']:,.0f} requests per CPU-second**; end to end it answered "
        f"{r['replies_per_second_end_to_end']:,.0f} replies/s, with {r['kernel_drops']:.0f} "
        f"frames dropped by its kernel buffer. It is one Python process: on this 2-core machine "
        f"it shares the CPUs with the scanner under test and with the kernel work of the veth "
        f"pair, so it bounds how fast any tool's /16 can be answered."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.sweep`: the two sweep sections alone (see `python -m bench`)."""
    from bench.__main__ import main as bench_main

    return bench_main(["--only", "sweep,loss", *(argv or sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
