"""One SNMP agent over UDP: GET, and walks by GETBULK (v2c, v3) or GETNEXT (v1), on asyncio.

Walks follow net-snmp's `-Cc`: an agent that returns OIDs out of order is walked on from the last
OID it returned, because real agents (old Cisco, some Huawei and D-Link firmware) do that in the
middle of good tables. A walk stops early only for a real loop (an OID returned twice), a table
longer than any real one (`limit`), or silence; each is a `WalkStopped` naming the table.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipguard.scanners import snmp_ber as ber
from ipguard.scanners.snmp_errors import (
    ERROR_STATUS,
    GEN_ERR,
    NO_SUCH_NAME,
    SHRINK_ON,
    TOO_BIG,
    SnmpError,
    SnmpMalformed,
    SnmpTimeout,
    WalkStopped,
)
from ipguard.scanners.snmp_udp import Datagrams, Pace, together
from ipguard.scanners.snmp_usm import UsmError, UsmForgery, UsmUser, report_reason

Varbind = tuple[ber.Oid, Any]
DEFAULT_LIMIT = 1_000_000  # rows of one column: more than any real switch or router holds
STREAMS = 256  # sockets open at once for the column walks of one poll (open files: 1024)
FIRST_REPETITIONS = 10  # max-repetitions of a column's first GETBULK (net-snmp's default)


@dataclass(frozen=True)
class Credentials:
    """How to talk to an agent: a community (v1, v2c) or a USM user (v3); `repr` hides secrets."""

    version: str  # "1", "2c" or "3"
    community: bytes = field(default=b"", repr=False)
    user: str = ""
    auth_protocol: str = ""
    auth_key: bytes = field(default=b"", repr=False)
    priv_protocol: str = ""
    priv_key: bytes = field(default=b"", repr=False)


class SnmpSession:
    """Requests to one agent, one at a time, with timeout and retries."""

    def __init__(
        self,
        host: str,
        port: int,
        credentials: Credentials,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        max_repetitions: int = 100,
        context: str = "",
        streams: asyncio.Semaphore | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.host, self.port, self.credentials = host, port, credentials
        # Sockets a walk of several columns may hold open at once (shared by every session of
        # a poll, so that polling a hundred switches stays far below the open-files limit).
        self.streams = streams or asyncio.Semaphore(STREAMS)
        self.pace = pace or Pace()  # shared with every sibling: one agent, one pace
        self.timeout, self.retries, self.max_repetitions = timeout, retries, max_repetitions
        self.context = context.encode()
        self._first_id = int.from_bytes(os.urandom(3), "big")  # (24 bits: no wrap in a poll)
        self._ids = itertools.count(self._first_id)
        self._last_id = self._first_id
        self._foreign_id: int | None = None  # an answer's request-id this session never sent
        self._transport: asyncio.DatagramTransport | None = None
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # The agent's address as the kernel writes a sender's (::ffff:198.18.0.1, not 3.11's str)
        peer = socket.inet_ntop(self._family, socket.inet_pton(self._family, host))
        self._protocol = Datagrams((peer, port))
        self._user: UsmUser | None = None
        if credentials.version == "3":
            self._user = UsmUser(
                credentials.user.encode(),
                credentials.auth_protocol,
                credentials.auth_key,
                credentials.priv_protocol,
                credentials.priv_key,
            )

    def with_context(self, community_suffix: str, context: str) -> SnmpSession:
        """The same agent for a Cisco VLAN: `community@VLAN` (v1/v2c) or a v3 context."""
        creds = self.credentials
        if creds.version != "3":
            creds = Credentials(creds.version, creds.community + community_suffix.encode())
        return self._sibling(creds, context if creds.version == "3" else "")

    def _sibling(self, credentials: Credentials, context: str) -> SnmpSession:
        """Another socket to the same agent (the engine ID and keys learnt already still hold)."""
        session = SnmpSession(
            self.host,
            self.port,
            credentials,
            timeout=self.timeout,
            retries=self.retries,
            max_repetitions=self.max_repetitions,
            context=context,
            streams=self.streams,
            pace=self.pace,
        )
        session._user = self._user
        return session

    async def __aenter__(self) -> SnmpSession:
        # Not connected to the agent: a connected socket would drop an answer from another of
        # its addresses unseen, and the user would only hear "no answer".
        self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self._protocol, family=self._family
        )
        if self._user is not None and not self._user.engine_id:
            await self._exchange(ber.GET, [], discovery=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    def _encode(self, request_id: int, body: bytes, discovery: bool) -> bytes:
        if self._user is None:
            version = 0 if self.credentials.version == "1" else 1
            return ber.community_message(version, self.credentials.community, body)
        return self._user.encode(request_id, self.context, body, discovery=discovery)

    def _decode(self, data: bytes) -> tuple[int, ber.Response]:
        if self._user is None:
            _version, _community, response = ber.decode_community_message(data)
            return response.request_id, response
        return self._user.decode(data)

    async def _exchange(
        self, tag: int, oids: Sequence[ber.Oid], a: int = 0, b: int = 0, discovery: bool = False
    ) -> ber.Response:
        """The agent's answer to one request, over its tries; see `Pace` for how many at once."""
        request = (tag, list(oids), a, b)
        sent: set[int] = set()  # every try's request-id: a slow agent's answer to any one will do
        tries, garbled = self.retries + 1, ""
        if not self.pace.serial:
            self.pace.in_flight += 1
            crowded = self.pace.in_flight > 1
            try:
                response, garbled = await self._tries(request, discovery, sent, 1)
            finally:
                self.pace.in_flight -= 1
            if response is not None:
                return response
            # From now on one at a time; a try lost among others side by side was no retry.
            self.pace.serial = True
            tries -= 0 if crowded else 1
        async with self.pace.lock:  # the tries of one request together, as snmpbulkwalk
            response, later = await self._tries(request, discovery, sent, tries)
        if response is not None:
            return response
        garbled = later or garbled
        if garbled:
            raise SnmpMalformed(f"the agent's answers are malformed ({garbled})")
        waited = f"{len(sent)} {'try' if len(sent) == 1 else 'tries'} of {self.timeout:g} s each"
        raise SnmpTimeout(f"no answer to {waited} ({self._silence(discovery)})")

    async def _tries(
        self,
        request: tuple[int, list[ber.Oid], int, int],
        discovery: bool,
        sent: set[int],
        count: int,
    ) -> tuple[ber.Response | None, str]:
        """Up to `count` tries of `request`: the answer, or None and why the last malformed
        answer was refused ("" when none came)."""
        assert self._transport is not None
        tag, oids, a, b = request
        garbled, attempt, resynced = "", 0, False
        while attempt < count:
            attempt += 1
            request_id = self._last_id = next(self._ids)
            sent.add(request_id)
            message = self._encode(request_id, ber.pdu(tag, request_id, oids, a, b), discovery)
            self._transport.sendto(message, self._protocol.peer)
            response, why = await self._answer(sent)
            garbled = why or garbled
            if response is None:
                continue
            reason = report_reason(response)
            if reason is None or discovery:
                return response, ""
            if reason == "not in time window" and not resynced:
                # decode() took the agent's new boots and time (it rebooted): send again, once,
                # whatever the retries
                attempt, resynced = attempt - 1, True
                continue
            raise SnmpError(f"the agent refused the request: {reason}")
        return None, garbled

    def _silence(self, discovery: bool) -> str:
        """The likely causes of an agent's silence, as far as what came before tells."""
        if self._foreign_id is not None:
            return (
                f"answers came with request-id {self._foreign_id}, never sent: a broken agent, "
                "or something on the way rewriting them"
            )
        elsewhere = self._protocol.elsewhere
        if elsewhere:
            return (
                f"answers came from {elsewhere[0]} port {elsewhere[1]} instead: an agent "
                "answering from another of its addresses, or not the agent"
            )
        if self._user is not None and self.context and not discovery:
            return f"no context {self.context.decode(errors='replace')} on the agent, or an ACL"
        if self._user is not None and self._user.priv_protocol and not discovery:
            # It answered discovery, and a wrong auth key would have got a report back: agents
            # drop what they cannot decrypt without a word (net-snmp does)
            said = "the agent answered discovery: a wrong privacy key or protocol, or an ACL"
            if self._user.priv_protocol in ("aes192", "aes256"):  # the two key extensions
                said += f" (Cisco and Extreme devices need {self._user.priv_protocol}c)"
            elif self._user.priv_protocol in ("aes192c", "aes256c"):
                said += f" (net-snmp agents need {self._user.priv_protocol[:-1]})"
            return said
        return "agent down, wrong community or key, an SNMP version it does not speak, or an ACL"

    async def _answer(self, sent: Container[int]) -> tuple[ber.Response | None, str]:
        """The answer to any of the request-ids `sent` within the timeout, or None and, when
        a malformed datagram came instead (a truncated answer: sent again at once), why."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        forged = ""
        while (left := deadline - loop.time()) > 0:
            try:
                data = await self._protocol.receive(left)
            except TimeoutError:
                break
            try:
                answered_id, response = self._decode(data)
            except UsmForgery as error:
                # Not the agent's: a wrong key gets the agent's wrongDigests report, never an
                # answer that fails authentication. Forged or damaged on the way, before or
                # after the agent's first genuine answer: the genuine one may still come.
                forged = str(error)
                continue
            except UsmError as error:
                raise SnmpError(str(error)) from None
            except ber.BerError as error:
                return None, str(error)
            if answered_id in sent:
                return response, ""
            if not self._first_id <= answered_id <= self._last_id:
                self._foreign_id = answered_id
            # else an answer to an earlier request of this session: not this one's
        return None, forged

    async def get(self, oids: Sequence[ber.Oid]) -> dict[ber.Oid, Any]:
        """The values of scalar OIDs (left out: missing ones, and one too long for the agent)."""
        try:
            response = await self._exchange(ber.GET, oids)
        except SnmpMalformed:
            if len(oids) == 1:
                raise
            return await self._one_by_one(oids)
        status = response.error_status
        if status in (NO_SUCH_NAME, TOO_BIG):
            # v1 fails a GET whole for one missing OID; an agent with a small buffer fails a
            # GET of several long values (a sysDescr of 400 octets in a 484-octet message)
            return await self._one_by_one(oids) if len(oids) > 1 else {}
        if status:
            raise SnmpError(f"GET failed: {ERROR_STATUS.get(status, str(status))}")
        return {
            oid: value for oid, value in response.varbinds if not isinstance(value, ber.Exceptional)
        }

    async def _one_by_one(self, oids: Sequence[ber.Oid]) -> dict[ber.Oid, Any]:
        """Each OID in a GET of its own; those that fail are left out (if all, the error)."""
        found: dict[ber.Oid, Any] = {}
        malformed: SnmpMalformed | None = None
        for oid in oids:
            try:
                found.update(await self.get([oid]))
            except SnmpMalformed as error:
                malformed = error
        if malformed is not None and not found:
            raise malformed
        return found

    async def walk_columns(
        self, roots: Sequence[ber.Oid], *, limit: int = DEFAULT_LIMIT
    ) -> list[list[Varbind]]:
        """Every (OID, value) under each root, in the order the agent gave them.

        Each column is its own stream of requests on its own socket, all outstanding together:
        the agent works on one column while the answer for another is on the wire or being
        decoded here, and the round trips overlap (what several `snmpbulkwalk` would do, run
        side by side). Asking for every column in one GETBULK instead would put them in series.
        """
        columns = [_Column(root, limit) for root in roots]
        try:
            await together([self._stream(column) for column in columns])
        except WalkStopped as stop:
            stop.columns = [column.rows for column in columns]
            raise
        return [column.rows for column in columns]

    async def _stream(self, column: _Column) -> None:
        """One column on a socket of its own (other walks may be using this session's)."""
        async with self.streams, self._sibling(self.credentials, self.context.decode()) as stream:
            await stream._walk_column(column)

    async def _walk_column(self, column: _Column) -> None:
        """Walk one column to its end: GETBULK (v2c, v3) or GETNEXT (v1).

        Max-repetitions starts small and doubles while the column goes on: the rows asked for
        past a column's end are whatever follows it in the agent's MIB, which the agent must
        still compute (after ifDescr come the ifTable's other columns, then net-snmp's atTable,
        one slow lookup per row), so a short or empty column must not ask for a hundred.
        """
        most = self.max_repetitions
        repeat = min(FIRST_REPETITIONS, most)
        bulk = self.credentials.version != "1"
        while not column.done:
            try:
                if bulk:
                    response = await self._exchange(ber.GETBULK, [column.current], 0, repeat)
                else:
                    response = await self._exchange(ber.GETNEXT, [column.current])
            except SnmpMalformed:
                if not bulk or repeat == 1:
                    raise
                most = repeat = repeat // 2  # an answer cut at the agent's buffer: ask for less
                continue
            status = response.error_status
            if status in SHRINK_ON and bulk and repeat > 1:
                # an agent that fails a request for many rows rather than send fewer
                most = repeat = repeat // 2
                continue
            repeat = min(2 * repeat, most)
            if status == NO_SUCH_NAME:
                return  # v1 (or a v2c agent keeping v1's habit) says so past the end of the MIB
            if status == GEN_ERR and bulk:
                bulk = False  # not even one row by GETBULK: an agent without it, read by GETNEXT
                continue
            if status:
                text = ERROR_STATUS.get(status, str(status))
                raise SnmpError(f"walk of {ber.oid_text(column.root)} failed: {text}")
            if not response.varbinds:
                return
            for oid, value in response.varbinds:
                column.take(oid, value)


class _Column:
    """One column being walked: its rows, the OIDs it returned, where to ask next."""

    def __init__(self, root: ber.Oid, limit: int) -> None:
        self.root, self.limit, self.depth = root, limit, len(root)
        self.rows: list[Varbind] = []
        # The root counts as seen: an agent answering a GETNEXT with the OID asked for (the
        # column's own OID, a row without an index) is looping, not starting the table.
        self.seen: set[ber.Oid] = {root}
        self.current = root
        self.done = False

    def take(self, oid: ber.Oid, value: Any) -> None:
        """One varbind of a response meant for this column."""
        if self.done:
            return  # the column ended earlier in this response: the rest is past it
        missing = isinstance(value, ber.Exceptional)
        if oid[: self.depth] != self.root or (missing and (value.end_of_view or oid in self.seen)):
            self.done = True
            return
        if oid in self.seen:
            raise WalkStopped(
                f"the agent loops in {ber.oid_text(self.root)}: {ber.oid_text(oid)} seen twice",
                self.rows,
            )
        self.seen.add(oid)
        self.current = oid
        if not missing:
            self.rows.append((oid, value))
        # else noSuchInstance for one row (gone while the agent answered): the walk goes on
        # from it, as the rows after it are still there.
        if len(self.seen) > self.limit + 1:  # (the root is among them)
            raise WalkStopped(
                f"{ber.oid_text(self.root)} never ends: more than {self.limit} entries", self.rows
            )
