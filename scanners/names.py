"""Name probe: the hostnames live hosts go by, from reverse DNS, NetBIOS node status and mDNS.

All questions leave one UDP socket, paced, and are matched to answers by (address, port, query id)
and by the name asked about; unanswered ones are asked once more halfway through the wait. Answers
are only read, never followed: a CNAME or a name pointing elsewhere causes no further query.

- reverse DNS: a PTR query for each address to each configured DNS server (the administrator
  names them, so they need not lie in the scope);
- NetBIOS: a node status (NBSTAT) query to UDP 137 of each address (Windows, Samba);
- mDNS: a unicast PTR query to UDP 5353 of each address (Avahi, Apple), answered to our port.
"""

from __future__ import annotations

import ipaddress
import secrets
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ipguard.errors import InvalidValue, ScanError
from ipguard.model import NameObservation, NameSource
from ipguard.scanners import dnswire
from ipguard.scanners.base import Progress
from ipguard.scanners.pacing import Pacer
from ipguard.scanners.scope import Scope

WHAT = "name probe"
DNS_PORT = 53
NETBIOS_PORT = 137
MDNS_PORT = 5353
CHUNK = 16384  # addresses per round, so that query ids stay unique per DNS server
RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_REPLY = 4096
NETBIOS_WORKSTATION = 0x00
DRAIN_BATCH = 1024  # datagrams read per look at the socket


@dataclass
class _Query:
    """One question on the wire and what an answer must look like to count."""

    source: NameSource
    ip: str  # the address we want names for
    server: str  # where the question goes
    port: int
    ident: int
    qname: dnswire.Name
    payload: bytes
    settled: bool = False  # answered, or not worth asking again


class NameProbe:
    """Collects the names each address goes by, and where each name came from.

    Example::

        probe = NameProbe(Scope(["198.18.0.0/24"]), dns_servers=["198.18.0.3"], timeout=1.0)
        probe.lookup(["198.18.0.20"])
        # [NameObservation(ip='198.18.0.20', name='math-pc01', source='dns')]
    """

    def __init__(
        self,
        scope: Scope,
        *,
        dns_servers: Iterable[str],
        timeout: float,
        netbios: bool = True,
        mdns: bool = True,
        rate: float = 1000,
        progress: Progress | None = None,
    ) -> None:
        if timeout <= 0 or rate <= 0:
            raise ValueError(f"timeout and rate must be > 0 (got {timeout}, {rate})")
        self.scope = scope
        self.dns_servers = tuple(dict.fromkeys(_ipv4(ip, "DNS server") for ip in dns_servers))
        self.timeout = timeout
        self.netbios = netbios
        self.mdns = mdns
        self.rate = rate
        self.progress = progress

    def lookup(self, ips: Iterable[str]) -> list[NameObservation]:
        """Every name found for the addresses; ScopeError before any query for an outsider."""
        targets = list(dict.fromkeys(_ipv4(self.scope.check(ip), "target") for ip in ips))
        found: dict[tuple[str, str, str], NameObservation] = {}
        total = len(targets)
        self._report(0, total)
        for start in range(0, len(targets), CHUNK):
            chunk = targets[start : start + CHUNK]
            for seen in self._round(chunk):
                found.setdefault((seen.ip, seen.name, seen.source), seen)
            self._report(start + len(chunk), total)
        return list(found.values())

    def _round(self, ips: list[str]) -> list[NameObservation]:
        queries = self._queries(ips)
        if not queries:
            return []
        pending = {(q.server, q.port, q.ident): q for q in queries}
        found: list[NameObservation] = []
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            raise ScanError(f"{WHAT} could not open a UDP socket: {exc.strerror}") from exc
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.setblocking(False)
            pacer = Pacer(self.rate)
            for attempt in range(2):  # unanswered questions are asked once more
                asking = [q for q in queries if not q.settled]
                for k, q in enumerate(asking):
                    if k % 64 == 0:
                        found += self._drain(sock, pending)
                    pacer.acquire(1)
                    try:
                        sock.sendto(q.payload, (q.server, q.port))
                    except OSError:
                        q.settled = True  # unreachable: asking again will not help
                deadline = time.monotonic() + self.timeout / 2
                while time.monotonic() < deadline and not all(q.settled for q in queries):
                    select.select([sock], [], [], max(0.0, min(0.05, deadline - time.monotonic())))
                    found += self._drain(sock, pending)
                if attempt == 0 and all(q.settled for q in queries):
                    break
        return found

    def _queries(self, ips: list[str]) -> list[_Query]:
        queries = []
        # Unpredictable ids (and the kernel's random source port) make a spoofed answer unlikely.
        idents = secrets.SystemRandom().sample(range(1, 65536), len(ips))
        for server in self.dns_servers:
            for ident, ip in zip(idents, ips, strict=True):
                name = dnswire.reverse_name(ip)
                payload = dnswire.query(ident, name, dnswire.TYPE_PTR, recursion=True)
                queries.append(_Query(NameSource.DNS, ip, server, DNS_PORT, ident, name, payload))
        for ip in ips:
            if self.netbios:
                ident = secrets.randbits(16)
                name = dnswire.netbios_wildcard()
                payload = dnswire.query(ident, name, dnswire.TYPE_NBSTAT, recursion=False)
                queries.append(
                    _Query(NameSource.NETBIOS, ip, ip, NETBIOS_PORT, ident, name, payload)
                )
            if self.mdns:
                ident = secrets.randbits(16) or 1  # legacy unicast: the responder echoes the id
                name = dnswire.reverse_name(ip)
                payload = dnswire.query(ident, name, dnswire.TYPE_PTR, recursion=False)
                queries.append(_Query(NameSource.MDNS, ip, ip, MDNS_PORT, ident, name, payload))
        return queries

    def _drain(
        self, sock: socket.socket, pending: dict[tuple[str, int, int], _Query]
    ) -> list[NameObservation]:
        found: list[NameObservation] = []
        errors = 0
        for _ in range(DRAIN_BATCH):  # bounded: a flood of datagrams cannot stall the probe
            if errors >= 16:
                break
            try:
                data, (host, port) = sock.recvfrom(MAX_REPLY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                errors += 1  # an ICMP error queued on the socket: that host simply has no answer
                continue
            if len(data) < 2:
                continue
            q = pending.get((host, port, int.from_bytes(data[:2], "big")))
            if q is None or q.settled:
                continue  # not ours, or a late duplicate
            try:
                message = dnswire.parse(data)
            except ValueError:
                continue
            if not message.is_response or not _asks_about(message, q):
                continue
            q.settled = True
            found += [NameObservation(ip=q.ip, name=n, source=q.source) for n in _names(message, q)]
        return found

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def _asks_about(message: dnswire.Message, q: _Query) -> bool:
    """An answer must repeat our question, when it repeats one at all (NBSTAT answers do not)."""
    if not message.questions:
        return True
    name, rtype = message.questions[0]
    return dnswire.same_name(name, q.qname) and rtype in (dnswire.TYPE_PTR, dnswire.TYPE_NBSTAT)


def _names(message: dnswire.Message, q: _Query) -> list[str]:
    """The names an answer gives for our question's address."""
    if q.source == NameSource.NETBIOS:
        for record in message.records:
            if record.rtype == dnswire.TYPE_NBSTAT:
                try:
                    entries = dnswire.netbios_names(record.rdata)
                except ValueError:
                    return []
                unique = [name for name, _suffix, group in entries if not group and name]
                workstation = [
                    name
                    for name, suffix, group in entries
                    if suffix == NETBIOS_WORKSTATION and not group and name
                ]
                return (workstation or unique)[:1]
        return []
    owners = [q.qname]  # plus the targets of CNAMEs in the same answer (RFC 2317 delegation)
    names = []
    for record in message.records:
        if record.rclass & dnswire.MDNS_CLASS_MASK != dnswire.CLASS_IN:
            continue
        if not any(dnswire.same_name(record.name, owner) for owner in owners):
            continue
        try:
            target = message.name_at(record.offset)
        except ValueError:
            continue
        if record.rtype == dnswire.TYPE_CNAME and len(owners) < 8:
            owners.append(target)
        elif record.rtype == dnswire.TYPE_PTR and target:
            names.append(dnswire.text(target))
    return list(dict.fromkeys(names))


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except (ValueError, AttributeError):
        raise InvalidValue(f"{what} {text!r} is not an IPv4 address") from None
