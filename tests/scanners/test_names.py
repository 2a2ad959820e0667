"""Name probe in the demo lab: PTR names from the lab DNS, NetBIOS and mDNS names from responders.

The demo runs no NetBIOS or mDNS daemon, so the NetBIOS/mDNS tests answer from a UDP responder the
test opens inside a lab host's namespace (a real exchange over the lab network, bytes written here).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipguard.errors import InvalidValue, ScopeError
from ipguard.model import NameObservation
from ipguard.scanners import dnswire
from ipguard.scanners.names import NameProbe
from ipguard.scanners.scope import Scope
from tests.lab import daemons
from tests.lab.builder import Lab
from tests.lab.netns import inside

pytestmark = pytest.mark.lab
GBK_NAME = "财务-PC02"
EVIL_LABELS = (b"\x1b[31mevil", *(bytes([0x61 + k]) * 63 for k in range(5)), b"local")

Answer = Callable[[bytes], bytes | None]


def nbstat_answer(names: list[tuple[bytes, int, int]], count: int | None = None) -> Answer:
    """A NetBIOS node status reply listing `names` as (name, suffix, flags)."""

    def answer(query: bytes) -> bytes:
        table = bytes([len(names) if count is None else count])
        for name, suffix, flags in names:
            table += name.ljust(15, b" ") + bytes([suffix]) + struct.pack("!H", flags)
        table += bytes(6 + 40)  # unit id (MAC) and statistics
        header = query[:2] + struct.pack("!HHHHH", 0x8400, 0, 1, 0, 0)
        name = dnswire.encode_name(dnswire.netbios_wildcard())
        return header + name + struct.pack("!HHIH", 0x21, 1, 0, len(table)) + table

    return answer


def mdns_ptr_answer(target: tuple[bytes, ...]) -> Answer:
    """An mDNS legacy-unicast reply: our question echoed, one PTR (cache-flush bit) to `target`."""

    def answer(query: bytes) -> bytes:
        message = dnswire.parse(query)
        name, _ = message.questions[0]
        rdata = dnswire.encode_name(target)
        header = query[:2] + struct.pack("!HHHHH", 0x8400, 1, 1, 0, 0)
        question = dnswire.encode_name(name) + struct.pack("!HH", dnswire.TYPE_PTR, 1)
        record = b"\xc0\x0c" + struct.pack("!HHIH", dnswire.TYPE_PTR, 0x8001, 120, len(rdata))
        return header + question + record + rdata

    return answer


@contextlib.contextmanager
def responder(lab: Lab, host: str, answers: dict[int, Answer]) -> Iterator[None]:
    """Answer UDP queries on `host` (port → answer function) until the block ends."""
    with inside(lab.host(host).ns):
        socks = {}
        for port in answers:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", port))
            socks[sock] = answers[port]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            ready, _, _ = select.select(list(socks), [], [], 0.05)
            for sock in ready:
                query, peer = sock.recvfrom(2048)
                reply = socks[sock](query)
                if reply:
                    sock.sendto(reply, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        for sock in socks:
            sock.close()


def lan_ips(lab: Lab) -> list[str]:
    return list(dict.fromkeys(h.ip for h in lab.scenario.hosts if h.segment == "lan"))


def names_by_ip(found: list[NameObservation], source: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for seen in found:
        if seen.source == source:
            out.setdefault(seen.ip, set()).add(seen.name)
    return out


def test_reverse_dns_gives_every_planted_name(demo_lab: Lab) -> None:
    assert demo_lab.dns_server is not None
    calls: list[tuple[int, int]] = []
    probe = NameProbe(
        Scope([demo_lab.subnet]),
        dns_servers=[demo_lab.dns_server],
        timeout=1.0,
        netbios=False,
        mdns=False,
        progress=lambda done, total: calls.append((done, total)),
    )
    targets = lan_ips(demo_lab)
    with inside(demo_lab.scanner_ns):
        found = probe.lookup(targets)
    expected: dict[str, set[str]] = {}
    for name, ip in demo_lab.scenario.dns_records():
        if ip in targets:
            expected.setdefault(ip, set()).add(name)
    assert names_by_ip(found, "dns") == expected
    assert names_by_ip(found, "dns")[demo_lab.host("physics-pc12").ip] == {"zhangwei-laptop"}
    assert calls == [(0, len(targets)), (len(targets), len(targets))]


def test_netbios_and_mdns_names_come_from_the_host_itself(demo_lab: Lab) -> None:
    assert demo_lab.dns_server is not None
    netbios = nbstat_answer(
        [
            (
                GBK_NAME.encode("gbk"),
                0x00,
                0x0400,
            ),  # the workstation name, as Chinese Windows has it
            (b"WORKGROUP", 0x00, 0x8400),  # a group name: not a hostname
            (GBK_NAME.encode("gbk"), 0x20, 0x0400),
        ]
    )
    mdns = mdns_ptr_answer((b"office-pc02", b"local"))
    pc02 = demo_lab.host("office-pc02").ip
    probe = NameProbe(Scope([demo_lab.subnet]), dns_servers=[demo_lab.dns_server], timeout=1.0)
    with (
        responder(demo_lab, "office-pc02", {137: netbios, 5353: mdns}),
        inside(demo_lab.scanner_ns),
    ):
        found = probe.lookup([pc02, demo_lab.host("office-pc04").ip])
    assert {(o.ip, o.name, o.source) for o in found} == {
        (pc02, GBK_NAME, "netbios"),
        (pc02, "office-pc02", "dns"),
        (pc02, "office-pc02.local", "mdns"),
        (demo_lab.host("office-pc04").ip, "office-pc04", "dns"),
    }
    assert len(found) == 4


@contextlib.contextmanager
def avahi(lab: Lab, host: str, hostname: str, workdir: Path) -> Iterator[None]:
    """Avahi, Linux's mDNS responder, on `host`: Debian's avahi-daemon.conf as packaged, with the
    one change the lab needs (enable-dbus=no: no system bus there). It runs in a UTS namespace
    of its own, named `hostname`, with its pid file on a private /run/avahi-daemon (one avahi per
    machine otherwise), dropping root and chrooting as it does at its defaults."""
    conf = workdir / "avahi-daemon.conf"
    stock = Path("/etc/avahi/avahi-daemon.conf").read_text()
    conf.write_text(stock.replace("[server]\n", "[server]\nenable-dbus=no\n", 1))
    assert "enable-dbus=no" in conf.read_text(), "Debian's avahi-daemon.conf has no [server]"
    script = (
        "mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && "
        f'hostname {hostname} && exec avahi-daemon -f "$1"'
    )
    argv = ["unshare", "--mount", "--uts", "sh", "-c", script, "avahi", str(conf)]
    plan = daemons.DaemonPlan(host, "avahi-daemon udp/5353", tuple(argv), (("udp", 5353),),
                              ready_log="Server startup complete")  # fmt: skip
    started = daemons.start(plan, lab.host(host).ns, workdir)
    try:
        daemons.wait_ready([started])
        yield
    finally:
        daemons.stop([started])


def test_avahi_answers_with_the_name_it_announces(
    demo_lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A real mDNS responder (Linux desktops, many printers and NAS boxes run Avahi) answers the
    probe's unicast reverse query with its host name in .local."""
    workdir = tmp_path_factory.mktemp("avahi")
    workdir.chmod(0o755)  # avahi reads its configuration before dropping root
    target = demo_lab.host("math-pc06").ip
    probe = NameProbe(Scope([demo_lab.subnet]), dns_servers=[], timeout=1.0, netbios=False)
    with avahi(demo_lab, "math-pc06", "li-wei-desktop", workdir), inside(demo_lab.scanner_ns):
        found = probe.lookup([target])
    assert {(o.ip, o.name, o.source) for o in found} == {(target, "li-wei-desktop.local", "mdns")}


def test_hostile_answers_are_kept_faithfully_but_bounded(demo_lab: Lab) -> None:
    """A 335-character name with an escape sequence; a NetBIOS table that lies about its size."""
    pc04 = demo_lab.host("office-pc04").ip
    answers = {
        137: nbstat_answer([(b"LIAR", 0x00, 0x0400)], count=200),
        5353: mdns_ptr_answer(EVIL_LABELS),
    }
    probe = NameProbe(Scope([demo_lab.subnet]), dns_servers=[], timeout=1.0)
    with responder(demo_lab, "office-pc04", answers), inside(demo_lab.scanner_ns):
        found = probe.lookup([pc04])
    (mdns,) = found
    assert mdns.source == "mdns"
    assert mdns.name == b".".join(EVIL_LABELS).decode()[:254] + "…"  # cut, and it says so
    assert mdns.name.startswith("\x1b[31mevil.aaa") and len(mdns.name) == 255


def test_dns_servers_may_lie_outside_the_scope_but_targets_may_not(demo_lab: Lab) -> None:
    assert demo_lab.dns_server is not None
    scope = Scope(["198.18.0.16/28"])  # math hosts only; the DNS server (.3) is outside
    probe = NameProbe(scope, dns_servers=[demo_lab.dns_server], timeout=1.0, mdns=False)
    with inside(demo_lab.scanner_ns):
        found = probe.lookup([demo_lab.host("math-pc01").ip])
        with pytest.raises(ScopeError, match=r"198\.18\.0\.3 is outside"):
            probe.lookup([demo_lab.host("math-pc01").ip, demo_lab.dns_server])
    assert [(o.name, o.source) for o in found] == [("math-pc01", "dns")]


def test_bad_dns_server_is_refused() -> None:
    with pytest.raises(InvalidValue, match="DNS server"):
        NameProbe(Scope(["198.18.0.0/24"]), dns_servers=["ns1.example"], timeout=1)


# -- the wire format, against hostile bytes ------------------------------------------------------


def test_query_names_are_encoded_as_the_protocols_want() -> None:
    assert dnswire.reverse_name("198.18.0.7") == (b"7", b"0", b"18", b"198", b"in-addr", b"arpa")
    assert dnswire.netbios_wildcard() == (b"CK" + b"A" * 30,)
    query = dnswire.query(
        0x1234, dnswire.reverse_name("198.18.0.7"), dnswire.TYPE_PTR, recursion=True
    )
    message = dnswire.parse(query)
    assert (message.ident, message.is_response, message.questions) == (
        0x1234,
        False,
        ((dnswire.reverse_name("198.18.0.7"), dnswire.TYPE_PTR),),
    )


HEADER_ONE_ANSWER = struct.pack("!HHHHHH", 1, 0x8400, 0, 1, 0, 0)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x00\x01\x84\x00",  # shorter than a header
        HEADER_ONE_ANSWER,  # promises a record it lacks
        HEADER_ONE_ANSWER + b"\xc0\x0c",  # pointer to itself
        HEADER_ONE_ANSWER + b"\xc0\x20" + bytes(40),  # pointer forward
        HEADER_ONE_ANSWER + b"\x3fabc",  # label runs past the end
        HEADER_ONE_ANSWER + b"\x40abc",  # reserved label type
        HEADER_ONE_ANSWER + b"\x00" + struct.pack("!HHIH", 12, 1, 0, 500) + b"x",  # rdata too long
        HEADER_ONE_ANSWER + b"\x01a" * 200 + b"\x00",  # too many labels
    ],
)
def test_malformed_messages_are_value_errors(message: bytes) -> None:
    with pytest.raises(ValueError):
        dnswire.parse(message)


def test_names_are_text_with_visible_bad_bytes_and_a_length_cap() -> None:
    assert dnswire.text((b"host", b"\xff\xfe", b"local")) == "host.\\xff\\xfe.local"
    assert len(dnswire.text((b"a" * 63,) * 5)) == 255
    assert dnswire.text((b"a" * 63,) * 5).endswith("a…")
