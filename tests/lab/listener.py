"""Small TCP services for lab hosts: a banner listener and an HTTP server with a chosen page title.

Run inside a host namespace by the builder::

    python -m tests.lab.listener banner --port 22 --text "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    python -m tests.lab.listener http --port 80 --title TL-WR840N --file /rootDesc.xml=DESC.xml

Both bind 0.0.0.0 so they keep answering when the lab moves the host to another address.
"""

from __future__ import annotations

import argparse
import html
import http.server
import socket
import socketserver
import sys
from pathlib import Path
from typing import ClassVar

# A connection silent this long is dropped, as a real server's idle or login timeout drops it
# (OpenSSH's LoginGraceTime: 120 s). Shorter here so abandoned connections do not pile up in the
# lab; still longer than every nmap version probe's wait but one (11 s, nmap-service-probes).
IDLE_TIMEOUT = 10.0


class BannerHandler(socketserver.BaseRequestHandler):
    """Send the banner line, then wait (bounded) for the client to go away."""

    banner = b""

    def handle(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        try:
            if self.banner:
                self.request.sendall(self.banner)
            while self.request.recv(4096):
                pass
        except OSError:
            pass


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Serve a titled HTML page at ``/`` and configured files at their paths."""

    title = "lab"
    files: ClassVar[dict[str, Path]] = {}
    server_version = "lab-httpd/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            title = html.escape(self.title)
            body = (
                f"<!DOCTYPE html><html><head><title>{title}</title></head>"
                f"<body><h1>{title}</h1></body></html>"
            )
            self._send(200, "text/html; charset=utf-8", body.encode(), with_body)
        elif path in self.files:
            self._send(200, "text/xml; charset=utf-8", self.files[path].read_bytes(), with_body)
        else:
            self._send(404, "text/plain", b"not found\n", with_body)

    def _send(self, status: int, ctype: str, body: bytes, with_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)


class Server(socketserver.ThreadingTCPServer):
    """Threaded TCP server that does not keep the process alive for its handler threads."""

    allow_reuse_address = True
    daemon_threads = True
    address_family = socket.AF_INET


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve forever (the lab stops us with SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.listener")
    parser.add_argument("kind", choices=["banner", "http"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--text", default="", help="banner line (banner)")
    parser.add_argument("--title", default="lab", help="page title (http)")
    parser.add_argument("--server", default="", help="Server header (http)")
    parser.add_argument("--file", action="append", default=[], metavar="URLPATH=FILE")
    args = parser.parse_args(argv)

    handler: type[socketserver.BaseRequestHandler]
    if args.kind == "banner":
        text = args.text.encode().decode("unicode_escape").encode("latin-1")
        handler = type("Banner", (BannerHandler,), {"banner": text + b"\r\n" if text else b""})
    else:
        files = {url: Path(path) for url, _, path in (f.partition("=") for f in args.file)}
        attrs: dict[str, object] = {"title": args.title, "files": files}
        if args.server:
            attrs["server_version"] = args.server
        handler = type("Page", (PageHandler,), attrs)
    with Server(("0.0.0.0", args.port), handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
