"""The poller against agents with a real device's worst habits, scripted packet by packet.

Each agent is a thread in this process answering on a socket inside one lab namespace (its
loopback holds 198.18.31.1); the poller runs in that namespace too. The agents serve the data of
tests/lab/snmp_responder.py, then misbehave as cheap APs and old switches do: answers later than
the timeout, answers cut at a small buffer, genErr for a large GETBULK, a row gone mid-walk, a
GETNEXT answered with the OID asked for, malformed or unauthenticated SNMPv3 messages. Every
poll must end with the device's data or one warning naming it, and the other devices polled.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pytest

from ipguard.model import SnmpDevice, SnmpPoll
from ipguard.scanners import snmp_ber as ber
from ipguard.scanners.snmp import SnmpPoller
from ipguard.scanners.snmp_usm import UsmUser
from tests.lab import netns
from tests.lab import snmp_responder as odd
from tests.lab.fixtures import requires_lab

pytestmark = [requires_lab(), pytest.mark.lab]
AGENT_IP, OTHER_IP = "198.18.31.1", "198.18.31.2"  # the agent's address, and another of its
AGENT_IP6 = "fd00:31::1"
COMMUNITY = "c-" + secrets.token_hex(6)
V3_AUTH, V3_PRIV = "a-" + secrets.token_hex(6), "p-" + secrets.token_hex(6)
ENGINE = bytes.fromhex("80001f8880") + secrets.token_bytes(8)
FDB_ROWS = 120
MAX_DATAGRAM = 65507  # the largest UDP payload over IPv4
UNKNOWN_ENGINE_IDS, COUNTER_1 = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0), b"\x41\x01\x01"
Encoded = list[tuple[ber.Oid, bytes]]
# What a habit may change in an answer: (request, varbinds, error-status) -> (varbinds, status)
Shape = Callable[[ber.Response, Encoded, int], tuple[Encoded, int]]
# What the agent sends for one answer: [(seconds after the request, datagram)]
Deliver = Callable[[bytes], list[tuple[float, bytes]]]
# How an SNMPv3 agent wraps a response PDU for its user: (user, msgID, PDU) -> message
Seal = Callable[[UsmUser, int, bytes], bytes]


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    """One lab namespace: the agents' address on its loopback."""
    name = f"ipg-a{secrets.token_hex(3)}-snmp"
    netns.batch_netns([f"netns add {name}"])
    try:
        for address in (AGENT_IP, OTHER_IP):
            netns.run(name, ["ip", "addr", "add", f"{address}/32", "dev", "lo"])
        netns.run(name, ["ip", "-6", "addr", "add", f"{AGENT_IP6}/128", "dev", "lo", "nodad"])
        netns.run(name, ["ip", "link", "set", "lo", "up"])
        yield name
    finally:
        netns.destroy([name])


@dataclass
class Agent:
    """An SNMP agent on a thread: the responder's data, this test's habits."""

    ns: str
    fdb: int = FDB_ROWS
    shape: Shape = lambda request, varbinds, status: (varbinds, status)
    deliver: Deliver = lambda answer: [(0.0, answer)]
    v3: bool = False  # SNMPv3 authPriv (user ipguard) instead of v2c with COMMUNITY
    seal: Seal = lambda user, message_id, pdu: user.encode(message_id, b"", pdu)
    values: dict[ber.Oid, tuple[str, object]] = field(default_factory=dict)
    reply_from: str = ""  # answer from this other address of the agent's
    address: str = AGENT_IP
    requests: int = 0

    def __post_init__(self) -> None:
        self.data = odd.Responder(8, "ordered", self.fdb)
        self.data.values.update(self.values)
        self.data.order = sorted(self.data.values)
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with netns.inside(self.ns):
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.out = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((self.address, 0))
        self.out.bind((self.reply_from or self.address, 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.timers: list[threading.Timer] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Agent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)
        for timer in self.timers:
            timer.cancel()
            timer.join(5)
        self.sock.close()
        self.out.close()

    def device(self, name: str, roles: tuple[str, ...] = ("switch",)) -> SnmpDevice:
        """This agent as a configured device."""
        if self.v3:
            return SnmpDevice(self.address, name, self.port, "3", user="ipguard", auth_proto="sha",
                              auth_key_env="T_AK", priv_proto="aes", priv_key_env="T_PK",
                              roles=roles)  # fmt: skip
        return SnmpDevice(self.address, name, self.port, "2c", community_env="T_C", roles=roles)

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.requests += 1
            answer = self._v3(data) if self.v3 else self._v2c(data)
            for delay, datagram in self.deliver(answer) if answer else []:
                timer = threading.Timer(delay, self._send, (datagram, peer))
                self.timers.append(timer)
                timer.start()

    def _send(self, datagram: bytes, peer: tuple[str, int]) -> None:
        if not self.stopped.is_set():
            (self.out if self.reply_from else self.sock).sendto(datagram, peer)

    def _answer(self, request: ber.Response) -> tuple[Encoded, int]:
        return self.shape(request, self.data.answer(request), 0)

    def _v2c(self, data: bytes) -> bytes | None:
        version, community, request = ber.decode_community_message(data)
        if community != COMMUNITY.encode():
            return None
        varbinds, status = self._answer(request)
        message = odd.response(version, community, request.request_id, varbinds, status)
        if len(message) > MAX_DATAGRAM:  # as a real agent does (RFC 3416 4.2.3): tooBig
            return odd.response(version, community, request.request_id, [], 1)
        return message

    def _v3(self, data: bytes) -> bytes:
        user = UsmUser(b"ipguard", "sha", V3_AUTH.encode(), "aes", V3_PRIV.encode(), ENGINE, 1, 50)
        if not _msg_flags(data) & 1:  # discovery: an unauthenticated request, answered by a report
            message_id, request = UsmUser(b"").decode(data)
            report = _pdu(ber.REPORT, request.request_id, [(UNKNOWN_ENGINE_IDS, COUNTER_1)])
            return UsmUser(b"", engine_id=ENGINE, boots=1, time=50).encode(
                message_id, b"", report, discovery=True
            )
        message_id, request = user.decode(data)
        varbinds, status = self._answer(request)
        return self.seal(user, message_id, _pdu(ber.RESPONSE, request.request_id, varbinds, status))


def _msg_flags(data: bytes) -> int:
    """msgFlags of an SNMPv3 message."""
    _tag, start, end = ber._header(data, 0)
    header = ber.split(data, *ber.split(data, start, end)[1][1:3])
    return data[header[2][1]]


def _pdu(tag: int, request_id: int, varbinds: Encoded, status: int = 0) -> bytes:
    body = b"".join(ber.sequence(ber.encode_oid(oid), value) for oid, value in varbinds)
    fields = ber.integer(request_id) + ber.integer(status) + ber.integer(0)
    return ber.tlv(tag, fields + ber.sequence(body))


def poll(ns: str, *devices: SnmpDevice, timeout: float = 0.3, retries: int = 2) -> list[SnmpPoll]:
    """The poller's result for `devices`, polled from inside the lab namespace."""
    os.environ.update({"T_C": COMMUNITY, "T_AK": V3_AUTH, "T_PK": V3_PRIV})
    with netns.inside(ns):
        return SnmpPoller(list(devices), timeout=timeout, retries=retries, deadline=30).poll()


def assert_complete(result: SnmpPoll) -> None:
    """The poll answered and holds the agent's whole forwarding table."""
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == FDB_ROWS
    assert result.system.sys_name == "odd-agent"


def test_agent_on_ipv6_is_read(ns: str) -> None:
    """Agents at an IPv6 address, and at an IPv4 address written IPv4-mapped (::ffff:198.18.31.1,
    which Python 3.11's ipaddress prints ::ffff:c612:1f01 and the kernel not): each one's answers
    are taken as its own."""
    with Agent(ns, address=AGENT_IP6) as agent, Agent(ns) as mapped:
        v6 = agent.device("v6-switch")
        v4 = replace(mapped.device("mapped-switch"), host=f"::ffff:{AGENT_IP}")
        results = poll(ns, v6, v4)
    for result in results:
        assert_complete(result)


def test_slow_agent_answering_after_the_timeout_is_read(ns: str) -> None:
    """An agent that answers every request 0.3 s late, with a 0.2 s timeout: each answer
    arrives while the next try waits, and is an answer all the same (net-snmp's retries keep
    the request-id for this reason). The later tries' answers come too: duplicates, ignored.
    (A router without ARP entries: a few requests, each 0.3 s, as the walk goes one request
    at a time once one went unanswered.)"""
    with Agent(ns, fdb=0, deliver=lambda answer: [(0.3, answer)]) as agent:
        (result,) = poll(ns, agent.device("slow-ap", roles=("router",)), timeout=0.2)
    assert result.answered, result.warning
    assert result.system.sys_name == "odd-agent" and result.arp == ()


def test_busy_agent_dropping_what_comes_while_it_works_is_read_one_request_at_a_time(
    ns: str,
) -> None:
    """A cheap agent works on one request at a time (4 ms) and drops what arrives meanwhile.
    The poll's column walks side by side lose all but one request: once a request goes
    unanswered, the device is asked one request at a time, as snmpbulkwalk asks, and answers
    everything (before: every try of most requests lost, the poll with them)."""
    last = [0.0]

    def busy(answer: bytes) -> list[tuple[float, bytes]]:
        now = time.monotonic()
        if now - last[0] < 0.004:
            return []
        last[0] = now
        return [(0.004, answer)]

    with Agent(ns, deliver=busy) as agent:
        (result,) = poll(ns, agent.device("busy-ap"))
    assert_complete(result)


def test_agent_dropping_every_other_request_is_read(ns: str) -> None:
    """An agent (a rate limit) that drops every other request it gets: as snmpbulkwalk, each
    request is tried again until answered, its tries one after the other (before: the requests
    of the walk's columns took turns try by try, and one column's tries all fell on the
    dropped turns)."""
    count = itertools.count()
    with Agent(
        ns, fdb=20, deliver=lambda answer: [] if next(count) % 2 else [(0, answer)]
    ) as agent:
        (result,) = poll(ns, agent.device("rate-limited"), timeout=0.2)
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == 20


def test_answers_cut_at_a_small_buffer_shrink_the_getbulk(ns: str) -> None:
    """A cheap AP with a 1,400-octet send buffer cuts longer answers off: BER that runs past
    the end of the datagram. The walk asks for fewer rows at once until the answers fit."""
    with Agent(ns, deliver=lambda answer: [(0.0, answer[:1400])]) as agent:
        (result,) = poll(ns, agent.device("cheap-ap"))
    assert_complete(result)


def test_generr_to_a_large_getbulk_shrinks_it(ns: str) -> None:
    """An agent failing a GETBULK for more than 12 rows with genErr, as some ProCurve and
    Brocade firmware does, is read with smaller requests."""

    def generr(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
        if request.tag == ber.GETBULK and request.error_index > 12:
            return [], 5
        return varbinds, status

    with Agent(ns, shape=generr) as agent:
        (result,) = poll(ns, agent.device("procurve"))
    assert_complete(result)


def test_agent_without_getbulk_is_read_by_getnext(ns: str) -> None:
    """A v2c agent (printers, UPS cards) that fails every GETBULK with genErr, even for one row:
    read by GETNEXT."""

    def no_bulk(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
        return ([], 5) if request.tag == ber.GETBULK else (varbinds, status)

    with Agent(ns, fdb=30, shape=no_bulk) as agent:
        (result,) = poll(ns, agent.device("printer"))
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == 30


def test_v2c_agent_with_v1_habits_at_the_end_of_its_mib(ns: str) -> None:
    """An agent that fails a GETBULK running past the end of its MIB with noSuchName (SNMPv1's
    answer) instead of endOfMibView: the last column is read with fewer rows at once to its
    end, and ends there."""

    def v1_habit(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
        if any(value == b"\x82\x00" for _oid, value in varbinds):
            return [], 2
        return varbinds, status

    with Agent(ns, shape=v1_habit) as agent:
        (result,) = poll(ns, agent.device("old-firmware"))
    assert_complete(result)


def test_answers_from_another_address_are_refused_and_named(ns: str) -> None:
    """A multi-homed agent answering from another of its addresses: not taken as the agent's
    answer (anyone could send it), but the warning says where the answers came from rather than
    only "no answer"."""
    with Agent(ns, reply_from=OTHER_IP) as agent:
        (result,) = poll(ns, agent.device("multihomed"), retries=0)
    assert not result.answered
    assert f"answers came from {OTHER_IP} port " in result.warning
    assert result.warning.startswith(f"multihomed ({AGENT_IP}:{agent.port}): no answer")


def test_system_value_too_long_for_the_agent_is_left_out(ns: str) -> None:
    """An agent whose buffer cannot hold its own sysDescr: tooBig for any GET that asks for it.
    The system group is asked one value at a time and sysDescr left out (before: "GET failed",
    and the device's whole poll lost)."""
    descr = (1, 3, 6, 1, 2, 1, 1, 1, 0)

    def small(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
        if request.tag == ber.GET and any(oid == descr for oid, _ in request.varbinds):
            return [], 1
        return varbinds, status

    with Agent(ns, shape=small) as agent:
        (result,) = poll(ns, agent.device("tiny-buffer"))
    assert_complete(result)
    assert result.system.sys_descr == "" and result.system.uptime == 100


def test_answers_with_a_request_id_never_sent_are_named(ns: str) -> None:
    """An agent (or a middlebox) answering with request-ids other than ours: no answer is taken,
    and the warning says so instead of blaming the community."""

    def renumbered(answer: bytes) -> list[tuple[float, bytes]]:
        version, community, response = ber.decode_community_message(answer)
        varbinds = [(oid, b"\x05\x00") for oid, _ in response.varbinds]
        return [(0.0, odd.response(version, community, response.request_id ^ 1 << 30, varbinds))]

    with Agent(ns, deliver=renumbered) as agent:
        (result,) = poll(ns, agent.device("renumbered"), retries=0)
    assert not result.answered
    assert "request-id" in result.warning and "never sent" in result.warning


def test_a_row_gone_mid_walk_does_not_end_the_table(ns: str) -> None:
    """noSuchInstance for one forwarding-table row (aged out while the agent answered): the rows
    after it are still read."""
    gone = (*odd.FDB_PORT, 1, 2, 0, 0, 0, 7, 1)

    def aged(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
        return [(oid, b"\x81\x00" if oid == gone else value) for oid, value in varbinds], status

    with Agent(ns, shape=aged) as agent:
        (result,) = poll(ns, agent.device("aging"))
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == FDB_ROWS - 1
    assert "02:00:00:00:00:07" not in {entry.mac for entry in result.fdb}


def _header_cut(user: UsmUser, message_id: int, pdu: bytes) -> bytes:
    """A v3 message whose header holds the msgID alone (no flags, no security model)."""
    empty = ber.octets(b"")
    return ber.sequence(ber.integer(3), ber.sequence(ber.integer(message_id)), empty, empty)


def _unauthenticated(user: UsmUser, message_id: int, pdu: bytes) -> bytes:
    """The response sent without authentication or privacy, as anyone on the path could."""
    return UsmUser(user.name, engine_id=ENGINE, boots=1, time=50).encode(message_id, b"", pdu)


def _echo(request: ber.Response, varbinds: Encoded, status: int) -> tuple[Encoded, int]:
    """GETNEXT and GETBULK answered with the OIDs asked for, as if they were GETs."""
    if request.tag == ber.GET:
        return varbinds, status
    return [(oid, ber.octets(b"same")) for oid, _ in request.varbinds], status


HOSTILE: dict[str, tuple[dict[str, object], str]] = {
    "v3 header cut": ({"v3": True, "seal": _header_cut}, "malformed"),
    "v3 unauthenticated": ({"v3": True, "seal": _unauthenticated}, "authentication or privacy"),
    "getnext echoes": ({"shape": _echo}, "loops"),
}


def test_oid_value_with_an_arc_too_long_to_print_is_left_out(ns: str) -> None:
    """sysObjectID with a 2,300-octet arc (past SNMP's 2^32 - 1): Python cannot print such an
    integer, and the poll of every device stopped with a ValueError. The answer holding it is
    malformed; the other system values, asked one at a time, and the tables are read."""
    huge = {(1, 3, 6, 1, 2, 1, 1, 2, 0): ("o", (1, 3, 6, 1, 4, 1, 2**16000))}
    with Agent(ns, values=huge) as agent:
        (result,) = poll(ns, agent.device("huge-arc"))
    assert_complete(result)
    assert result.system.sys_object_id == "" and result.system.sys_descr == "odd agent"


@pytest.mark.parametrize("habit", list(HOSTILE))
def test_hostile_agent_gets_one_warning_and_the_others_are_polled(ns: str, habit: str) -> None:
    """An agent sending what no decoder should take (a v3 header without its fields, a
    response without the authentication its user has) or answering GETNEXT with the OID asked
    for: its poll fails with one warning naming it; a well-behaved
    device polled at the same time is read whole."""
    how, expected = HOSTILE[habit]
    with Agent(ns, **how) as hostile, Agent(ns) as good:  # type: ignore[arg-type]
        bad, fine = poll(ns, hostile.device("bad"), good.device("fine"))
    assert not bad.answered
    assert bad.warning.startswith(f"bad ({AGENT_IP}:{hostile.port}): ")
    assert expected in bad.warning and bad.warning.count("bad (") == 1
    assert_complete(fine)


def test_v3_forged_datagrams_mid_walk_are_ignored(ns: str) -> None:
    """Once the agent's answers have authenticated, a datagram from its address that fails
    authentication (forged, or damaged on the way) or comes without it is not the agent's: it
    is dropped and the genuine answer taken (before: the device's poll failed on the first)."""
    answers = itertools.count()

    def forged_first(answer: bytes) -> list[tuple[float, bytes]]:
        if next(answers) < 2:
            return [(0.0, answer)]
        damaged = answer[:-1] + bytes([answer[-1] ^ 1])  # the HMAC no longer matches
        return [(0.0, damaged), (0.01, answer)]

    with Agent(ns, v3=True, fdb=20, deliver=forged_first) as agent:
        (result,) = poll(ns, agent.device("forged"))
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == 20


def test_v3_forged_datagram_before_the_first_genuine_answer_is_ignored(ns: str) -> None:
    """The agent's first authenticated answer comes after a datagram from its address that
    fails authentication: the forged one is dropped and the genuine one taken (the poll ended on
    the forged one, as if the key were wrong: a wrong key gets a wrongDigests report instead)."""
    answers = itertools.count()

    def forged_before_first(answer: bytes) -> list[tuple[float, bytes]]:
        if next(answers) != 1:  # 0: discovery's report; 1: the first authenticated answer
            return [(0.0, answer)]
        damaged = answer[:-1] + bytes([answer[-1] ^ 1])
        return [(0.0, damaged), (0.01, answer)]

    with Agent(ns, v3=True, fdb=20, deliver=forged_before_first) as agent:
        (result,) = poll(ns, agent.device("forged-first"))
    assert result.answered, result.warning
    assert len({entry.mac for entry in result.fdb}) == 20


def test_v3_agent_rebooted_is_resynchronised_even_without_retries(ns: str) -> None:
    """An agent that rebooted since discovery (snmpEngineBoots went up) answers the first request
    with an authenticated notInTimeWindow report carrying its new boots and time: the request is
    sent again with them, once, also with --retries 0."""
    reported: list[int] = []

    def rebooted(user: UsmUser, message_id: int, pdu: bytes) -> bytes:
        if reported:
            return user.encode(message_id, b"", pdu)
        reported.append(message_id)
        request_id = ber.decode_pdu(pdu).request_id
        report = _pdu(ber.REPORT, request_id, [((1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0), COUNTER_1)])
        booted = UsmUser(user.name, "sha", V3_AUTH.encode(), engine_id=ENGINE, boots=2, time=3)
        return booted.encode(message_id, b"", report)

    with Agent(ns, v3=True, seal=rebooted) as agent:
        (result,) = poll(ns, agent.device("rebooted"), retries=0)
    assert reported
    assert_complete(result)
