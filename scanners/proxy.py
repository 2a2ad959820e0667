"""Open-proxy probe: proves relaying with a canary instead of trusting what a proxy says.

ipguard listens on its own address (the canary) and asks the suspect, four ways, to reach it:
HTTP CONNECT, an absolute-URI HTTP GET, SOCKS4 CONNECT and SOCKS5 CONNECT (no authentication).
Each request carries a random token: in the GET's path, or sent through the tunnel once the proxy
says it is open. A method relays only when the canary receives its token. A proxy that answers
"200" but never connects is not a relay, and no address but the canary's is ever asked for.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from ipguard.errors import InvalidValue, ScanError
from ipguard.model import ProxyMethod, ProxyVerdict, ServiceObservation
from ipguard.scanners.base import Progress, clipped
from ipguard.scanners.scope import Scope

WHAT = "proxy probe"
METHODS = tuple(ProxyMethod)
# Ports where proxies usually listen (SOCKS, Squid, HTTP alternates, Privoxy, Tor); any TCP port
# whose service nmap names as HTTP, a proxy or SOCKS is a candidate too (proxy_candidates).
PROXY_PORTS = frozenset({1080, 3128, 8000, 8080, 8081, 8118, 8888, 9050})
PROXY_SERVICE_WORDS = ("http", "proxy", "socks")
MAX_WORKERS = 32
MAX_HEADER = 8192  # bytes of a proxy's answer we read at most
CANARY_READ = 4096  # bytes of a relayed connection the canary reads at most
CANARY_BACKLOG = 128
CANARY_CONNECTIONS = 256  # relayed connections read at once; more are closed unread
TOKEN = re.compile(rb"ipguard-canary-([0-9a-f]{32})")
SOCKS4_GRANTED = 0x5A
SOCKS5_NO_AUTH = 0x00


@dataclass(frozen=True)
class _Answer:
    """What the suspect said to one request: whether it claims to relay, in its own words."""

    opened: bool
    said: str


class ProxyProbe:
    """Asks suspects to relay a connection to a canary on the scanning host, and checks it arrived.

    Example (inside the scanner's network; the canary binds the scanner's own address)::

        probe = ProxyProbe(Scope(["198.18.0.0/24"]), canary_ip="198.18.0.2", timeout=2.0)
        [v for v in probe.probe("198.18.0.35", 3128) if v.relays]
        # [ProxyVerdict(ip='198.18.0.35', port=3128, method='http-connect', relays=True, …), …]
    """

    def __init__(
        self,
        scope: Scope,
        *,
        canary_ip: str,
        timeout: float,
        progress: Progress | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 (got {timeout})")
        try:
            socket.inet_aton(canary_ip)
        except OSError:
            raise InvalidValue(
                f"canary address {canary_ip!r} is not an IPv4 address: "
                "use the scanning host's own address on the scanned network"
            ) from None
        self.scope = scope
        self.canary_ip = canary_ip
        self.timeout = timeout
        self.progress = progress

    def probe(self, ip: str, port: int) -> list[ProxyVerdict]:
        """Try every method on one suspect port; one verdict per method."""
        return self.probe_many([(ip, port)])

    def probe_many(self, targets: Iterable[tuple[str, int]]) -> list[ProxyVerdict]:
        """Try every method on each (ip, port); ScopeError before any probe for an outsider."""
        wanted = list(dict.fromkeys((self.scope.check(ip), _port(port)) for ip, port in targets))
        if not wanted:
            return []
        jobs = [(ip, port, method) for ip, port in wanted for method in METHODS]
        done = 0
        lock = threading.Lock()
        self._report(0, len(jobs))
        with _canary(self.canary_ip, self.timeout) as canary:

            def run(job: tuple[str, int, ProxyMethod]) -> ProxyVerdict:
                nonlocal done
                verdict = self._try(canary, *job)
                with lock:
                    done += 1
                    self._report(done, len(jobs))
                return verdict

            # Worker threads start from this thread, so they share its network namespace.
            with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs))) as pool:
                return list(pool.map(run, jobs))

    def _try(self, canary: _Canary, ip: str, port: int, method: ProxyMethod) -> ProxyVerdict:
        token = secrets.token_hex(16)
        arrived = canary.expect(token)
        deadline = time.monotonic() + self.timeout
        try:
            answer = self._ask(ip, port, method, token, canary.port, deadline)
        except OSError as exc:
            answer = _Answer(False, _error_text(exc))
        # A relayed GET reaches the canary before the proxy answers, a tunnel's token within a
        # round trip of being sent: a short grace is enough, however slow the proxy was.
        left = deadline - time.monotonic()
        relayed = arrived.wait(min(1.0, max(0.2, left)) if answer.opened else 0.2)
        peer = canary.forget(token)
        if relayed:
            detail = f"{answer.said}; canary reached from {peer}"
        elif answer.opened:
            detail = f"{answer.said}, but nothing reached the canary"
        else:
            detail = answer.said
        return ProxyVerdict(
            ip=ip, port=port, method=method, relays=relayed, detail=clipped(detail, 255)
        )

    def _ask(
        self, ip: str, port: int, method: ProxyMethod, token: str, canary_port: int, deadline: float
    ) -> _Answer:
        canary = f"{self.canary_ip}:{canary_port}"
        with socket.create_connection((ip, port), timeout=self.timeout) as conn:
            if method == ProxyMethod.HTTP_GET:
                request = (
                    f"GET http://{canary}/ipguard-canary-{token} HTTP/1.1\r\n"
                    f"Host: {canary}\r\nUser-Agent: ipguard\r\nConnection: close\r\n\r\n"
                )
                conn.sendall(request.encode())
                status = _status_line(_read_head(conn, deadline))
                return _Answer(True, f"GET answered {status!r}")
            if method == ProxyMethod.HTTP_CONNECT:
                conn.sendall(f"CONNECT {canary} HTTP/1.1\r\nHost: {canary}\r\n\r\n".encode())
                status = _status_line(_read_head(conn, deadline))
                opened = re.match(r"HTTP/1\.[01] 2\d\d", status) is not None
                return self._through(conn, opened, f"CONNECT answered {status!r}", token)
            address = socket.inet_aton(self.canary_ip) + struct.pack("!H", canary_port)
            if method == ProxyMethod.SOCKS4:
                conn.sendall(b"\x04\x01" + address[4:] + address[:4] + b"ipguard\x00")
                reply = _read_exact(conn, 8, deadline)
                opened = len(reply) == 8 and reply[1] == SOCKS4_GRANTED
                return self._through(
                    conn, opened, f"SOCKS4 answered {reply.hex() or 'nothing'}", token
                )
            conn.sendall(b"\x05\x01\x00")
            hello = _read_exact(conn, 2, deadline)
            if hello != b"\x05\x00":
                return _Answer(False, f"SOCKS5 greeting answered {hello.hex() or 'nothing'}")
            conn.sendall(b"\x05\x01\x00\x01" + address)
            reply = _read_exact(conn, 10, deadline)
            opened = len(reply) == 10 and reply[1] == SOCKS5_NO_AUTH
            return self._through(conn, opened, f"SOCKS5 answered {reply.hex() or 'nothing'}", token)

    @staticmethod
    def _through(conn: socket.socket, opened: bool, said: str, token: str) -> _Answer:
        """Send the token through a tunnel the proxy says is open."""
        if opened:
            conn.sendall(f"ipguard-canary-{token}\r\n".encode())
        return _Answer(opened, said)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def proxy_candidates(services: Iterable[ServiceObservation]) -> list[tuple[str, int]]:
    """The open TCP ports the scan asks to relay (the one rule): proxy ports, HTTP, proxy, SOCKS.

    Each (ip, port) once, in the order first seen.
    """
    found = []
    for seen in services:
        name = seen.service.lower()
        if seen.proto == "tcp" and (
            seen.port in PROXY_PORTS or any(word in name for word in PROXY_SERVICE_WORDS)
        ):
            found.append((seen.ip, seen.port))
    return list(dict.fromkeys(found))


class _Canary:
    """A TCP listener on the scanning host that records which tokens relayed connections carry."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        self.port: int = sock.getsockname()[1]
        self._waiting: dict[str, threading.Event] = {}
        self._peers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(CANARY_CONNECTIONS)
        self._thread = threading.Thread(target=self._serve, name="ipguard-canary", daemon=True)

    def expect(self, token: str) -> threading.Event:
        """An event set when a connection carrying `token` arrives."""
        event = threading.Event()
        with self._lock:
            self._waiting[token] = event
        return event

    def forget(self, token: str) -> str | None:
        """Stop waiting for `token`; returns the address its connection came from, if it came."""
        with self._lock:
            self._waiting.pop(token, None)
            return self._peers.pop(token, None)

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                conn.close()  # a flood of connections: the relays we asked for come first anyway
                continue
            threading.Thread(
                target=self._handle, args=(conn, peer[0]), name="ipguard-canary-conn", daemon=True
            ).start()

    def _handle(self, conn: socket.socket, peer: str) -> None:
        deadline = time.monotonic() + self._timeout
        data = b""
        with conn, _released(self._slots):
            try:
                while len(data) < CANARY_READ and not TOKEN.search(data):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    conn.settimeout(left)
                    chunk = conn.recv(CANARY_READ - len(data))
                    if not chunk:
                        break
                    data += chunk
                match = TOKEN.search(data)
                if match is None:
                    return
                self._arrived(match.group(1).decode(), peer)
                body = b"ipguard canary\n"
                reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                conn.sendall(reply + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                return

    def _arrived(self, token: str, peer: str) -> None:
        with self._lock:
            event = self._waiting.get(token)
            if event is not None:
                self._peers[token] = peer
                event.set()

    def start(self) -> None:
        """Start accepting relayed connections."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting and close the listener (connections being read finish on their own)."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._sock.close()


@contextmanager
def _released(slots: threading.BoundedSemaphore) -> Iterator[None]:
    try:
        yield
    finally:
        slots.release()


@contextmanager
def _canary(ip: str, timeout: float) -> Iterator[_Canary]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((ip, 0))
        sock.listen(CANARY_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ScanError(
            f"{WHAT}: cannot listen on the canary address {ip} ({exc.strerror}): "
            "it must be the scanning host's own address on the scanned network"
        ) from exc
    canary = _Canary(sock, timeout)
    canary.start()
    try:
        yield canary
    finally:
        canary.close()


def _port(port: int) -> int:
    if not 0 < int(port) < 65536:
        raise InvalidValue(f"port {port} is not a TCP port (1-65535)")
    return int(port)


def _read_head(conn: socket.socket, deadline: float) -> bytes:
    """Read a reply up to the end of its header (or MAX_HEADER bytes, EOF, the deadline)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEADER:
        chunk = _recv(conn, MAX_HEADER - len(data), deadline)
        if not chunk:
            break
        data += chunk
    return data


def _read_exact(conn: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        chunk = _recv(conn, size - len(data), deadline)
        if not chunk:
            break
        data += chunk
    return data


def _recv(conn: socket.socket, size: int, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        return b""
    conn.settimeout(left)
    try:
        return conn.recv(size)
    except TimeoutError:
        return b""


def _status_line(head: bytes) -> str:
    line = head.split(b"\r\n", 1)[0][:120]
    return line.decode("latin-1") if line else "nothing"


def _error_text(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"connection failed: {exc.strerror or exc}"
