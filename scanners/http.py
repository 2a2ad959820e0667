"""A deliberately small HTTP/1.0 client for looking at devices: one GET, bounded in time and size.

Used for management-page titles and UPnP descriptions. It talks only to an IP literal the caller
has checked against the scope, never resolves names, never follows redirects by itself, and
reads at most `limit` bytes before the deadline, whatever the device sends.
"""

from __future__ import annotations

import html
import re
import socket
import ssl
import time
from dataclasses import dataclass, field

import webencodings

from ipguard.escape import one_line
from ipguard.scanners.base import clipped

DEFAULT_LIMIT = 64 * 1024
TITLE_LIMIT = 255
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.I | re.S)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]{1,40})""", re.I)
_HEADER_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9_-]{1,40})", re.I)


@dataclass(frozen=True)
class HttpReply:
    """What a device answered: status, headers (names lowercased), and the body as read."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False  # the body went on past the size limit

    @property
    def charset(self) -> str | None:
        """The charset the Content-Type header or a <meta> tag declares, if any."""
        match = _HEADER_CHARSET.search(self.headers.get("content-type", ""))
        if match:
            return match.group(1)
        meta = _META_CHARSET.search(self.body[:4096])
        return meta.group(1).decode("ascii") if meta else None

    def text(self, raw: bytes | None = None) -> str:
        """Body (or `raw`) as text: declared charset, else UTF-8, else GB18030, else Latin-1.

        A declared charset is read as a browser reads it (the WHATWG labels: x-sjis is Shift_JIS,
        iso-8859-1 is windows-1252), since device pages are written for browsers.
        """
        raw = self.body if raw is None else raw
        for label in (self.charset, "utf-8", "gb18030"):
            declared = webencodings.lookup(label) if label else None
            try:
                if declared is not None:
                    return str(declared.codec_info.decode(raw)[0])
                if label:
                    return raw.decode(label)
            except (UnicodeDecodeError, LookupError):
                continue
        return raw.decode("latin-1")


def get(
    ip: str,
    port: int,
    path: str = "/",
    *,
    timeout: float,
    limit: int = DEFAULT_LIMIT,
    tls: bool = False,
) -> HttpReply:
    """GET `path` from ip:port (HTTPS without certificate checks when `tls`).

    Raises OSError when the connection fails or times out, ValueError when the reply is not HTTP.
    """
    deadline = time.monotonic() + timeout
    host = f"{ip}:{port}" if port not in (80, 443) else ip
    request = (
        f"GET {_safe_path(path)} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ipguard\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    raw = socket.create_connection((ip, port), timeout=timeout)
    conn: socket.socket = _tls_context().wrap_socket(raw) if tls else raw
    with conn:
        conn.sendall(request)
        data = b""
        while len(data) <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            try:
                chunk = conn.recv(limit + 1 - len(data))
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    return _parse(data, limit)


def title(reply: HttpReply) -> str | None:
    """The page's <title>, unescaped, on one line and at most TITLE_LIMIT characters."""
    match = _TITLE.search(reply.body)
    if match is None:
        return None
    # The one rule of ipguard.escape: hidden characters as escapes, letters and spaces as sent.
    return clipped(one_line(html.unescape(reply.text(match.group(1)))), TITLE_LIMIT) or None


def _parse(data: bytes, limit: int) -> HttpReply:
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    if not lines or not lines[0].startswith("HTTP/"):
        raise ValueError("the answer is not HTTP")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"bad HTTP status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    truncated = len(data) > limit
    return HttpReply(int(parts[1]), headers, body[: max(0, limit - len(head))], truncated)


def _safe_path(path: str) -> str:
    """A request path without spaces or line breaks, so a hostile URL cannot inject headers."""
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return "".join(
        ch if ch.isprintable() and ch != " " else f"%{ord(ch) & 0xFF:02X}" for ch in path
    )


def _tls_context() -> ssl.SSLContext:
    # Devices' management pages use self-signed certificates; we read a title, we trust nothing.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
