"""A net-snmp `pass_persist` helper that makes a lab bridge answer like a managed switch.

snmpd runs it inside the switch namespace; it serves, from the live kernel bridge:

    BRIDGE-MIB   dot1dBasePortIfIndex, dot1dTpFdbTable        (port numbers from brport/port_no)
    Q-BRIDGE-MIB dot1qTpFdbTable (FID 1), dot1qVlanFdbId      (the bridge is VLAN-unaware: VLAN 1)
    IF-MIB       ifName, with member ports `swpN` named `Gi1/0/N` like a real access switch

The forwarding table is `bridge -j fdb show br BRIDGE`: learned entries only (the kernel's
permanent entries are the switch's own addresses, which a real switch reports as self(4)).

    pass_persist .1.3.6.1.2.1.17 /usr/bin/python3 tests/lab/bridge_agent.py br0 bridge
    pass_persist .1.3.6.1.2.1.31.1.1.1.1 /usr/bin/python3 tests/lab/bridge_agent.py br0 ifname
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

Oid = tuple[int, ...]
BRIDGE = (1, 3, 6, 1, 2, 1, 17)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
SYS_NET = Path("/sys/class/net")


def switch_name(kernel_name: str) -> str:
    """`swp7` -> `Gi1/0/7`: the way an access switch names its ports."""
    if kernel_name.startswith("swp") and kernel_name[3:].isdigit():
        return f"Gi1/0/{int(kernel_name[3:])}"
    return kernel_name


def members(bridge: str) -> dict[str, tuple[int, int]]:
    """Bridge member name -> (bridge port number, ifIndex)."""
    found = {}
    for link in (SYS_NET / bridge / "brif").iterdir():
        port = int((SYS_NET / link.name / "brport" / "port_no").read_text().strip(), 16)
        found[link.name] = (port, int((SYS_NET / link.name / "ifindex").read_text()))
    return found


def learned(bridge: str) -> list[tuple[str, str]]:
    """(MAC, member name) of every learned (non-permanent, non-self) FDB entry."""
    out = subprocess.run(
        ["bridge", "-j", "fdb", "show", "br", bridge], capture_output=True, text=True, check=True
    ).stdout
    entries = []
    for entry in json.loads(out or "[]"):
        flags = entry.get("flags", [])
        if entry.get("state") in ("permanent", "static") or "self" in flags:
            continue
        entries.append((entry["mac"].lower(), entry["ifname"]))
    return entries


def table(bridge: str, what: str) -> dict[Oid, tuple[str, str]]:
    """OID -> (pass type, value) for everything this helper serves."""
    ports = members(bridge)
    values: dict[Oid, tuple[str, str]] = {}
    if what == "ifname":
        for link in SYS_NET.iterdir():
            index = int((link / "ifindex").read_text())
            values[(*IF_NAME, index)] = ("string", switch_name(link.name))
        return values
    for port, if_index in ports.values():
        values[(*BRIDGE, 1, 4, 1, 2, port)] = ("integer", str(if_index))
    values[(*BRIDGE, 7, 1, 4, 2, 1, 3, 0, 1)] = ("gauge", "1")  # VLAN 1 uses FID 1
    for address, member in learned(bridge):
        if member not in ports:
            continue
        octets = tuple(int(part, 16) for part in address.split(":"))
        port = ports[member][0]
        values[(*BRIDGE, 4, 3, 1, 1, *octets)] = ("octet", " ".join(address.split(":")))
        values[(*BRIDGE, 4, 3, 1, 2, *octets)] = ("integer", str(port))
        values[(*BRIDGE, 4, 3, 1, 3, *octets)] = ("integer", "3")  # learned(3)
        values[(*BRIDGE, 7, 1, 2, 2, 1, 2, 1, *octets)] = ("integer", str(port))
        values[(*BRIDGE, 7, 1, 2, 2, 1, 3, 1, *octets)] = ("integer", "3")
    return values


def serve(bridge: str, what: str) -> None:
    """The pass_persist conversation on stdin/stdout."""
    cache: tuple[float, list[Oid], dict[Oid, tuple[str, str]]] = (0.0, [], {})

    def current() -> tuple[list[Oid], dict[Oid, tuple[str, str]]]:
        nonlocal cache
        if time.monotonic() - cache[0] > 1.0:
            values = table(bridge, what)
            cache = (time.monotonic(), sorted(values), values)
        return cache[1], cache[2]

    def answer(oid: Oid | None, values: dict[Oid, tuple[str, str]]) -> str:
        if oid is None:
            return "NONE\n"
        kind, value = values[oid]
        return "." + ".".join(map(str, oid)) + f"\n{kind}\n{value}\n"

    for line in sys.stdin:
        command = line.strip()
        if command == "PING":
            sys.stdout.write("PONG\n")
        elif command in ("get", "getnext"):
            oid = tuple(int(arc) for arc in sys.stdin.readline().strip().lstrip(".").split("."))
            order, values = current()
            if command == "get":
                sys.stdout.write(answer(oid if oid in values else None, values))
            else:
                at = bisect.bisect_right(order, oid)
                sys.stdout.write(answer(order[at] if at < len(order) else None, values))
        elif command == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            sys.stdout.write("not-writable\n")
        elif not command:
            break
        sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    serve(sys.argv[1], sys.argv[2])
