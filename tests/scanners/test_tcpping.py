"""TCP ping: routed hosts whose firewall drops ICMP echo are still found; only real answers count.

The lab test builds routed hosts with host firewalls (nftables in each host's namespace): one drops
echo requests, one drops echo and port 443, one drops all IP input. The unit tests feed the link
the segments a network could send back, ours and not ours.
"""

from __future__ import annotations

import re
import socket
import struct
from collections import Counter
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP

from ipguard.model import ScanRequest
from ipguard.scanners import rawsock, reach
from ipguard.scanners.scope import Scope
from ipguard.scanners.sweep import ReplyBudget
from ipguard.scanners.tcpping import ACK, RST, SYN, _header, _TcpLink, _with_checksum
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.netns import inside
from tests.lab.scenario import Scenario
from tests.lab.scenarios import LAN, ROUTED, _infrastructure, _scanner, stranger

TARGETS = [bytes([198, 19, 0, n]) for n in (21, 22, 23)]
PORT = 40_001
US = bytes([198, 18, 0, 2])


@pytest.fixture
def link() -> Iterator[_TcpLink]:
    """A link over socket pairs (never used to send here) holding PORT."""
    left, right = socket.socketpair()
    holder = socket.socket()
    with left, right, holder:
        yield _TcpLink(left, right, TARGETS, holder, PORT)


def segment(source: bytes, sport: int, flags: int, *, seq: int = 0, ack: int = 0) -> bytes:
    """An IPv4 packet carrying one TCP segment from `source`:`sport` to us at PORT."""
    tcp = struct.pack("!HHIIBBHHH", sport, PORT, seq, ack, 5 << 4, flags, 0, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 60, 6, 0, source, US)
    return ip + tcp


def test_only_answers_to_our_own_probes_are_admitted(link: _TcpLink) -> None:
    syn_ack = (link._seq + 1) & 0xFFFFFFFF
    ours = [
        segment(TARGETS[0], 443, SYN | ACK, ack=syn_ack),  # port 443 open
        segment(TARGETS[0], 443, RST | ACK, ack=syn_ack),  # port 443 closed
        segment(TARGETS[0], 80, RST, seq=link._ack),  # the bare ACK drew a RST
    ]
    assert [link.admit(packet) for packet in ours] == [b"", b"", b""]
    not_ours = [
        segment(TARGETS[0], 443, SYN | ACK, ack=syn_ack + 1),  # acknowledges something else
        segment(TARGETS[0], 443, SYN, ack=syn_ack),  # a SYN, not an answer
        segment(TARGETS[0], 80, RST, seq=link._ack + 1),  # a RST for another connection
        segment(TARGETS[0], 80, ACK, seq=link._ack),  # an ACK, not a RST
        segment(TARGETS[0], 22, RST | ACK, ack=syn_ack),  # a port we never probed
        segment(TARGETS[0], 443, SYN | ACK, ack=syn_ack)[:39],  # cut short
        b"\x60" + segment(TARGETS[0], 443, SYN | ACK, ack=syn_ack)[1:],  # not IPv4
    ]
    assert [link.admit(packet) for packet in not_ours] == [None] * len(not_ours)
    other_port = segment(TARGETS[0], 443, SYN | ACK, ack=syn_ack)
    other_port = other_port[:22] + struct.pack("!H", PORT + 1) + other_port[24:]
    assert link.admit(other_port) is None


def test_answers_count_once_probed_and_floods_are_bounded(link: _TcpLink) -> None:
    budget = ReplyBudget({ip: i for i, ip in enumerate(TARGETS)}, link)
    answer = segment(TARGETS[1], 80, RST, seq=link._ack)
    assert not budget(answer)  # not asked yet
    budget.asking([1])
    assert budget(answer)
    assert not budget(segment(bytes([198, 19, 0, 99]), 80, RST, seq=link._ack))
    assert budget.ignored() == {"tcp_unsolicited": 2}


def test_the_checksum_is_the_one_scapy_computes() -> None:
    source, destination = US, TARGETS[2]
    for header in (_header(PORT, 443, 0x01020304, 0, SYN), _header(PORT, 80, 7, 0xFFFFFFFF, ACK)):
        ours = _with_checksum(header, source, destination)
        parsed = TCP(header)
        del parsed.chksum
        theirs = bytes(
            IP(src=socket.inet_ntoa(source), dst=socket.inet_ntoa(destination)) / parsed
        )[20:]
        assert ours == theirs


# --- in the lab ---------------------------------------------------------------------------------

FIREWALLS = {
    # Drops echo requests only: a hardened server.
    "echo-dropper": "icmp type echo-request drop",
    # Drops echo and port 443: found by the ACK to port 80 on the second pass.
    "syn-dropper": "icmp type echo-request drop\n tcp dport 443 drop",
    # Drops all IP input, counting the TCP probes it gets: never found.
    "black-hole": "tcp dport 443 counter drop\n tcp dport 80 counter drop\n drop",
}
ADDRESSES = {"pinger": "198.19.0.20", "echo-dropper": "198.19.0.21"}
ADDRESSES |= {"syn-dropper": "198.19.0.22", "black-hole": "198.19.0.23"}
ROUTED_HOST = {"segment": "routed", "gateway": "198.19.0.1"}


def scenario() -> Scenario:
    """The gateway to the routed segment and four routed hosts, three behind host firewalls."""
    routed = [
        stranger(name, ip, f"02:77:00:00:00:{ip.rsplit('.', 1)[1]}", **ROUTED_HOST)
        for name, ip in ADDRESSES.items()
    ]
    return Scenario(
        name="tcpping",
        segments=(LAN, ROUTED),
        scanner=_scanner(),
        hosts=(_infrastructure()[0], *routed),
    )


def swept(lab_ns: str, *, tcp_ping: bool) -> dict[str, str]:
    """The routed segment swept from the scanner: {address: how it answered}."""
    request = ScanRequest(
        site="lab",
        interface="eth0",
        subnets=(ROUTED.cidr,),
        rate=20_000,
        timeout=0.5,
        tcp_ping=tcp_ping,
    )
    with inside(lab_ns):
        interface = rawsock.usable_interface("eth0", "sweep")
        observations, _ = reach.sweep(
            request, Scope([ROUTED.cidr]), interface, None, Counter(), Counter()
        )
    return {o.ip: o.source for o in observations if o.ip in ADDRESSES.values()}


@requires_lab()
@pytest.mark.lab
def test_routed_hosts_that_drop_echo_are_found_over_tcp(lab_factory: LabFactory) -> None:
    lab = lab_factory(scenario())
    for name, rules in FIREWALLS.items():
        chain = f"chain input {{\n type filter hook input priority 0;\n {rules}\n }}\n"
        ruleset = f"table inet host {{\n {chain}}}\n"
        lab.run(name, ["nft", "-f", "-"], input=ruleset)

    assert swept(lab.scanner_ns, tcp_ping=False) == {ADDRESSES["pinger"]: "icmp"}
    assert swept(lab.scanner_ns, tcp_ping=True) == {
        ADDRESSES["pinger"]: "icmp",
        ADDRESSES["echo-dropper"]: "tcp",
        ADDRESSES["syn-dropper"]: "tcp",
    }
    # The host that answers nothing got retries + 1 TCP probes, alternating: SYN 443, ACK 80, SYN.
    listed = lab.run("black-hole", ["nft", "list", "chain", "inet", "host", "input"]).stdout
    counts = {
        int(port): int(packets)
        for port, packets in re.findall(r"tcp dport (\d+) counter packets (\d+)", listed)
    }
    assert counts == {443: 2, 80: 1}
