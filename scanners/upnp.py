"""UPnP/SSDP discovery: who answers M-SEARCH on the link, what it calls itself, what it says it is.

M-SEARCH goes to the SSDP group 239.255.255.250:1900 (multicast TTL 1: this link only), for every
device (`ssdp:all`) and by name for Internet gateways and wireless access points, and to UDP 1900
of each live host (`ssdp:all`), for devices that ignore multicast searches. The description XML
a LOCATION header points to is fetched only when its host is an IP literal inside the scope;
anything else is recorded, never followed.
"""

from __future__ import annotations

import select
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ipguard.escape import one_line
from ipguard.model import IgnoredReply
from ipguard.scanners import http
from ipguard.scanners.base import clipped
from ipguard.scanners.pacing import Pacer
from ipguard.scanners.scope import Scope

GROUP = "239.255.255.250"
PORT = 1900
IGD = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WLAN_AP = "urn:schemas-upnp-org:device:WLANAccessPointDevice:1"
SEARCH_TARGETS = ("ssdp:all", IGD, WLAN_AP)
MAX_REPLY = 2048
MAX_REPLIES_PER_HOST = 64
DRAIN_BATCH = 256  # datagrams read per look at the socket, so that a flood cannot stall a search
MAX_LOCATIONS_PER_HOST = 4
DESCRIPTION_LIMIT = 64 * 1024
FIELD_LIMIT = 255


@dataclass
class Responder:
    """One host that answered M-SEARCH: the search targets, SERVER strings and LOCATIONs it gave."""

    ip: str
    targets: set[str] = field(default_factory=set)  # ST / NT values and USN device types
    servers: set[str] = field(default_factory=set)
    locations: list[str] = field(default_factory=list)
    replies: int = 0


@dataclass(frozen=True)
class Description:
    """What a UPnP description XML says about a device (the root and its embedded devices)."""

    device_types: tuple[str, ...]
    friendly_name: str = ""
    manufacturer: str = ""
    model: str = ""


def search(
    source_ip: str,
    hosts: Iterable[str],
    scope: Scope,
    *,
    timeout: float,
    rate: float = 1000,
    ignored: Counter[IgnoredReply] | None = None,
) -> dict[str, Responder]:
    """Send M-SEARCH from `source_ip` and collect the answers of `hosts` for `timeout` s.

    The multicast search goes out only when `source_ip` itself lies in the scope; the unicast
    ones go to `hosts`, which the caller has checked. Answers from any other address (a spoofed
    source, a host the sweep did not see), malformed ones and those beyond MAX_REPLIES_PER_HOST
    are counted in `ignored[IgnoredReply.SSDP_IGNORED]` and otherwise left alone.
    """
    hosts = list(hosts)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    found: dict[str, Responder] = {}
    seen = _Seen(frozenset(ip for ip in hosts if ip in scope), ignored)
    with sock:
        sock.bind((source_ip, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setblocking(False)
        messages = []
        if source_ip in scope:  # the group reaches the whole link: only a link we may scan
            messages += [(_msearch(st, f"{GROUP}:{PORT}", mx=1), GROUP) for st in SEARCH_TARGETS]
        # Unicast: one search for everything per host; a device answers it with all its types.
        messages += [(_msearch("ssdp:all", f"{ip}:{PORT}", mx=None), ip) for ip in hosts]
        pacer = Pacer(rate)
        for k, (payload, destination) in enumerate(messages):
            pacer.acquire(1)
            try:
                sock.sendto(payload, (destination, PORT))
            except OSError:
                continue  # an unreachable host: nothing to learn from it
            if k % 64 == 0:
                _drain(sock, seen, found)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            select.select([sock], [], [], min(0.05, left))
            _drain(sock, seen, found)
    return found


@dataclass(frozen=True)
class _Seen:
    """Whose answers count, and where to count the others."""

    hosts: frozenset[str]
    ignored: Counter[IgnoredReply] | None

    def ignore(self) -> None:
        if self.ignored is not None:
            self.ignored[IgnoredReply.SSDP_IGNORED] += 1


def describe(location: str, scope: Scope, *, timeout: float) -> Description | str:
    """Fetch and read a description XML; a string says why it was not (or could not be) read."""
    try:
        url = urlsplit(location)
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        return f"LOCATION {location!r} is not a URL"
    host = url.hostname or ""
    if url.scheme not in ("http", "https"):
        return f"LOCATION {location} not fetched: not an HTTP URL"
    try:
        socket.inet_aton(host)
        literal = host.count(".") == 3
    except OSError:
        literal = False
    if not literal:
        return f"LOCATION {location} not fetched: its host is a name, not an address"
    if host not in scope:
        return f"LOCATION {location} not fetched: {host} is outside the scope"
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    try:
        reply = http.get(
            host, port, path, timeout=timeout, limit=DESCRIPTION_LIMIT, tls=url.scheme == "https"
        )
    except (OSError, ValueError) as exc:
        return f"LOCATION {location} could not be read: {exc}"
    if reply.status != 200:
        return f"LOCATION {location} answered HTTP {reply.status}"
    return parse_description(reply.body) or f"LOCATION {location} is not a UPnP description"


def parse_description(body: bytes) -> Description | None:
    """The device types, name, maker and model in a description XML; None if it is not one.

    Documents with a DTD are refused outright, in whatever encoding they come (defusedxml reads
    the document as the parser does, UTF-16 included): entity expansion is how XML bombs work, and
    a UPnP description needs no DTD.
    """
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, LookupError, ValueError):
        return None  # LookupError: an encoding nobody knows

    def values(tag: str) -> list[str]:
        found = []
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == tag and element.text and element.text.strip():
                found.append(_clean(element.text))
        return found

    device_types = tuple(dict.fromkeys(values("deviceType")))
    if not device_types:
        return None
    first = {tag: (values(tag) or [""])[0] for tag in ("friendlyName", "manufacturer", "modelName")}
    return Description(
        device_types=device_types,
        friendly_name=first["friendlyName"],
        manufacturer=first["manufacturer"],
        model=first["modelName"],
    )


def parse_reply(data: bytes) -> dict[str, str] | None:
    """The headers of an SSDP search answer or NOTIFY (names uppercased); None for anything else."""
    text = data.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    first = lines[0].upper() if lines else ""
    if not (first.startswith("HTTP/1.1 200") or first.startswith("NOTIFY ")):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers.setdefault(name.strip().upper(), _clean(value))
    return headers


def _drain(sock: socket.socket, seen: _Seen, found: dict[str, Responder]) -> None:
    for _ in range(DRAIN_BATCH):
        try:
            data, (ip, _port) = sock.recvfrom(MAX_REPLY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        headers = parse_reply(data) if ip in seen.hosts else None
        if headers is None:
            seen.ignore()  # not a host of the sweep (not ours to judge), or not SSDP at all
            continue
        responder = found.setdefault(ip, Responder(ip))
        if responder.replies >= MAX_REPLIES_PER_HOST:
            seen.ignore()
            continue
        responder.replies += 1
        for name in ("ST", "NT"):
            if headers.get(name):
                responder.targets.add(headers[name])
        usn = headers.get("USN", "")
        if "::urn:" in usn:
            responder.targets.add(usn.split("::", 1)[1])
        if headers.get("SERVER"):
            responder.servers.add(headers["SERVER"])
        location = headers.get("LOCATION", "")
        if (
            location
            and location not in responder.locations
            and len(responder.locations) < MAX_LOCATIONS_PER_HOST
        ):
            responder.locations.append(location)


def _msearch(st: str, host: str, *, mx: int | None) -> bytes:
    lines = ["M-SEARCH * HTTP/1.1", f"HOST: {host}", 'MAN: "ssdp:discover"']
    if mx is not None:
        lines.append(f"MX: {mx}")
    lines += [f"ST: {st}", "USER-AGENT: ipguard UPnP/1.1", "", ""]
    return "\r\n".join(lines).encode()


def _clean(value: str) -> str:
    """A header or XML value on one printable line, at most FIELD_LIMIT characters."""
    return clipped(one_line(value), FIELD_LIMIT)  # the one rule of ipguard.escape
