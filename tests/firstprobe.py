"""Run `ipguard` and record, at the first frame it sends, what it had imported and when.

    python -m tests.firstprobe OUT.json ipguard-args...

Every send on a socket (the sweep's, the DHCP probe's) passes through a wrapper that, the first
time, writes {"seconds": since the process started, "modules": heavy modules already imported,
"commands": the ipguard.cli modules already imported} to OUT.json. The process start is the
kernel's (/proc/self/stat), on the clock it uses.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

# pydantic: typer 0.29 and later build a pydantic TypeAdapter per option before the command
# runs (pyproject.toml pins typer below 0.29 for that reason; the ledger imports pydantic after
# the probe).
HEAVY = (
    "scapy",
    "sqlalchemy",
    "sqlmodel",
    "pydantic",
    "alembic",
    "nmap",
    "openpyxl",
    "apprise",
    "jinja2",
)


def started_at() -> float:
    """When this process started, in CLOCK_BOOTTIME seconds (the clock /proc counts in)."""
    with open("/proc/self/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    out = sys.argv[1]
    start = started_at()
    seen: dict[str, Any] = {}

    def first() -> None:
        if not seen:
            seen["seconds"] = time.clock_gettime(time.CLOCK_BOOTTIME) - start
            seen["modules"] = sorted(name for name in HEAVY if name in sys.modules)
            # The command modules loaded by then (ipguard.cli.main builds only the one run).
            seen["commands"] = sorted(
                name for name in sys.modules if name.startswith("ipguard.cli.")
            )
            with open(out, "w") as handle:
                json.dump(seen, handle)

    def wrap(name: str) -> None:
        original: Callable[..., Any] = getattr(socket.socket, name)

        def sending(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
            first()
            return original(self, *args, **kwargs)

        setattr(socket.socket, name, sending)

    for name in ("send", "sendto", "sendmsg"):
        wrap(name)
    from ipguard.cli.main import run as ipguard

    sys.argv = ["ipguard", *sys.argv[2:]]
    ipguard()


if __name__ == "__main__":
    main()
