"""An SSDP responder for a fake consumer router/AP: answers M-SEARCH on UDP 1900 (239.255.255.250).

It answers ``ssdp:all``, ``upnp:rootdevice``, its ``uuid:`` and each of its device types with a
unicast ``HTTP/1.1 200 OK`` carrying LOCATION (the description XML served by the host's HTTP
service), SERVER, ST and USN, the way libupnp-based routers do::

    python -m tests.lab.ssdp --ip 198.18.0.70 --location http://198.18.0.70:80/rootDesc.xml \\
        --server "Linux/2.6.36, UPnP/1.0, Portable SDK for UPnP devices/1.6.19" --uuid … \\
        --st urn:schemas-upnp-org:device:InternetGatewayDevice:1
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from collections.abc import Sequence
from xml.sax.saxutils import escape

GROUP = "239.255.255.250"
PORT = 1900


def search_targets(message: str) -> str | None:
    """The ST of an ``M-SEARCH`` request with ``MAN: "ssdp:discover"``, else None."""
    lines = message.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].upper().startswith("M-SEARCH"):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().upper()] = value.strip()
    if headers.get("MAN", "").strip('"') != "ssdp:discover":
        return None
    return headers.get("ST")


def answers(st: str, *, uuid: str, device_types: Sequence[str]) -> list[tuple[str, str]]:
    """(ST, USN) pairs to send back for search target ``st``."""
    every = [("upnp:rootdevice", f"uuid:{uuid}::upnp:rootdevice"), (f"uuid:{uuid}", f"uuid:{uuid}")]
    every += [(t, f"uuid:{uuid}::{t}") for t in device_types]
    if st == "ssdp:all":
        return every
    return [pair for pair in every if pair[0] == st]


def response(st: str, usn: str, *, location: str, server: str) -> bytes:
    """One SSDP search response."""
    return (
        "HTTP/1.1 200 OK\r\n"
        "CACHE-CONTROL: max-age=1800\r\n"
        "EXT:\r\n"
        f"LOCATION: {location}\r\n"
        f"SERVER: {server}\r\n"
        f"ST: {st}\r\n"
        f"USN: {usn}\r\n"
        "\r\n"
    ).encode()


def description_xml(
    *, device_types: Sequence[str], manufacturer: str, model: str, friendly_name: str, uuid: str
) -> str:
    """A UPnP device description: the first device type as root, the others embedded."""

    def device(kind: str, udn: str, inner: str = "") -> str:
        return (
            f"<device><deviceType>{escape(kind)}</deviceType>"
            f"<friendlyName>{escape(friendly_name)}</friendlyName>"
            f"<manufacturer>{escape(manufacturer)}</manufacturer>"
            f"<modelName>{escape(model)}</modelName><modelNumber>{escape(model)}</modelNumber>"
            f"<UDN>uuid:{escape(udn)}</UDN>{inner}</device>"
        )

    root, *embedded = device_types
    inner = "".join(device(kind, f"{uuid}-{i}") for i, kind in enumerate(embedded, 1))
    return (
        '<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0">'
        "<specVersion><major>1</major><minor>0</minor></specVersion>"
        + device(root, uuid, f"<deviceList>{inner}</deviceList>" if inner else "")
        + "</root>\n"
    )


def serve(ip: str, location: str, server: str, uuid: str, device_types: Sequence[str]) -> None:
    """Answer M-SEARCH requests forever (the lab stops us with SIGTERM)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", PORT))
    membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    while True:
        data, peer = sock.recvfrom(2048)
        st = search_targets(data.decode("utf-8", "replace"))
        if st is None:
            continue
        for answer_st, usn in answers(st, uuid=uuid, device_types=device_types):
            sock.sendto(response(answer_st, usn, location=location, server=server), peer)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.ssdp")
    parser.add_argument("--ip", required=True, help="the host's address, to join the group on")
    parser.add_argument("--location", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--uuid", required=True)
    parser.add_argument("--st", action="append", required=True, help="device type (repeatable)")
    args = parser.parse_args(argv)
    serve(args.ip, args.location, args.server, args.uuid, args.st)
    return 0


if __name__ == "__main__":
    sys.exit(main())
