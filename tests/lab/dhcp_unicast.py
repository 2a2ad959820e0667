"""A small DHCP server that unicasts its OFFER to the client MAC, whatever the broadcast flag says.

RFC 2131 (section 4.1) asks a server to broadcast its reply when the client sets the broadcast
flag; some embedded servers send it to the client's hardware address anyway (Ethernet destination
the client MAC, IP destination the offered address). A probe that only listens for broadcasts
never hears them. Run inside a host namespace by the builder::

    python -m tests.lab.dhcp_unicast --ip 198.18.0.44 --prefix 24 \\
        --first 198.18.0.200 --last 198.18.0.219

It answers DISCOVERs only (no leases kept; REQUESTs are ignored), each client MAC always getting
the same address of the pool. Standard library only, and independent of ipguard's own DHCP code,
so that the two cannot agree on a mistake.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys
from pathlib import Path

SO_BINDTODEVICE = 25
ETH_P_IP = 0x0800
MAGIC = b"\x63\x82\x53\x63"
LEASE_SECONDS = 3600


def offer_frame(
    request: bytes, own_mac: bytes, own_ip: str, offered: str, prefix: int, router: str | None
) -> bytes:
    """The Ethernet frame of our OFFER answering the DISCOVER ``request`` (a BOOTP payload)."""
    xid, flags = request[4:8], request[10:12]
    chaddr = request[28:44]
    options = bytes([53, 1, 2]) + bytes([54, 4]) + socket.inet_aton(own_ip)
    options += bytes([51, 4]) + struct.pack("!I", LEASE_SECONDS)
    netmask = ipaddress.ip_network(f"0.0.0.0/{prefix}").netmask.packed
    options += bytes([1, 4]) + netmask
    if router:
        options += bytes([3, 4]) + socket.inet_aton(router)
    options += b"\xff"
    bootp = (
        bytes([2, 1, 6, 0])
        + xid
        + b"\x00\x00"
        + flags
        + bytes(4)  # ciaddr
        + socket.inet_aton(offered)
        + socket.inet_aton(own_ip)  # siaddr
        + bytes(4)  # giaddr
        + chaddr
        + bytes(192)  # sname, file
        + MAGIC
        + options
    )
    bootp += bytes(max(0, 300 - len(bootp)))
    udp = struct.pack("!HHHH", 67, 68, 8 + len(bootp), 0) + bootp
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(own_ip),
        socket.inet_aton(offered),
    )
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return chaddr[:6] + own_mac + struct.pack("!H", ETH_P_IP) + header + udp


def is_discover(payload: bytes) -> bool:
    """Whether a UDP payload is a BOOTREQUEST carrying DHCP message type DISCOVER."""
    if len(payload) < 240 or payload[0] != 1 or payload[236:240] != MAGIC:
        return False
    i, options = 240, payload
    while i + 1 < len(options) and options[i] != 255:
        if options[i] == 0:
            i += 1
            continue
        if options[i] == 53 and options[i + 1] == 1 and i + 2 < len(options):
            return options[i + 2] == 1
        i += 2 + options[i + 1]
    return False


def serve(args: argparse.Namespace) -> None:
    """Answer DISCOVERs on eth0 until stopped (the lab sends SIGTERM)."""
    pool = [
        str(ipaddress.IPv4Address(n))
        for n in range(
            int(ipaddress.IPv4Address(args.first)), int(ipaddress.IPv4Address(args.last)) + 1
        )
    ]
    given: dict[bytes, str] = {}
    own_mac = bytes.fromhex(
        Path(f"/sys/class/net/{args.interface}/address").read_text().strip().replace(":", "")
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, args.interface.encode())
    listener.bind(("0.0.0.0", 67))  # receives the clients' broadcasts to 255.255.255.255:67
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind((args.interface, 0))
    while True:
        payload = listener.recv(2048)
        if not is_discover(payload):
            continue
        chaddr = payload[28:34]
        if chaddr not in given:
            if len(given) >= len(pool):
                continue  # pool exhausted: stay silent, as a full server does
            given[chaddr] = pool[len(given)]
        sender.send(offer_frame(payload, own_mac, args.ip, given[chaddr], args.prefix, args.router))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.dhcp_unicast")
    parser.add_argument("--interface", default="eth0")
    parser.add_argument("--ip", required=True, help="the server's own address")
    parser.add_argument("--prefix", type=int, required=True, help="prefix length of the subnet")
    parser.add_argument("--first", required=True)
    parser.add_argument("--last", required=True)
    parser.add_argument("--router", default=None, help="router option (default: none)")
    serve(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
