"""Record when probes cross one port of a lab bridge: the scanner's port, in the switch namespace.

    python -m tests.hardening.framerate OUT.json PORT      # run inside the lab's switch namespace

Counts the frames arriving from the port's device (what the scanner sent) that are probes: ARP
requests, ICMP echo requests, TCP segments with SYN and without ACK, and UDP datagrams (not the
rest of a TCP conversation). Prints `ready` once listening; on SIGTERM writes
{"frames": [[seconds, kind], ...]} (seconds on this process's monotonic clock).
"""

from __future__ import annotations

import json
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TCP_SYN, TCP_ACK = 0x02, 0x10


def kind_of(frame: bytes) -> str | None:
    """What kind of probe a frame is, or None when it is not one."""
    ethertype = frame[12:14]
    if ethertype == b"\x08\x06":
        return "arp" if frame[20:22] == b"\x00\x01" else None
    if ethertype != b"\x08\x00" or len(frame) < 34:
        return None
    header = (frame[14] & 0x0F) * 4
    proto, payload = frame[23], frame[14 + header :]
    if proto == 1 and payload[:1] == b"\x08":
        return "icmp-echo"
    if proto == 6 and len(payload) >= 14 and payload[13] & TCP_SYN and not payload[13] & TCP_ACK:
        return "tcp-syn"
    if proto == 17:
        return "udp"
    return None


def main() -> None:
    out_path, port = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((port, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
    frames: list[tuple[float, str]] = []
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
        when = time.monotonic()
        if address[2] == PACKET_OUTGOING:
            continue  # what the bridge sends to the scanner
        kind = kind_of(frame)
        if kind is not None:
            frames.append((when, kind))
    with open(out_path, "w") as handle:
        json.dump({"frames": frames}, handle)


if __name__ == "__main__":
    main()
