"""Router/AP evidence in the demo lab: the routers forward, the fake AP announces and names itself,
and ordinary hosts show nothing at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ipguard.errors import InterfaceError, ScopeError
from ipguard.model import Evidence, Observation, ServiceObservation
from ipguard.scanners import http, signs, upnp
from ipguard.scanners.evidence import RouterApEvidence
from ipguard.scanners.scope import Scope
from tests.lab.builder import Lab
from tests.lab.netns import exec_argv, inside
from tests.lab.scenarios import TPLINK_MAC

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab
NMAP_NAMES = {22: "ssh", 23: "telnet", 53: "domain", 443: "https", 515: "printer"}
NOW = datetime.now(UTC)
Collected = tuple[list[Evidence], list[tuple[int, int]]]


def observations(lab: Lab, *names: str) -> list[Observation]:
    """What an ARP sweep of the LAN reports (every host, both MACs of the duplicate IP)."""
    hosts = [h for h in lab.scenario.hosts if h.segment == "lan" and (not names or h.name in names)]
    return [Observation(ip=h.ip, mac=h.mac, seen_at=NOW, source="arp") for h in hosts]


def services(lab: Lab) -> list[ServiceObservation]:
    """The planted services, named as nmap names them."""
    found = []
    for host in lab.scenario.hosts:
        if host.segment != "lan":
            continue
        for port in sorted(host.open_ports()):
            kind = next((s.kind for s in host.services if s.port == port), "")
            name = NMAP_NAMES.get(port) or {"socks": "socks5"}.get(kind, kind)
            found.append(ServiceObservation(ip=host.ip, proto="tcp", port=port, service=name))
    return found


def kinds(found: list[Evidence], ip: str) -> set[str]:
    return {e.kind for e in found if e.ip == ip}


@pytest.fixture(scope="module")
def collected(demo_lab: Lab) -> Collected:
    """One collection over the whole demo LAN (ICMP redirects are rate-limited per peer)."""
    calls: list[tuple[int, int]] = []
    probe = RouterApEvidence(
        demo_lab.scanner_interface,
        Scope([demo_lab.subnet]),
        timeout=1.0,
        progress=lambda done, total: calls.append((done, total)),
    )
    with inside(demo_lab.scanner_ns):
        found = probe.collect(observations(demo_lab), services(demo_lab))
    return found, calls


def test_the_gateway_and_the_nat_router_route(collected: Collected, demo_lab: Lab) -> None:
    found, _ = collected
    gateway, nat = demo_lab.host("office-gw01"), demo_lab.host("rogue-nat")
    assert {"forwarding", "icmp-redirect"} <= kinds(found, gateway.ip)
    # The NAT router forwards, but its conntrack/NAT drops the redirects it generates.
    assert "forwarding" in kinds(found, nat.ip)
    for evidence in found:
        if evidence.ip in (gateway.ip, nat.ip):
            assert evidence.points_to == "router"
            assert (
                evidence.mac
                == demo_lab.host("office-gw01" if evidence.ip == gateway.ip else "rogue-nat").mac
            )
    redirect = next(e for e in found if (e.ip, e.kind) == (gateway.ip, "icmp-redirect"))
    assert redirect.detail.startswith(f"{gateway.ip} redirected our packet for 198.18.0.")


def test_the_fake_ap_announces_and_names_itself(collected: Collected, demo_lab: Lab) -> None:
    found, _ = collected
    ap = demo_lab.host("tplink-ap")
    by_kind = {e.kind: e for e in found if e.ip == ap.ip}
    assert set(by_kind) == {"upnp-igd", "ssdp-ap", "http-title", "vendor"}
    assert all(e.mac == TPLINK_MAC for e in by_kind.values())
    assert by_kind["upnp-igd"].points_to == "router"
    assert by_kind["ssdp-ap"].points_to == "access-point"
    assert "Wireless N Router TL-WR840N / TP-Link / TL-WR840N" in by_kind["ssdp-ap"].detail
    assert "Portable SDK for UPnP devices" in by_kind["ssdp-ap"].detail
    assert (by_kind["http-title"].points_to, by_kind["http-title"].detail) == (
        "access-point",
        "tcp/80: TL-WR840N",
    )
    assert by_kind["vendor"].detail == "OUI registered to TP-LINK TECHNOLOGIES CO.,LTD."


def test_ordinary_hosts_show_no_sign_at_all(collected: Collected, demo_lab: Lab) -> None:
    found, _ = collected
    signs_of = {"office-gw01", "rogue-nat", "tplink-ap"}
    assert {e.ip for e in found} == {demo_lab.host(name).ip for name in signs_of}


def test_progress_counts_phases(collected: Collected) -> None:
    _, calls = collected
    assert calls[0] == (0, 4) and calls[-1] == (4, 4) and len(calls) == 5


@contextlib.contextmanager
def ssdp_liar(lab: Lab, host: str, locations: list[str]) -> Iterator[None]:
    """An SSDP responder on `host` announcing an Internet gateway described elsewhere."""
    with inside(lab.host(host).ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", upnp.PORT))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            for location in locations:
                reply = f"HTTP/1.1 200 OK\r\nST: {upnp.IGD}\r\nLOCATION: {location}\r\n\r\n"
                sock.sendto(reply.encode(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@contextlib.contextmanager
def web_page(
    lab: Lab, host: str, port: int, pages: dict[str, str], delay: float = 0.0
) -> Iterator[None]:
    """An HTTP server on `host`: a path maps to `<title>…` or to `redirect:URL`, each answered
    after `delay` seconds."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            page = pages.get(self.path, "")
            if page.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", page.removeprefix("redirect:"))
                self.end_headers()
                return
            body = f"<html><head><title>{page}</title></head></html>".encode()
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with inside(lab.host(host).ns):
        server = ThreadingHTTPServer(("0.0.0.0", port), Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@contextlib.contextmanager
def dripper(lab: Lab, host: str, port: int, first: bytes) -> Iterator[None]:
    """A TCP listener on `host` that sends `first`, then one byte every 0.2 s, forever."""
    with inside(lab.host(host).ns):
        server = socket.create_server(("0.0.0.0", port))
    server.settimeout(0.05)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.sendall(first)
            while not stop.wait(0.2):
                conn.sendall(b"a")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_page_or_a_tls_handshake_that_never_ends_is_cut_at_the_timeout(demo_lab: Lab) -> None:
    """A device dripping a byte at a time: every read succeeds, so only a deadline ends it."""
    ip = demo_lab.host("office-pc04").ip
    took: dict[bool, float] = {}

    def fetch(port: int, tls: bool) -> None:
        started = time.monotonic()
        with contextlib.suppress(OSError, ValueError):
            http.get(ip, port, timeout=1.0, tls=tls)
        took[tls] = time.monotonic() - started

    page = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<title>"
    handshake = b"\x16\x03\x03\x40\x00"  # a TLS handshake record of 16 KiB, never finished
    with (
        dripper(demo_lab, "office-pc04", 8081, page),
        dripper(demo_lab, "office-pc04", 8443, handshake),
        inside(demo_lab.scanner_ns),
    ):
        threads = [
            threading.Thread(target=fetch, args=(port, tls), daemon=True)
            for port, tls in ((8081, False), (8443, True))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert set(took) == {False, True}, "a GET was still reading after 10 s"
    assert max(took.values()) < 3.0, took


def test_a_slow_management_page_is_still_read(demo_lab: Lab) -> None:
    """An embedded web server taking 1.5 s to render its login page, with the sweep's timeout
    at 1 s: the page fetch waits longer (PAGE_TIMEOUT), and the title is evidence."""
    slow = demo_lab.host("office-pc04")
    seen = [ServiceObservation(slow.ip, "tcp", 8081, "http")]
    probe = RouterApEvidence("eth0", Scope([demo_lab.subnet]), timeout=1.0)
    with (
        web_page(demo_lab, "office-pc04", 8081, {"/": "TL-WR841N Wireless N Router"}, delay=1.5),
        inside(demo_lab.scanner_ns),
    ):
        found = probe.collect(observations(demo_lab, "office-pc04"), seen)
    titles = [e for e in found if e.ip == slow.ip and e.kind == "http-title"]
    assert [e.detail for e in titles] == ["tcp/8081: TL-WR841N Wireless N Router"]


def test_locations_and_redirects_elsewhere_are_never_followed(demo_lab: Lab) -> None:
    liar, other = demo_lab.host("office-pc04"), demo_lab.host("office-pc02")
    ap = demo_lab.host("tplink-ap").ip
    outside = "http://198.19.50.10:80/rootDesc.xml"
    named = "http://router.example/rootDesc.xml"
    seen = [
        ServiceObservation(liar.ip, "tcp", 8081, "http"),
        ServiceObservation(other.ip, "tcp", 8081, "http"),
    ]
    probe = RouterApEvidence("eth0", Scope([demo_lab.subnet]), timeout=1.0)
    with (
        ssdp_liar(demo_lab, "office-pc04", [outside, named]),
        web_page(
            demo_lab,
            "office-pc04",
            8081,
            {"/": "redirect:/cgi-bin/luci", "/cgi-bin/luci": "OpenWrt - LuCI"},
        ),
        web_page(demo_lab, "office-pc02", 8081, {"/": f"redirect:http://{ap}/"}),
        inside(demo_lab.scanner_ns),
    ):
        found = probe.collect(observations(demo_lab, "office-pc04", "office-pc02"), seen)
    mine = {e.kind: e for e in found if e.ip == liar.ip}
    assert set(mine) == {"upnp-igd", "http-title"}
    assert (
        f"LOCATION {outside} not fetched: 198.19.50.10 is outside the scope"
        in mine["upnp-igd"].detail
    )
    assert f"LOCATION {named} not fetched: its host is a name" in mine["upnp-igd"].detail
    assert (mine["http-title"].points_to, mine["http-title"].detail) == (
        "router",
        "tcp/8081: OpenWrt - LuCI",
    )
    # office-pc02 redirects to the AP's page: not followed, so no title is attributed to it.
    assert kinds(found, other.ip) == set()


def test_refuses_addresses_outside_the_scope_before_probing() -> None:
    seen = [Observation(ip="198.19.50.10", mac="02:66:00:00:50:10", seen_at=NOW, source="arp")]
    probe = RouterApEvidence("nosuch0", Scope(["198.18.0.0/24"]), timeout=1.0)
    with pytest.raises(ScopeError, match=r"198\.19\.50\.10 is outside"):
        probe.collect(seen, [])
    with pytest.raises(ScopeError):
        probe.collect([], [ServiceObservation("10.0.0.1", "tcp", 80, "http")])


def test_missing_interface_is_an_interface_error(demo_lab: Lab) -> None:
    probe = RouterApEvidence("nosuch0", Scope([demo_lab.subnet]), timeout=1.0)
    with inside(demo_lab.scanner_ns), pytest.raises(InterfaceError, match="does not exist"):
        probe.collect(observations(demo_lab, "math-pc01"), [])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_without_raw_socket_privilege_says_cap_net_raw(demo_lab: Lab) -> None:
    """The forwarding probe run as nobody inside the scanner namespace: PrivilegeError."""
    pc = demo_lab.host("math-pc01")
    code = (
        "import json\n"
        "from datetime import UTC, datetime\n"
        "from ipguard.model import Observation\n"
        "from ipguard.scanners.evidence import RouterApEvidence\n"
        "from ipguard.scanners.scope import Scope\n"
        f"seen = [Observation('{pc.ip}', '{pc.mac}', datetime.now(UTC), 'arp')]\n"
        f"probe = RouterApEvidence('eth0', Scope(['{demo_lab.subnet}']), timeout=0.5)\n"
        "try:\n"
        "    probe.collect(seen, [])\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
    )
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    out = subprocess.run(
        exec_argv(demo_lab.scanner_ns, [*nobody, sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    ).stdout
    kind, message = json.loads(out)
    assert kind == "PrivilegeError"
    assert "CAP_NET_RAW" in message


# -- the judgements, without a network -----------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "points_to"),
    [
        ("TL-WR840N", "access-point"),
        ("Wireless N Router TL-WR840N", "access-point"),
        ("Archer C6", "access-point"),
        ("水星无线路由器", "access-point"),
        ("AP Management", "access-point"),
        ("Wi-Fi Setup", "access-point"),
        ("OpenWrt - LuCI", "router"),
        ("NETGEAR Router R6220", "router"),
        ("ASUS RT-AC68U", "router"),
        ("D-LINK SYSTEMS, INC. | WIRELESS ROUTER | HOME", "access-point"),
        ("FAST FW325R", "router"),
        ("迅捷网络", "router"),
        ("小米路由器", "router"),
        ("Huawei HG8245H", "router"),
        ("DD-WRT (build 12345)", "router"),
        ("HP LaserJet Pro M404dn", None),
        ("理学院 School of Science", None),
        ("Jupyter Server", None),
        ("化学系 Chemistry", None),
        ("400 Bad Request", None),
        ("Fast food menu", None),
        ("Rapid Application Development", None),
        ("Sapphire apps", None),
    ],
)
def test_page_titles(title: str, points_to: str | None) -> None:
    assert signs.title_points_to(title) == points_to


def test_titles_are_read_in_their_charset() -> None:
    body = "<html><head><title>水星 无线路由器\n MW325R</title></head></html>".encode("gbk")
    reply = http.HttpReply(200, {"content-type": "text/html; charset=gb2312"}, body)
    assert http.title(reply) == "水星 无线路由器 MW325R"
    meta = b'<meta charset="gbk"><title>' + "迅捷".encode("gbk") + b"&amp;co</title>"
    assert http.title(http.HttpReply(200, {}, meta)) == "迅捷&co"


@pytest.mark.parametrize(
    ("label", "title", "encoding"),
    [
        # Labels browsers know (the WHATWG Encoding Standard) that Python's codecs do not.
        ("x-sjis", "バッファロー エアステーション", "shift_jis"),
        ("Windows-31J", "Aterm 設定画面", "cp932"),
        ("x-gbk", "迅捷 无线路由器", "gbk"),
        # Browsers read iso-8859-1 as windows-1252, as the pages were written.
        ("iso-8859-1", "NETGEAR Router\u2122 \u2013 Setup", "cp1252"),
    ],
)
def test_titles_are_read_in_the_charset_a_browser_would_use(
    label: str, title: str, encoding: str
) -> None:
    body = f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'
    body += f"<title>{title}</title>"
    assert http.title(http.HttpReply(200, {}, body.encode(encoding))) == title


@pytest.mark.parametrize(
    ("mac", "router_vendor"),
    [
        (TPLINK_MAC, True),
        ("3c:d9:2b:55:00:05", False),  # Hewlett Packard: the demo's printer
        ("02:18:00:00:00:10", False),  # locally administered: no maker
    ],
)
def test_vendors(mac: str, router_vendor: bool) -> None:
    assert signs.is_router_vendor(signs.vendor_of(mac)) is router_vendor


def test_adjacent_macs_count_only_next_to_other_signs() -> None:
    ips_by_mac = {
        "50:c7:bf:3a:91:0e": ["198.18.0.70"],
        "50:c7:bf:3a:91:0f": ["198.18.0.71"],  # the AP's second interface
        "3c:d9:2b:55:00:05": ["198.18.0.5"],
        "3c:d9:2b:55:00:06": ["198.18.0.8"],  # two HP cards from one batch: no sign
        "02:18:00:00:00:10": ["198.18.0.10"],
        "02:18:00:00:00:11": ["198.18.0.11"],  # locally administered: never adjacent
    }
    vendors = {mac: signs.vendor_of(mac) for mac in ips_by_mac}
    found = signs.adjacency_evidence(ips_by_mac, [], vendors)
    assert {(e.ip, e.mac, e.kind, e.points_to) for e in found} == {
        ("198.18.0.70", "50:c7:bf:3a:91:0e", "mac-adjacency", "access-point"),
        ("198.18.0.71", "50:c7:bf:3a:91:0f", "mac-adjacency", "access-point"),
    }
    assert signs.adjacent_macs(["00:11:22:00:00:ff", "00:11:22:00:01:01", "00:11:23:00:01:00"]) == [
        ("00:11:22:00:00:ff", "00:11:22:00:01:01")
    ]


def test_descriptions_with_a_dtd_are_never_parsed() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
        b"<root><device><deviceType>&a;</deviceType></device></root>"
    )
    assert upnp.parse_description(bomb) is None
    plain = (
        b'<root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
        b"<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
        b"<friendlyName>Gateway</friendlyName><manufacturer>ACME</manufacturer>"
        b"<modelName>X1</modelName></device></root>"
    )
    assert upnp.parse_description(plain) == upnp.Description(
        (upnp.IGD,), friendly_name="Gateway", manufacturer="ACME", model="X1"
    )


def utf16_description(dtd: str, name: str) -> bytes:
    """A UPnP description in UTF-16 (BOM first), its DTD as given, its friendly name `name`."""
    return (
        f'<?xml version="1.0" encoding="UTF-16"?>\n{dtd}\n'
        '<root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
        "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
        f"<friendlyName>{name}</friendlyName></device></root>"
    ).encode("utf-16")


def test_utf16_documents_with_entities_are_refused() -> None:
    """A byte search for "<!DOCTYPE" misses UTF-16; the parser itself must refuse the DTD."""
    laughs = "".join(
        f'<!ENTITY {chr(98 + k)} "{("&" + chr(97 + k) + ";") * 10}">' for k in range(8)
    )
    bomb = utf16_description(f'<!DOCTYPE r [<!ENTITY a "ha">{laughs}]>', "&i;")  # 10⁸ × "ha"
    small = utf16_description('<!DOCTYPE r [<!ENTITY a "Gateway">]>', "&a;&a;")
    for document in (bomb, small):
        assert b"<!DOCTYPE" not in document  # what the old guard looked for
        assert upnp.parse_description(document) is None
    # Without a DTD the same UTF-16 document is a description like any other.
    plain = utf16_description("", "Gateway")
    assert upnp.parse_description(plain) == upnp.Description((upnp.IGD,), "Gateway")
