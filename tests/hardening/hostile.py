"""A hostile lab host: every name, title, banner and SSDP field it gives is a chosen byte string.

Run inside a lab host's namespace (never on a real network)::

    python -m tests.hardening.hostile SPEC.json

SPEC.json holds hex byte strings, so NUL, invalid UTF-8 and escape sequences survive the trip:

    {"ip": "198.18.0.66",
     "http": {"port": 80, "title": HEX, "location": "http://…"},   # or a list of such; location:
                                                                   # answer 302 there
     "banner": {"port": 2323, "text": HEX},
     "ssdp": {"server": HEX, "location": "http://…", "st": ["urn:…"]},
     "names": {"labels": [HEX, …], "cname": "7.200.19.198.in-addr.arpa"},  # DNS, mDNS answers
     "netbios": HEX}

It answers mDNS (udp/5353) and DNS (udp/53: a PTR for any address asked, with `names`; with
`cname`, a CNAME to that name plus a PTR under it) with the same hostile name, and NetBIOS node
status (udp/137). It prints `ready` once every socket is bound and stops on SIGTERM.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import threading
from typing import Any

from ipguard.scanners import dnswire

GROUP = "239.255.255.250"


def _bytes(spec: dict[str, Any], key: str) -> bytes:
    return bytes.fromhex(spec.get(key, ""))


def http_reply(spec: dict[str, Any]) -> bytes:
    """The whole answer to any GET: a 302 elsewhere, or a page with the hostile title."""
    if spec.get("location"):
        head = f"HTTP/1.0 302 Found\r\nLocation: {spec['location']}\r\nContent-Length: 0\r\n\r\n"
        return head.encode()
    body = b"<html><head><title>" + _bytes(spec, "title") + b"</title></head><body>x</body></html>"
    head = f"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def ssdp_reply(spec: dict[str, Any], st: str) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
        + f"LOCATION: {spec['location']}\r\n".encode()
        + b"SERVER: "
        + _bytes(spec, "server")
        + b"\r\n"
        + f"ST: {st}\r\nUSN: uuid:hostile::{st}\r\n\r\n".encode()
    )


def name_answer(query: bytes, spec: dict[str, Any]) -> bytes | None:
    """A PTR answer to a PTR question (CNAME first when asked to point elsewhere)."""
    try:
        message = dnswire.parse(query)
    except ValueError:
        return None
    if message.is_response or not message.questions:
        return None
    qname, qtype = message.questions[0]
    if qtype != dnswire.TYPE_PTR:
        return None
    labels = tuple(bytes.fromhex(label) for label in spec["labels"])
    question = dnswire.encode_name(qname) + struct.pack("!HH", dnswire.TYPE_PTR, 1)
    records = b""
    owner = b"\xc0\x0c"
    count = 1
    if spec.get("cname"):
        target = tuple(part.encode() for part in spec["cname"].split("."))
        rdata = dnswire.encode_name(target)
        records += owner + struct.pack("!HHIH", dnswire.TYPE_CNAME, 1, 60, len(rdata)) + rdata
        owner = dnswire.encode_name(target)
        count = 2
    rdata = dnswire.encode_name(labels)
    records += owner + struct.pack("!HHIH", dnswire.TYPE_PTR, 1, 60, len(rdata)) + rdata
    header = query[:2] + struct.pack("!HHHHH", 0x8400, 1, count, 0, 0)
    return header + question + records


def netbios_answer(query: bytes, name: bytes) -> bytes:
    table = bytes([1]) + name[:15].ljust(15, b" ") + b"\x00" + struct.pack("!H", 0x0400)
    table += bytes(6 + 40)
    header = query[:2] + struct.pack("!HHHHH", 0x8400, 0, 1, 0, 0)
    wildcard = dnswire.encode_name(dnswire.netbios_wildcard())
    return header + wildcard + struct.pack("!HHIH", 0x21, 1, 0, len(table)) + table


def serve(spec: dict[str, Any]) -> None:
    udp: dict[socket.socket, str] = {}
    for port, kind in ((53, "dns"), (5353, "mdns"), (137, "netbios")):
        if (kind == "netbios" and "netbios" not in spec) or (
            kind != "netbios" and "names" not in spec
        ):
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        udp[sock] = kind
    if "ssdp" in spec:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", 1900))
        membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(spec["ip"]))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        udp[sock] = "ssdp"
    tcp: dict[socket.socket, bytes] = {}
    pages = spec.get("http", [])
    services = [
        (page, http_reply(page)) for page in (pages if isinstance(pages, list) else [pages])
    ]
    if "banner" in spec:
        services.append((spec["banner"], _bytes(spec["banner"], "text")))
    for service, reply in services:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", service["port"]))
        sock.listen(16)
        tcp[sock] = reply
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([*udp, *tcp], [], [], 1.0)
        for sock in readable:
            if sock in tcp:
                conn, _peer = sock.accept()
                threading.Thread(target=_talk, args=(conn, tcp[sock]), daemon=True).start()
                continue
            data, peer = sock.recvfrom(4096)
            kind = udp[sock]
            if kind == "ssdp":
                if data.startswith(b"M-SEARCH"):
                    for st in spec["ssdp"]["st"]:
                        sock.sendto(ssdp_reply(spec["ssdp"], st), peer)
            elif kind == "netbios":
                sock.sendto(netbios_answer(data, _bytes(spec, "netbios")), peer)
            else:
                answer = name_answer(data, spec["names"])
                if answer is not None:
                    sock.sendto(answer, peer)


def _talk(conn: socket.socket, reply: bytes) -> None:
    with conn:
        conn.settimeout(5)
        try:
            if reply.startswith(b"HTTP/"):
                conn.recv(4096)  # the request; the answer is the same whatever it asked
            conn.sendall(reply)
        except OSError:
            pass


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        serve(json.load(handle))
