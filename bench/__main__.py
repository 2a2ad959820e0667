"""`make bench` (`python -m bench`): ipguard and its peers on the lab, side by side.

    python -m bench                   # every section, medians of 5 runs → bench/RESULTS.md
    python -m bench --quick           # one run of everything
    python -m bench --only ledger     # one section (or several, comma-separated); the others are
                                      # kept from the last run (bench/results.json)

Sections: sweep (ARP sweep /24, /20, /16 vs arp-scan and nmap), command (the whole `ipguard scan
--phases sweep` command on the /20 vs arp-scan -B100M, on its own), loss (the /16 with 2 % loss),
ledger (100,000 devices: import, policies, export), scan (a full `ipguard scan` phase by phase),
startup (`ipguard --help`, `ledger list`), dhcp (each lab DHCP server over 20 scans), snmp
(polling vs snmpbulkwalk, 51 devices at once), watch (`ipguard watch`: detection latency, an ARP
flood, arpwatch beside it), ipv6 (1,000 IPv6 hosts: discovery vs alive6 and nmap). Needs root for
the lab sections; every lab namespace is created here and torn down whatever happens.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    Log,
    Section,
    compile_sources,
    load1,
    log,
    machine,
    now_text,
    table,
    verdict,
    versions,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
NOTES = HERE / "NOTES.md"

SectionRunner = Callable[[int, dict[str, Any], Log], Section]


def _sections() -> dict[str, SectionRunner]:
    from bench.dhcp import dhcp_section
    from bench.history import history_section
    from bench.ipv6 import ipv6_section
    from bench.ledger_scale import ledger_section
    from bench.scan_phases import scan_section
    from bench.snmp import snmp_section
    from bench.startup import startup_section
    from bench.sweep import loss_section, sweep_section
    from bench.sweep_command import command_section
    from bench.watch import watch_section

    return {
        "sweep": sweep_section,
        "command": command_section,
        "loss": loss_section,
        "ledger": ledger_section,
        "scan": scan_section,
        "startup": startup_section,
        "dhcp": dhcp_section,
        "snmp": snmp_section,
        "watch": watch_section,
        "ipv6": ipv6_section,
        "history": history_section,
    }


NAMES = (
    "sweep",
    "command",
    "loss",
    "ledger",
    "scan",
    "startup",
    "dhcp",
    "snmp",
    "watch",
    "ipv6",
    "history",
)


def run_section(name: str, runner: SectionRunner, runs: int, context: dict[str, Any]) -> Section:
    """One section, timed, with the machine's load before and after; a failure is reported."""
    started, load_before, at = time.monotonic(), load1(), now_text()
    log(f"section {name}: starting (load {load_before:.2f})")
    try:
        section = runner(runs, context, log)
    except (Exception, SystemExit) as error:  # one broken section must not lose the others
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        log(f"section {name} failed: {detail}")
        traceback.print_exc()
        section = Section(
            name=name,
            title=name,
            markdown=f"**This section failed in its last run:** `{detail}`",
            data={"failed": True},
        )
    section.started_at = at
    section.seconds = time.monotonic() - started
    section.load_before, section.load_after = load_before, load1()
    section.data["runs"] = runs
    log(f"section {name}: done in {section.seconds:.0f} s")
    return section


def render(sections: dict[str, Section], header: dict[str, Any]) -> str:
    """RESULTS.md from every section's latest run."""
    present = [sections[name] for name in NAMES if name in sections]
    m, v = header["machine"], header["versions"]
    lines = [
        "# ipguard benchmarks",
        "",
        "Written by `make bench` (`python -m bench`; `--quick` for one run of everything, "
        "`--only NAME` to re-run one section and keep the others). Do not edit by hand: the "
        "optimisation notes at the end come from `bench/NOTES.md`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Linux {m['kernel']}. "
        f"Last written {header['written']}.",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in v.items()) + ".",
        "",
        "The machine is shared with other engineers' test runs: each section gives the one-minute "
        "load average before and after it ran; on a quiet machine (load below 1) the numbers "
        "are lower and steadier.",
        "",
        "## Targets",
        "",
        table(
            ["section", "what", "target", "measured", ""],
            [
                [s.title.split(".")[0], t.what, t.goal, t.measured, verdict(t.met)]
                for s in present
                for t in s.targets
            ],
            "lllll",
        ),
        "",
    ]
    for s in present:
        lines += [
            f"## {s.title}",
            "",
            f"_Run {s.started_at}, {s.data.get('runs', '?')} run(s) per measurement, "
            f"{s.seconds:.0f} s; load {s.load_before:.2f} before, {s.load_after:.2f} after._",
            "",
            s.markdown,
            "",
        ]
    if NOTES.exists():
        lines += [NOTES.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, then write RESULTS.md and results.json."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="one run of everything")
    parser.add_argument(
        "--only", default=",".join(NAMES), help=f"comma-separated sections of {', '.join(NAMES)}"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the Markdown report")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)} (sections: {', '.join(NAMES)})")
    runs = 1 if args.quick else max(1, args.runs)

    store = args.out.with_name(RESULTS_JSON.name)
    previous: dict[str, Any] = json.loads(store.read_text()) if store.exists() else {}
    sections = {
        name: Section.from_json(data) for name, data in previous.get("sections", {}).items()
    }
    context: dict[str, Any] = {}
    if "sweep" in sections and "sweep" not in chosen:
        context["best_rate"] = sections["sweep"].data.get("best_rate")

    # SIGTERM ends the run like Ctrl-C: through every `finally`, so no lab is left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    compile_sources()
    runners = _sections()
    header = {"machine": machine(), "versions": versions()}
    for name in NAMES:
        if name in chosen:
            sections[name] = run_section(name, runners[name], runs, context)
            _write(args.out, store, sections, header)  # a later failure loses nothing measured
    log(f"wrote {args.out} and {store} in {time.monotonic() - started:.0f} s")
    failed = [name for name in chosen if sections[name].data.get("failed")]
    return 1 if failed else 0


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _write(out: Path, store: Path, sections: dict[str, Section], header: dict[str, Any]) -> None:
    header = {**header, "written": now_text()}
    everything = {**header, "sections": {k: s.to_json() for k, s in sections.items()}}
    store.write_text(json.dumps(everything, indent=1, ensure_ascii=False) + "\n")
    out.write_text(render(sections, header), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
