"""Proxy probe in the demo lab: tinyproxy and the SOCKS host relay to the canary; others do not.

Beside the scenario's own proxies, real proxies as administrators meet them: Squid as Debian
installs it (it allows localhost only), the same Squid after the one change an administrator
makes to open it to the LAN, and microsocks at its defaults (SOCKS5 only, no authentication).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipguard.errors import InvalidValue, ScanError, ScopeError
from ipguard.model import ProxyVerdict, ServiceObservation
from ipguard.scanners.proxy import METHODS, ProxyProbe, proxy_candidates
from ipguard.scanners.scope import Scope
from tests.lab import daemons
from tests.lab.builder import Lab
from tests.lab.netns import inside

pytestmark = pytest.mark.lab
LIAR_PORT = 8888
Verdicts = tuple[list[ProxyVerdict], list[tuple[int, int]], str]


def relaying(verdicts: list[ProxyVerdict], ip: str, port: int) -> dict[str, bool]:
    return {v.method: v.relays for v in verdicts if (v.ip, v.port) == (ip, port)}


@contextlib.contextmanager
def lying_proxy(lab: Lab, host: str) -> Iterator[str]:
    """A listener on `host` that says yes to every proxy request and relays nothing."""
    with inside(lab.host(host).ns):
        server = socket.create_server(("0.0.0.0", LIAR_PORT))
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(3)
            try:
                first = conn.recv(1024)
                if first.startswith(b"\x05"):
                    conn.sendall(b"\x05\x00")
                    conn.recv(1024)
                    conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
                elif first.startswith(b"\x04"):
                    conn.sendall(b"\x00\x5a" + bytes(6))
                elif first.startswith(b"CONNECT"):
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                while conn.recv(1024):
                    pass
            except OSError:
                pass

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield lab.host(host).ip
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture(scope="module")
def verdicts(demo_lab: Lab) -> Verdicts:
    calls: list[tuple[int, int]] = []
    probe = ProxyProbe(
        Scope([demo_lab.subnet]),
        canary_ip=demo_lab.scanner_ip,
        timeout=2.0,
        progress=lambda done, total: calls.append((done, total)),
    )
    targets = [
        (demo_lab.host("physics-pc06").ip, 3128),  # tinyproxy
        (demo_lab.host("math-pc08").ip, 1080),  # SOCKS4/5
        (demo_lab.host("office-web01").ip, 80),  # an ordinary web server
        (demo_lab.host("math-pc03").ip, 8080),  # Jupyter-like HTTP on a proxy-looking port
        (demo_lab.host("office-pc04").ip, 3128),  # nothing listens
    ]
    with lying_proxy(demo_lab, "office-pc02") as liar, inside(demo_lab.scanner_ns):
        found = probe.probe_many([*targets, (liar, LIAR_PORT)])
    return found, calls, liar


def test_tinyproxy_relays_http_connect_and_get(verdicts: Verdicts, demo_lab: Lab) -> None:
    found, _, _ = verdicts
    tinyproxy = demo_lab.host("physics-pc06").ip
    assert relaying(found, tinyproxy, 3128) == {
        "http-connect": True,
        "http-get": True,
        "socks4": False,
        "socks5": False,
    }
    connect = next(v for v in found if (v.ip, v.method) == (tinyproxy, "http-connect"))
    assert f"canary reached from {tinyproxy}" in connect.detail


def test_socks_proxy_relays_socks4_and_socks5(verdicts: Verdicts, demo_lab: Lab) -> None:
    found, _, _ = verdicts
    assert relaying(found, demo_lab.host("math-pc08").ip, 1080) == {
        "http-connect": False,
        "http-get": False,
        "socks4": True,
        "socks5": True,
    }


@pytest.mark.parametrize(("host", "port"), [("office-web01", 80), ("math-pc03", 8080)])
def test_ordinary_http_listeners_do_not_relay(
    verdicts: Verdicts, demo_lab: Lab, host: str, port: int
) -> None:
    found, _, _ = verdicts
    assert relaying(found, demo_lab.host(host).ip, port) == dict.fromkeys(METHODS, False)


def test_a_proxy_that_says_yes_without_relaying_is_no_relay(verdicts: Verdicts) -> None:
    found, _, liar = verdicts
    assert relaying(found, liar, LIAR_PORT) == dict.fromkeys(METHODS, False)
    said = {v.method: v.detail for v in found if v.ip == liar}
    assert said["http-connect"].startswith("CONNECT answered 'HTTP/1.1 200 Connection established'")
    assert said["http-connect"].endswith("but nothing reached the canary")
    assert said["socks5"].endswith("but nothing reached the canary")


def test_closed_port_is_no_relay_and_says_why(verdicts: Verdicts, demo_lab: Lab) -> None:
    found, _, _ = verdicts
    closed = [v for v in found if v.ip == demo_lab.host("office-pc04").ip]
    assert [v.relays for v in closed] == [False] * 4
    assert all("Connection refused" in v.detail for v in closed)


def test_one_verdict_per_method_and_progress(verdicts: Verdicts) -> None:
    found, calls, _ = verdicts
    assert len(found) == 6 * len(METHODS)
    assert calls[0] == (0, 24) and calls[-1] == (24, 24) and len(calls) == 25


def test_refuses_targets_outside_the_scope(demo_lab: Lab) -> None:
    probe = ProxyProbe(Scope([demo_lab.subnet]), canary_ip=demo_lab.scanner_ip, timeout=1)
    with pytest.raises(ScopeError, match=r"198\.19\.50\.10 is outside"):
        probe.probe_many([(demo_lab.host("physics-pc06").ip, 3128), ("198.19.50.10", 3128)])
    with pytest.raises(InvalidValue, match="not a TCP port"):
        probe.probe(demo_lab.host("physics-pc06").ip, 0)


def test_canary_must_be_the_scanners_own_address(demo_lab: Lab) -> None:
    """The canary binds the address it names: a foreign one fails before any proxy is asked."""
    probe = ProxyProbe(Scope([demo_lab.subnet]), canary_ip="198.18.0.250", timeout=1)
    with inside(demo_lab.scanner_ns), pytest.raises(ScanError, match="canary address"):
        probe.probe(demo_lab.host("physics-pc06").ip, 3128)
    with pytest.raises(InvalidValue):
        ProxyProbe(Scope([demo_lab.subnet]), canary_ip="scanner.example", timeout=1)


def test_candidates_are_proxy_ports_and_http_proxy_or_socks_services() -> None:
    """The rule the scan uses (scanners.suite asks proxy_candidates, and nothing else)."""
    seen = [
        ServiceObservation("198.18.0.35", "tcp", 3128, "squid-http"),
        ServiceObservation("198.18.0.27", "tcp", 1080, "socks5"),
        ServiceObservation("198.18.0.6", "tcp", 80, "http"),
        ServiceObservation("198.18.0.70", "tcp", 8000, "upnp"),  # a proxy port, whatever runs
        ServiceObservation("198.18.0.71", "tcp", 9050, ""),  # Tor's SOCKS port, unnamed
        ServiceObservation("198.18.0.20", "tcp", 22, "ssh"),
        ServiceObservation("198.18.0.3", "udp", 8080, "http-alt"),  # UDP relays nothing here
        ServiceObservation("198.18.0.40", "tcp", 9999, "http-proxy"),
        ServiceObservation("198.18.0.41", "tcp", 4145, "SOCKS4"),  # named so, on no usual port
        ServiceObservation("198.18.0.35", "tcp", 3128, "http-proxy"),  # the same port again
    ]
    assert proxy_candidates(seen) == [
        ("198.18.0.35", 3128),
        ("198.18.0.27", 1080),
        ("198.18.0.6", 80),
        ("198.18.0.70", 8000),
        ("198.18.0.71", 9050),
        ("198.18.0.40", 9999),
        ("198.18.0.41", 4145),
    ]


def squid_plan(host: str, workdir: Path, *, lan_allowed: bool) -> daemons.DaemonPlan:
    """Debian's own squid.conf, read from the package, with only what the lab needs changed.

    Its `include /etc/squid/conf.d/*.conf` line is replaced by the lab's copy of Debian's
    conf.d, in which `lan_allowed` uncomments `http_access allow localnet` as an administrator
    would, with the lab's range added to `localnet` (Debian's lists RFC 1918 ranges only).
    """
    stock = Path("/etc/squid/squid.conf").read_text()
    local = workdir / f"{host}-squid-local.conf"
    local_text = "logfile_rotate 0\n"
    if lan_allowed:
        local_text += "acl localnet src 198.18.0.0/15\nhttp_access allow localnet\n"
    conf_text, included = re.subn(
        r"^include /etc/squid/conf\.d/\*\.conf$", f"include {local}", stock, flags=re.M
    )
    assert included == 1, "Debian's squid.conf no longer includes conf.d"
    conf_text += (
        f"pid_filename {workdir / host}-squid.pid\n"  # one squid per host, not one per machine
        "shutdown_lifetime 0 seconds\n"  # the lab stops it within 2 s; Debian's waits 30 s
    )
    conf = workdir / f"{host}-squid.conf"
    return daemons.DaemonPlan(
        host,
        "squid tcp/3128",
        ("squid", "-N", "-f", str(conf)),  # -N: in the foreground, so that the lab stops it
        ready=(("tcp", 3128),),
        files={str(conf): conf_text, str(local): local_text},
    )


@pytest.fixture(scope="module")
def real_proxies(
    demo_lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ProxyVerdict]]:
    """Probe verdicts for stock Squid, Squid opened to the LAN, and microsocks at defaults."""
    workdir = tmp_path_factory.mktemp("proxies")
    workdir.chmod(0o755)  # squid reads its files as the `proxy` user it drops to
    plans = [
        squid_plan("math-pc02", workdir, lan_allowed=False),
        squid_plan("math-pc04", workdir, lan_allowed=True),
        daemons.DaemonPlan("math-pc06", "microsocks tcp/1080", ("microsocks",), (("tcp", 1080),)),
    ]
    started: list[daemons.Daemon] = []
    try:
        for plan in plans:
            started.append(daemons.start(plan, demo_lab.host(plan.host).ns, workdir))
        daemons.wait_ready(started)
        probe = ProxyProbe(Scope([demo_lab.subnet]), canary_ip=demo_lab.scanner_ip, timeout=2.0)
        targets = [(demo_lab.host(p.host).ip, p.ready[0][1]) for p in plans]
        with inside(demo_lab.scanner_ns):
            yield probe.probe_many(targets)
    finally:
        daemons.stop(started)


def test_squid_as_debian_installs_it_relays_nothing_for_the_lan(
    real_proxies: list[ProxyVerdict], demo_lab: Lab
) -> None:
    found = [v for v in real_proxies if v.ip == demo_lab.host("math-pc02").ip]
    assert relaying(found, demo_lab.host("math-pc02").ip, 3128) == dict.fromkeys(METHODS, False)
    said = {v.method: v.detail for v in found}
    assert said["http-get"].startswith("GET answered 'HTTP/1.1 403 Forbidden'")
    assert said["http-connect"].startswith("CONNECT answered 'HTTP/1.1 403 Forbidden'")


def test_squid_opened_to_the_lan_relays_a_get_but_connects_only_to_443(
    real_proxies: list[ProxyVerdict], demo_lab: Lab
) -> None:
    """Debian's squid.conf keeps `http_access deny CONNECT !SSL_ports`: the canary's high port
    is a Safe_port for GET, but CONNECT is only for 443; one relaying method proves the proxy."""
    ip = demo_lab.host("math-pc04").ip
    assert relaying(real_proxies, ip, 3128) == {
        "http-connect": False,
        "http-get": True,
        "socks4": False,
        "socks5": False,
    }
    get = next(v for v in real_proxies if (v.ip, v.method) == (ip, "http-get"))
    assert f"canary reached from {ip}" in get.detail


def test_microsocks_at_its_defaults_relays_socks5(
    real_proxies: list[ProxyVerdict], demo_lab: Lab
) -> None:
    ip = demo_lab.host("math-pc06").ip
    assert relaying(real_proxies, ip, 1080) == {
        "http-connect": False,
        "http-get": False,
        "socks4": False,
        "socks5": True,
    }
