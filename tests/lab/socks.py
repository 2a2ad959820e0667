"""A small open SOCKS4/4a/5 proxy for the lab: no authentication, CONNECT only.

It relays only to addresses inside ``--allow`` (the lab range by default) and never resolves names,
so whatever a scanner asks it to reach, the traffic stays in the lab::

    python -m tests.lab.socks --port 1080 --allow 198.18.0.0/15
"""

from __future__ import annotations

import argparse
import ipaddress
import selectors
import socket
import socketserver
import struct
import sys
import time

IDLE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
MAX_RELAY_SECONDS = 300.0

SOCKS5_OK, SOCKS5_FAILURE, SOCKS5_NOT_ALLOWED, SOCKS5_HOST_UNREACHABLE = 0, 1, 2, 4
SOCKS5_REFUSED, SOCKS5_BAD_COMMAND, SOCKS5_BAD_ADDRESS = 5, 7, 8
SOCKS4_GRANTED, SOCKS4_REJECTED = 0x5A, 0x5B


class ProtocolError(Exception):
    """The client spoke something that is not SOCKS."""


class SocksHandler(socketserver.BaseRequestHandler):
    """One client connection: handshake, CONNECT, then relay both ways."""

    allowed = ipaddress.ip_network("198.18.0.0/15")

    def handle(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        try:
            version = self._read(1)[0]
            if version == 5:
                self._socks5()
            elif version == 4:
                self._socks4()
        except (OSError, ProtocolError):
            pass

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                raise ProtocolError("client closed the connection mid-request")
            data += chunk
        return data

    def _read_until_nul(self, limit: int = 256) -> bytes:
        data = b""
        while not data.endswith(b"\0"):
            data += self._read(1)
            if len(data) > limit:
                raise ProtocolError("unterminated SOCKS4 field")
        return data[:-1]

    def _socks5(self) -> None:
        methods = self._read(self._read(1)[0])
        if 0 not in methods:
            self.request.sendall(b"\x05\xff")
            return
        self.request.sendall(b"\x05\x00")
        version, command, _reserved, atyp = self._read(4)
        if version != 5:
            raise ProtocolError("bad SOCKS5 request version")
        host: str | None = None
        if atyp == 1:
            host = socket.inet_ntoa(self._read(4))
        elif atyp == 3:
            host = self._read(self._read(1)[0]).decode("ascii", "replace")
        elif atyp == 4:
            self._read(16)
        port = struct.unpack("!H", self._read(2))[0]
        if command != 1:
            return self._reply5(SOCKS5_BAD_COMMAND)
        target = _literal_ipv4(host)
        if target is None:
            return self._reply5(SOCKS5_BAD_ADDRESS if atyp == 4 else SOCKS5_HOST_UNREACHABLE)
        if target not in self.allowed:
            return self._reply5(SOCKS5_NOT_ALLOWED)
        upstream = self._connect(str(target), port)
        if upstream is None:
            return self._reply5(SOCKS5_REFUSED)
        bound_ip, bound_port = upstream.getsockname()[:2]
        self._reply5(SOCKS5_OK, bound_ip, bound_port)
        _relay(self.request, upstream)

    def _reply5(self, code: int, ip: str = "0.0.0.0", port: int = 0) -> None:
        self.request.sendall(
            bytes([5, code, 0, 1]) + socket.inet_aton(ip) + struct.pack("!H", port)
        )

    def _socks4(self) -> None:
        command = self._read(1)[0]
        port, raw_ip = struct.unpack("!H4s", self._read(6))
        self._read_until_nul()  # user id, ignored: no authentication
        host = socket.inet_ntoa(raw_ip)
        if raw_ip[:3] == b"\0\0\0" and raw_ip[3] != 0:  # SOCKS4a: a name follows
            host = self._read_until_nul().decode("ascii", "replace")
        target = _literal_ipv4(host)
        if command != 1 or target is None or target not in self.allowed:
            return self._reply4(SOCKS4_REJECTED)
        upstream = self._connect(str(target), port)
        if upstream is None:
            return self._reply4(SOCKS4_REJECTED)
        self._reply4(SOCKS4_GRANTED, port, raw_ip)
        _relay(self.request, upstream)

    def _reply4(self, code: int, port: int = 0, raw_ip: bytes = b"\0\0\0\0") -> None:
        self.request.sendall(bytes([0, code]) + struct.pack("!H", port) + raw_ip)

    @staticmethod
    def _connect(host: str, port: int) -> socket.socket | None:
        try:
            return socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError:
            return None


def _literal_ipv4(host: str | None) -> ipaddress.IPv4Address | None:
    """The address if ``host`` is a dotted IPv4 literal; names are never resolved (no DNS leaks)."""
    try:
        return ipaddress.IPv4Address(host or "")
    except ValueError:
        return None


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes, goes idle, or the relay hits its time cap."""
    deadline = time.monotonic() + MAX_RELAY_SECONDS
    peers = {client: upstream, upstream: client}
    with upstream, selectors.DefaultSelector() as sel:
        for sock in peers:
            sock.settimeout(IDLE_TIMEOUT)  # bounds sendall to a peer that stopped reading
            sel.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            events = sel.select(timeout=IDLE_TIMEOUT)
            if not events:
                return
            for key, _ in events:
                src = key.fileobj
                assert isinstance(src, socket.socket)
                data = src.recv(65536)
                if not data:
                    return
                peers[src].sendall(data)


class Server(socketserver.ThreadingTCPServer):
    """Threaded server; handler threads do not keep the process alive."""

    allow_reuse_address = True
    daemon_threads = True


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve forever (the lab stops us with SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.socks")
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=1080)
    parser.add_argument("--allow", default="198.18.0.0/15", help="targets the proxy may connect to")
    args = parser.parse_args(argv)
    handler = type("Handler", (SocksHandler,), {"allowed": ipaddress.ip_network(args.allow)})
    with Server((args.listen, args.port), handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
