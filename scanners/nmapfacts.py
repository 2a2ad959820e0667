"""What nmap says about each open port: python-nmap's table, and what only its XML holds.

python-nmap gives each port's state, name, product and version; an unrecognised service's own
words (a banner, an HTTP reply) are in the XML's fingerprints, and so are the hosts nmap gave up on.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ipguard.escape import visible
from ipguard.model import ServiceObservation
from ipguard.scanners.base import clipped

BANNER_LIMIT = 255
# One response inside an nmap service fingerprint: r(GetRequest,1E0,"HTTP/1\.0\x20400…")
_FP_RESPONSE = re.compile(
    r'r\((?P<probe>[^,]+),(?P<length>[0-9A-Fa-f]+),"(?P<data>(?:[^"\\]|\\.)*)"\)'
)
_FP_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_FP_SIMPLE = {"r": "\r", "n": "\n", "t": "\t", "0": "\0"}
_TEXT_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_SERVER_HEADER = re.compile(r"^Server:[ \t]*([A-Za-z][\w.+-]*)(?:/([\w.+-]+))?", re.I | re.M)


def port_observations(
    ip: str, host: Mapping[str, Any], fingerprints: Mapping[tuple[str, str, int], bytes]
) -> list[ServiceObservation]:
    """The open ports of one host in python-nmap's table, with what its fingerprints add."""
    found = []
    for proto in ("tcp", "udp"):
        for port, facts in sorted(host.get(proto, {}).items()):
            if facts.get("state") != "open":  # open|filtered UDP ports prove nothing
                continue
            name = str(facts.get("name") or "")
            product = str(facts.get("product") or "")
            version = str(facts.get("version") or "")
            banner = str(facts.get("extrainfo") or "")
            response = fingerprints.get((ip, proto, int(port)))
            if response is not None:
                banner = banner or banner_line(response)
                if not product:
                    product, version = _server_header(_decoded(response))
                # An unrecognised service keeps the name nmap's port table gives its number (conf
                # 3): one that answered HTTP is a web server or a proxy, whatever its port.
                if str(facts.get("conf")) == "3" and response.startswith(b"HTTP/"):
                    name = name if "http" in name.lower() else "http"
            found.append(
                ServiceObservation(
                    ip=ip,
                    proto=proto,
                    port=int(port),
                    service=name,
                    product=product,
                    version=version,
                    banner=clipped(banner, BANNER_LIMIT),
                )
            )
    return found


def xml_facts(xml_output: bytes | str) -> tuple[dict[tuple[str, str, int], bytes], set[str]]:
    """What python-nmap drops from nmap's XML: fingerprints, and the hosts nmap gave up on.

    The first response of each unrecognised service (its `servicefp`), by (ip, proto, port), holds
    the service's own words (a banner, an HTTP reply); `timedout="true"` marks a host abandoned at
    its host timeout, whose ports are unknown rather than closed.
    """
    found: dict[tuple[str, str, int], bytes] = {}
    timed_out: set[str] = set()
    try:
        root = ET.fromstring(xml_output)
    except ET.ParseError:
        return found, timed_out
    for host in root.iter("host"):
        address = host.find("address[@addrtype='ipv4']")
        if address is None:
            continue
        if host.get("timedout") == "true":
            timed_out.add(str(address.get("addr")))
        for port in host.iter("port"):
            service = port.find("service")
            text = service.get("servicefp") if service is not None else None
            match = _FP_RESPONSE.search(text or "")
            if match:
                key = (
                    str(address.get("addr")),
                    str(port.get("protocol")),
                    int(port.get("portid", 0)),
                )
                found[key] = _unescape(match.group("data"))
    return found, timed_out


def _unescape(data: str) -> bytes:
    """Undo nmap's fingerprint escaping (`\\x20`, `\\r`, `\\.`): the bytes the service sent."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("x") and len(code) == 3:
            return chr(int(code[1:], 16))
        return _FP_SIMPLE.get(code, code)

    return _FP_ESCAPE.sub(one, data).encode("latin-1", "replace")


def banner_line(raw: bytes) -> str:
    """A reply as one printable line: its first lines, or the text runs of a binary reply."""
    controls = sum(byte < 0x20 and byte not in b"\r\n\t" for byte in raw)
    if controls > len(raw) // 10:
        return " ".join(run.decode("ascii") for run in _TEXT_RUN.findall(raw))
    text = _decoded(raw)
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return visible(" | ".join(lines[:4]))  # the one rule of ipguard.escape


def _decoded(raw: bytes) -> str:
    """Text of a service's reply: UTF-8, else GB18030 (common on Chinese devices), else Latin-1."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _server_header(response: str) -> tuple[str, str]:
    """(product, version) from an HTTP reply's Server header, e.g. `tinyproxy/1.11.1`."""
    if not response.startswith("HTTP/"):
        return "", ""
    match = _SERVER_HEADER.search(response.split("\r\n\r\n", 1)[0])
    if match is None:
        return "", ""
    return match.group(1), match.group(2) or ""
