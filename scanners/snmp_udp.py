"""The asyncio side of an SNMP session: the agent's datagrams, how many requests it gets at
once, and walks run side by side."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

EARLY = 16  # datagrams kept that came while no request waited (late answers, duplicates)


class Datagrams(asyncio.DatagramProtocol):
    """Hands each datagram to the request waiting for one (a plain future: a walk makes
    thousands of requests, and a queue read under `wait_for` costs a task each)."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.waiter: asyncio.Future[bytes] | None = None
        self.peer = peer
        self.elsewhere: tuple[str, int] | None = None  # the last sender that was not the agent
        self.early: deque[bytes] = deque(maxlen=EARLY)  # what came while nobody waited

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if (addr[0], addr[1]) != self.peer:
            # A multi-homed agent answering from another address (or anyone else): not taken
            # as the agent's answer, but named if the agent itself stays silent.
            self.elsewhere = (addr[0], addr[1])
            return
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)
        else:  # a late answer while its request waits for its turn (see Pace): kept for it
            self.early.append(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable: the request times out like any unanswered one

    async def receive(self, timeout: float) -> bytes:
        """The next datagram, or TimeoutError."""
        if self.early:
            return self.early.popleft()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        self.waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None


def _expire(waiter: asyncio.Future[bytes]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Pace:
    """How many requests one agent gets at once: the walks of several columns side by side at
    first, then one at a time once a request goes unanswered. A busy agent (a cheap AP, an
    embedded switch) drops what arrives while it works on one request: side by side, most
    requests would be lost, every try again, and the poll with them; one at a time, as
    `snmpbulkwalk` asks, it answers them all."""

    def __init__(self) -> None:
        self.serial = False
        self.lock = asyncio.Lock()
        self.in_flight = 0  # requests side by side now


async def together(coroutines: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines concurrently; the first error cancels the others and is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    if not tasks:
        return  # (a Catalyst with no operational VLAN: asyncio.wait refuses an empty set)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:  # an error, or the caller cancelled (the poll's deadline): stop the rest
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
