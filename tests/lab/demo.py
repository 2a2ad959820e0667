"""`make demo`: build the demo lab, register its devices, scan it, print the findings, tear down.

Everything runs against the lab's own namespaces in 198.18.0.0/15; ipguard itself runs inside the
lab's scanner namespace (`ip netns exec`), exactly as a sensor would on a real segment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.lab.builder import Lab
from tests.lab.scenarios import demo

OUT = Path("demo-out")


def ipguard(*args: str, ns: str | None = None, check: bool = True) -> int:
    """Run the installed ipguard command (inside a namespace when given), showing its output."""
    exe = str(Path(sys.executable).with_name("ipguard"))
    argv = [exe, "--db", str(OUT / "ledger.db"), "--config", str(OUT / "ipguard.toml"), *args]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    print(f"\n$ ipguard {' '.join(args)}", flush=True)
    code = subprocess.run(argv, check=False).returncode
    if check and code not in (0, 1):
        raise SystemExit(f"ipguard {' '.join(args)} failed with exit code {code}")
    return code


def main() -> int:
    """Build, import, scan, show, tear down (always)."""
    if os.geteuid() != 0:
        print("make demo needs root: it builds network namespaces", file=sys.stderr)
        return 2
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    started = time.monotonic()
    with Lab.build(demo()) as lab:
        took = time.monotonic() - started
        print(f"lab {lab.id} up in {took:.1f} s: {len(lab.hosts)} hosts on {lab.subnet}")
        lab.write_ledger_csv(OUT / "ledger.csv")
        lab.write_config(OUT / "ipguard.toml")
        ipguard("ledger", "import", str(OUT / "ledger.csv"))
        ipguard("ledger", "list")
        scanning = time.monotonic()
        code = ipguard("scan", ns=lab.scanner_ns)
        print(
            f"\nthe scan took {time.monotonic() - scanning:.1f} s, at rate = "
            f"{lab.scenario.rate:,} probes a second (the demo's ipguard.toml: see README)"
        )
        ipguard("runs", "show", "1")
    print(f"\nlab torn down; ledger and scan history: {OUT}/ledger.db (scan exit code {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
