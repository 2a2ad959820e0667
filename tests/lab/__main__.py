"""Command line for the lab network.

    python -m tests.lab up [--scenario demo|small|multi-site|dhcp] [--state FILE] [--foreground]
    python -m tests.lab down [--state FILE | --id ID]
    python -m tests.lab ledger FILE [--state FILE]
    python -m tests.lab config FILE [--state FILE]

``up`` builds a lab, records it in a JSON state file (default /run/ipguard-lab/current.json) and
leaves it running; with ``--foreground`` it stays until SIGINT/SIGTERM and then tears the lab down.
``down`` without options tears down every recorded lab and removes any leftover ``ipg-``
namespaces and lab work directories (other running labs included); with ``--state`` or ``--id``
only that lab.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from tests.lab import builder, files, netns
from tests.lab.builder import Lab
from tests.lab.netns import LabError
from tests.lab.scenarios import SCENARIOS

STATE_DIR = Path("/run/ipguard-lab")
DEFAULT_STATE = STATE_DIR / "current.json"


def _interrupt_once(signum: int, _frame: object) -> NoReturn:
    """First SIGINT/SIGTERM unwinds, tearing the lab down; later ones must not cut that short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Let teardown finish even if the user presses Ctrl-C again."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_up(args: argparse.Namespace) -> int:
    """Build a lab and record it; in the foreground, wait for a signal and tear it down."""
    state_path = Path(args.state)
    if state_path.exists():
        recorded = json.loads(state_path.read_text())
        if any(ns in netns.existing() for ns in recorded.get("namespaces", [])):
            print(
                f"error: lab {recorded['id']} is already up (state {state_path}); "
                f"run `python -m tests.lab down` first or pass another --state",
                file=sys.stderr,
            )
            return 2
    # SIGTERM behaves like Ctrl-C, so Lab.build's cleanup runs for both.
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    lab = Lab.build(SCENARIOS[args.scenario]())
    keep = not args.foreground
    try:
        state = lab.state()
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n")
        _print_summary(state, state_path)
        if args.foreground:
            print("lab is up; Ctrl-C (SIGINT) or SIGTERM tears it down", flush=True)
            signal.pause()  # returns only by a handler raising KeyboardInterrupt
    except BaseException:
        keep = False
        raise
    finally:
        if not keep:
            with _signals_ignored():
                lab.teardown()
                state_path.unlink(missing_ok=True)
                print(f"lab {lab.id} torn down", flush=True)
    return 0


def _print_summary(state: dict[str, Any], state_path: Path) -> None:
    print(f"lab {state['id']} ({state['scenario']}) is up: {len(state['namespaces'])} namespaces")
    print(
        f"  scanner    ip netns exec {state['scanner_ns']} …"
        f"   ({state['interface']} {state['scanner_ip']})"
    )
    print(f"  subnets    {state['subnet']} + routed {', '.join(state['routed_subnets']) or '-'}")
    print(f"  dns        {state['dns_server'] or '-'}")
    print(f"  state      {state_path}")
    print(f"  workdir    {state['workdir']}", flush=True)


def cmd_down(args: argparse.Namespace) -> int:
    """Tear down recorded labs; without --state/--id also sweep every leftover ipg- namespace."""
    if args.id:
        names = [ns for ns in netns.existing() if ns.startswith(f"{netns.PREFIX}{args.id}-")]
        builder.destroy(names, builder.workdir_for(args.id))
        print(f"lab {args.id} torn down ({len(names)} namespaces)")
        return 0
    paths = [Path(args.state)] if args.state else sorted(STATE_DIR.glob("*.json"))
    for path in paths:
        if not path.exists():
            continue
        state = json.loads(path.read_text())
        builder.destroy(state.get("namespaces", []), state.get("workdir"))
        path.unlink()
        print(f"lab {state.get('id')} torn down")
    if not args.state:
        # Leftovers of crashed runs; this also stops labs that other test runs are using.
        leftovers = netns.existing()
        netns.destroy(leftovers)
        for workdir in Path(tempfile.gettempdir()).glob("ipg-lab-*"):
            shutil.rmtree(workdir, ignore_errors=True)
        if leftovers:
            print(f"removed {len(leftovers)} leftover namespaces: {' '.join(leftovers)}")
    return 0


def _recorded_scenario(args: argparse.Namespace) -> Any:
    path = Path(args.state)
    if not path.exists():
        raise LabError(f"no lab recorded in {path}: run `python -m tests.lab up` first")
    return SCENARIOS[json.loads(path.read_text())["scenario"]]()


def cmd_ledger(args: argparse.Namespace) -> int:
    """Write the recorded lab's ledger CSV."""
    print(files.write_ledger_csv(_recorded_scenario(args), args.file))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Write the recorded lab's ipguard.toml."""
    print(files.write_config(_recorded_scenario(args), args.file))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a lab and leave it running")
    up.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo")
    up.add_argument("--state", default=str(DEFAULT_STATE))
    up.add_argument(
        "--foreground", action="store_true", help="stay until SIGINT/SIGTERM, then tear down"
    )
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="tear labs down and remove leftovers")
    only = down.add_mutually_exclusive_group()
    only.add_argument("--state", help="only the lab recorded in this file")
    only.add_argument("--id", help="only the lab with this id (ipg-ID-* namespaces)")
    down.set_defaults(func=cmd_down)
    for name, func in (("ledger", cmd_ledger), ("config", cmd_config)):
        p = sub.add_parser(name, help=f"write the recorded lab's {name} file")
        p.add_argument("file")
        p.add_argument("--state", default=str(DEFAULT_STATE))
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
