"""Record where the frames of a lab namespace go: every IPv4 destination and ARP question.

Run inside a lab namespace (AF_PACKET on its eth0)::

    python -m tests.hardening.sniffer SPEC.json      # {"out": "OUT.json", "outgoing": true}

With `outgoing`, only frames the namespace sends are counted (the scanner: where did ipguard
send anything?); without, only frames arriving (a trap host: did anybody send to me?). Prints
`ready` once listening; on SIGTERM writes {"ipv4": {dst: frames}, "arp_who_has": {ip: frames}}.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import sys
from collections import Counter

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    out_path, outgoing = spec["out"], bool(spec.get("outgoing"))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind(("eth0", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
    ipv4: Counter[str] = Counter()
    who_has: Counter[str] = Counter()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while not stopping:
        if not select.select([sock], [], [], 0.1)[0]:
            continue
        frame, address = sock.recvfrom(128)
        if (address[2] == PACKET_OUTGOING) != outgoing or len(frame) < 34:
            continue
        kind = frame[12:14]
        if kind == b"\x08\x00":
            ipv4[socket.inet_ntoa(frame[30:34])] += 1
        elif kind == b"\x08\x06" and len(frame) >= 42 and frame[20:22] == b"\x00\x01":
            who_has[socket.inet_ntoa(frame[38:42])] += 1
    with open(out_path, "w") as handle:
        json.dump({"ipv4": ipv4, "arp_who_has": who_has}, handle)


if __name__ == "__main__":
    main()
