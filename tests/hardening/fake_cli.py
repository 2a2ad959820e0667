"""`ipguard` as a user runs it, in its own process, with the fake scanner at the scanner seam.

For fault tests that kill, starve or unplug a real ipguard process::

    python -m tests.hardening.fake_cli --hosts 5000 --hold 2 --flag /tmp/started -- \\
        --db /tmp/ledger.db --config ipguard.toml scan --quiet

The fake answers with `--hosts` hosts in 198.18.0.0/16 (every tenth one registered in no ledger:
a new MAC each run with `--seed`), after writing `--flag` and holding `--hold` seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ipguard.cli.context import AppState
from ipguard.cli.main import run
from tests.fakes import FakeScanner, result


def hosts(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` (ip, mac) pairs in 198.18.0.0/16, MACs locally administered."""
    pairs = []
    for n in range(1, count + 1):
        third, fourth = divmod(n, 250)
        mac_tail = n + (seed * 100_000 if n % 10 == 0 else 0)
        pairs.append((f"198.18.{third}.{fourth + 1}", "02:" + mac_tail.to_bytes(5, "big").hex(":")))
    return pairs


def main() -> None:
    """Parse our options, then run the CLI with the rest, the fake scanner at its seam."""
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.fake_cli")
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--flag", type=Path)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    scanner = FakeScanner(
        [result(*hosts(args.hosts, args.seed))], hold=args.hold, started_flag=args.flag
    )
    sys.argv = ["ipguard", *rest]
    run(AppState(scanner_factory=lambda: scanner))


if __name__ == "__main__":
    main()
