"""DHCP probe in the demo lab: both servers' offers (authorised and rogue), with who sent them."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipguard.errors import InterfaceError, InvalidValue, ScopeError
from ipguard.model import DhcpOffer
from ipguard.scanners.dhcp import (
    DhcpProbe,
    listen_window,
    parse_offer,
    random_client_mac,
    retransmit_times,
)
from ipguard.scanners.dhcpwire import build_discover
from ipguard.scanners.scope import Scope
from tests.lab.builder import Lab
from tests.lab.netns import exec_argv, inside

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def python_in_scanner(lab: Lab, code: str, prefix: list[str] | None = None) -> str:
    """What Python ``code`` prints, run in a new process inside the lab's scanner namespace."""
    return subprocess.run(
        exec_argv(lab.scanner_ns, [*(prefix or []), sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    ).stdout


def in_range(ip: str, first: str, last: str) -> bool:
    address = ipaddress.IPv4Address
    return address(first) <= address(ip) <= address(last)


@pytest.fixture(scope="module")
def offers(demo_lab: Lab) -> list[DhcpOffer]:
    probe = DhcpProbe(demo_lab.scanner_interface, Scope([demo_lab.subnet]))  # default wait, 6 s
    with inside(demo_lab.scanner_ns):
        found = probe.probe()
    # RFC 2131's retransmission, 4 ± 1 s after the first DISCOVER (late under load), in the window.
    assert len(probe.sent) == 2 and 3.0 <= probe.sent[1] < probe.wait, probe.sent
    return found


def test_collects_the_offer_of_every_server(offers: list[DhcpOffer], demo_lab: Lab) -> None:
    servers = {(o.server_ip, o.server_mac) for o in offers}
    authorised, rogue = demo_lab.host("office-srv01"), demo_lab.host("physics-pc07")
    assert servers == {(authorised.ip, authorised.mac), (rogue.ip, rogue.mac)}
    assert len(offers) == 2  # the repeated DISCOVER does not double them


def test_reads_address_router_and_dns_of_each_offer(offers: list[DhcpOffer], demo_lab: Lab) -> None:
    by_server = {o.server_ip: o for o in offers}
    authorised = by_server[demo_lab.host("office-srv01").ip]
    assert in_range(authorised.offered_ip, "198.18.0.100", "198.18.0.149")
    assert authorised.router == "198.18.0.1"
    assert authorised.dns == (demo_lab.host("office-srv01").ip,)
    rogue = by_server[demo_lab.host("physics-pc07").ip]
    assert in_range(rogue.offered_ip, "198.18.0.150", "198.18.0.199")
    assert rogue.router == demo_lab.host("physics-pc07").ip  # dnsmasq names itself by default
    assert all(o.seen_at is not None and o.seen_at.tzinfo is not None for o in offers)
    # Both are dnsmasq at its defaults: each pings the address before offering it (PING_WAIT 3),
    # so the first probe of the lab hears them about 3 s late.
    assert all(o.latency is not None and 2.5 <= o.latency < 6.0 for o in offers), offers


def test_offers_from_servers_outside_the_scope_are_still_recorded(demo_lab: Lab) -> None:
    """A /28 around the scanner leaves the rogue server (.36) outside: its offer is evidence."""
    client = "02:00:5e:12:34:56"
    probe = DhcpProbe("eth0", Scope(["198.18.0.0/28"]), client_mac=client)
    assert probe.client_mac == client
    with inside(demo_lab.scanner_ns):
        found = probe.probe()
    assert demo_lab.host("physics-pc07").ip in {o.server_ip for o in found}
    assert "198.18.0.36" not in Scope(["198.18.0.0/28"])


def test_refuses_an_interface_whose_network_is_outside_the_scope(demo_lab: Lab) -> None:
    probe = DhcpProbe("eth0", Scope(["198.19.0.0/24"]), wait=1.0)
    with inside(demo_lab.scanner_ns), pytest.raises(ScopeError, match=r"eth0 \(198\.18\.0\.2\)"):
        probe.probe()


def test_missing_interface_is_an_interface_error(demo_lab: Lab) -> None:
    probe = DhcpProbe("nosuch0", Scope([demo_lab.subnet]), wait=1.0)
    with inside(demo_lab.scanner_ns), pytest.raises(InterfaceError, match="does not exist"):
        probe.probe()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_without_raw_socket_privilege_says_cap_net_raw(demo_lab: Lab) -> None:
    """The probe run as nobody inside the scanner namespace: PrivilegeError naming CAP_NET_RAW."""
    code = (
        "import json\n"
        "from ipguard.scanners.dhcp import DhcpProbe\n"
        "from ipguard.scanners.scope import Scope\n"
        "try:\n"
        f"    DhcpProbe('eth0', Scope(['{demo_lab.subnet}']), wait=0.5).probe()\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
    )
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    kind, message = json.loads(python_in_scanner(demo_lab, code, nobody))
    assert kind == "PrivilegeError"
    assert "CAP_NET_RAW" in message


def test_random_client_macs_are_locally_administered_unicast() -> None:
    macs = {random_client_mac() for _ in range(50)}
    assert len(macs) == 50
    assert all(mac.startswith("02:") and len(mac) == 17 for mac in macs)


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "02:00:00", "zz:00:00:00:00:00"])
def test_bad_client_macs_are_refused(mac: str) -> None:
    with pytest.raises(InvalidValue):
        DhcpProbe("eth0", Scope(["198.18.0.0/24"]), wait=1, client_mac=mac)


def test_only_offers_for_our_transaction_count() -> None:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def frame(xid: int, kind: str) -> bytes:
        return bytes(
            Ether(src="02:18:00:00:00:03", dst="ff:ff:ff:ff:ff:ff")
            / IP(src="198.18.0.3", dst="255.255.255.255")
            / UDP(sport=67, dport=68)
            / BOOTP(op=2, xid=xid, yiaddr="198.18.0.120")
            / DHCP(
                options=[
                    ("message-type", kind),
                    ("server_id", "198.18.0.3"),
                    ("router", "198.18.0.1"),
                    ("name_server", "198.18.0.3", "198.18.0.4"),
                    "end",
                ]
            )
        )

    offer = parse_offer(frame(7, "offer"), 7)
    assert offer == DhcpOffer(
        server_ip="198.18.0.3",
        server_mac="02:18:00:00:00:03",
        offered_ip="198.18.0.120",
        router="198.18.0.1",
        dns=("198.18.0.3", "198.18.0.4"),
    )
    assert parse_offer(frame(8, "offer"), 7) is None
    assert parse_offer(frame(7, "ack"), 7) is None
    assert parse_offer(b"\x00" * 60, 7) is None


def test_truncated_options_make_no_offer() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def frame(options: bytes) -> bytes:
        bootp = bytes([2, 1, 6, 0]) + (7).to_bytes(4, "big") + bytes(228) + b"\x63\x82\x53\x63"
        return bytes(
            Ether(src="02:18:00:00:00:03", dst="ff:ff:ff:ff:ff:ff")
            / IP(src="198.18.0.3", dst="255.255.255.255")
            / UDP(sport=67, dport=68)
            / (bootp + options)
        )

    assert parse_offer(frame(b"\x35\x01\x02\x36\x10\xc6\x12"), 7) is None  # 16 bytes? 2
    assert parse_offer(frame(b"\x35\x01\x02\x36\x04\xc6\x12\x00\x03\xff"), 7) is not None


def test_reads_an_offer_unicast_to_our_client_mac() -> None:
    """Servers that ignore the broadcast flag send to the offered address at our MAC."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    client = "02:00:5e:12:34:56"
    frame = bytes(
        Ether(src="02:18:00:00:00:44", dst=client)
        / IP(src="198.18.0.44", dst="198.18.0.200")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, xid=9, yiaddr="198.18.0.200", chaddr=bytes.fromhex(client.replace(":", "")))
        / DHCP(options=[("message-type", "offer"), "end"])
    )
    offer = parse_offer(frame, 9)
    assert offer is not None
    assert (offer.server_ip, offer.server_mac, offer.offered_ip) == (
        "198.18.0.44",
        "02:18:00:00:00:44",
        "198.18.0.200",
    )


def test_the_discover_is_what_a_client_broadcasts() -> None:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    client = "02:00:5e:12:34:56"
    packet = Ether(build_discover(client, 0xDEADBEEF, secs=4))
    assert (packet.src, packet.dst) == (client, "ff:ff:ff:ff:ff:ff")
    assert (packet[IP].src, packet[IP].dst, packet[UDP].sport, packet[UDP].dport) == (
        "0.0.0.0",
        "255.255.255.255",
        68,
        67,
    )
    checked = Ether(bytes(packet))
    del checked[IP].chksum  # scapy recomputes it: ours must be the same
    assert Ether(bytes(checked))[IP].chksum == packet[IP].chksum
    bootp = packet[BOOTP]
    assert (bootp.op, bootp.xid, bootp.flags, bootp.secs) == (1, 0xDEADBEEF, 0x8000, 4)
    assert bootp.chaddr[:6] == bytes.fromhex(client.replace(":", ""))
    assert ("message-type", 1) in packet[DHCP].options
    assert len(bootp) >= 300  # RFC 1542: relays drop shorter BOOTP messages


@pytest.mark.parametrize("wait", [2.0, 6.0, 30.0, 120.0])
def test_retransmissions_follow_rfc_2131_inside_the_window(wait: float) -> None:
    for seed in range(20):
        times = retransmit_times(wait, random.Random(seed))
        assert times and all(0 < t < wait for t in times)
        if wait < 3.0:
            assert times == [wait / 2]  # too short for 4 ± 1 s: halfway, still a second chance
            continue
        assert 3.0 <= times[0] <= 5.0
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for k, gap in enumerate(gaps, 1):  # 8, 16, 32, 64 (the cap) seconds, each ± 1
            assert abs(gap - min(4.0 * 2**k, 64.0)) <= 1.0


@pytest.mark.parametrize(
    ("wait", "slowest", "window"),
    [
        (6.0, None, 6.0),  # nothing on record: the configured window
        (6.0, 1.0, 6.0),  # fast servers never lengthen it
        (6.0, 3.0, 6.0),  # dnsmasq's ping check: still inside half a window
        (6.0, 4.6, 7.6),  # a late server: half a window beyond it
        (6.0, 11.9, 12.0),  # at most twice the configured window
        (50.0, 49.0, 60.0),  # and never beyond a minute
        (10.0, 2.0, 10.0),
    ],
)
def test_the_window_reaches_half_a_window_beyond_the_slowest_server_on_record(
    wait: float, slowest: float | None, window: float
) -> None:
    assert listen_window(wait, slowest) == pytest.approx(window)


def test_importing_and_running_the_probe_loads_no_scapy(demo_lab: Lab) -> None:
    """A scan starts the probe first: it must not pay scapy's import (about 1.5 s)."""
    code = (
        "import sys\n"
        "from ipguard.scanners.dhcp import DhcpProbe\n"
        "from ipguard.scanners.scope import Scope\n"
        "assert 'scapy' not in sys.modules\n"
        f"offers = DhcpProbe('eth0', Scope(['{demo_lab.subnet}']), wait=1.0).probe()\n"
        "print(sorted(name for name in sys.modules if name.startswith('scapy')))\n"
    )
    assert python_in_scanner(demo_lab, code).strip() == "[]"


def test_reads_options_overloaded_into_file_and_sname_and_split_options() -> None:
    """A server out of room continues its options in `file` then `sname` (option 52, RFC 2131
    section 4.1) and splits a long option into parts to be joined (RFC 3396)."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def frame(options: bytes, file: bytes, sname: bytes) -> bytes:
        return bytes(
            Ether(src="02:18:00:00:00:03", dst="ff:ff:ff:ff:ff:ff")
            / IP(src="198.18.0.9", dst="255.255.255.255")
            / UDP(sport=67, dport=68)
            / BOOTP(op=2, xid=7, yiaddr="198.18.0.120", file=file, sname=sname)
            / DHCP(options=[])
            / options
        )

    dns_a, dns_b = bytes([198, 18, 0, 3]), bytes([198, 18, 0, 4])
    offer = parse_offer(
        frame(
            b"\x35\x01\x02\x34\x01\x03\x06\x03"
            + dns_a[:3]
            + b"\xff",  # message type, overload: both
            b"\x06\x05" + dns_a[3:] + dns_b + b"\x36\x04" + bytes([198, 18, 0, 3]) + b"\xff",
            b"\x03\x04" + bytes([198, 18, 0, 1]) + b"\xff",
        ),
        7,
    )
    assert offer == DhcpOffer(
        server_ip="198.18.0.3",
        server_mac="02:18:00:00:00:03",
        offered_ip="198.18.0.120",
        router="198.18.0.1",
        dns=("198.18.0.3", "198.18.0.4"),
    )
    # Without option 52, `file` and `sname` are a boot file and a server name, not options.
    plain = parse_offer(frame(b"\x35\x01\x02\xff", b"\x03\x04\xc6\x12\x00\x01\xff", b""), 7)
    assert plain is not None and plain.router is None and plain.server_ip == "198.18.0.9"
    # An empty option 52, or one pointing at a `file` whose options run off its end: no offer,
    # no crash.
    assert parse_offer(frame(b"\x35\x01\x02\x34\x00\xff", b"", b""), 7) is not None
    assert (
        parse_offer(frame(b"\x35\x01\x02\x34\x01\x01\xff", b"\x00" * 126 + b"\x03\x04", b""), 7)
        is None
    )
