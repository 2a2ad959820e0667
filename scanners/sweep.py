"""The one sweep template: ARP, ICMP echo and the sweeps to come differ only in their hooks.

A sweep supplies four hooks. `Sweep.open` opens its sockets and returns a `Link`, which sends
probes to targets by index (`Link.send`), names the target address a reply answers for
(`Link.source`), and says whether a frame is a well-formed reply of this sweep at all and who sent
it (`Link.admit`). Everything else is the template's, the same for every sweep: the argument and
scope checks, the receiver thread started before the first probe, the schedule
(scanners.probing), the reply budget that bounds what a flood can make a sweep keep, the kernel's
drop count, and closing the sockets without waiting for the kernel.

The hooks are shaped for IPv6 discovery as a third user: Neighbor Solicitations answered from the
target's address (`source`: the NA's target, `admit`: the MAC of its link-layer option), and an
echo to ff02::1 that one probe sends and many hosts answer (`source`: the group, so every reply
counts against that one target; `admit`: the responder's address; a `responders_per_target`
large enough for a link).
"""

from __future__ import annotations

import abc
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from ipguard.errors import ScanError
from ipguard.model import IgnoredReply, Observation
from ipguard.scanners import rawsock
from ipguard.scanners.base import Progress, SweepResult
from ipguard.scanners.probing import ProbeLog, run_schedule
from ipguard.scanners.receiver import Receiver
from ipguard.scanners.scope import Scope

# What one sweep keeps of the replies (ReplyBudget): a flood is counted, not stored.
MAX_RESPONDERS_PER_TARGET = 8  # a real duplicate IP involves two or three MACs
MAX_REPEATS_PER_TARGET = 16
MAX_EXTRA_RESPONDERS = 65_536
MAX_REPEATS = 65_536

_Send = Callable[[Sequence[int]], None]


class Link(abc.ABC):
    """One sweep's open sockets and packet format, from `Sweep.open` until `close`.

    `receiver` is the socket the replies arrive on, filtered by the kernel as tightly as the
    protocol allows; `snaplen` is how much of each reply the receiver reads.
    """

    name: str  # short protocol name: "arp", "icmp"
    unsolicited: IgnoredReply  # how the run counts replies nobody asked for (ReplyBudget)
    over_limit: IgnoredReply  # and replies beyond the budget's limits
    snaplen: int
    responders_per_target: int = MAX_RESPONDERS_PER_TARGET

    def __init__(self, receiver: socket.socket) -> None:
        self.receiver = receiver
        self.interface: str | None = None
        self.source_ip: str | None = None
        self.source_mac: str | None = None

    @abc.abstractmethod
    def send(self, batch: Sequence[int]) -> None:
        """Probe the targets of `batch` (indices into the packed targets), in order."""

    @abc.abstractmethod
    def source(self, reply: bytes) -> bytes:
        """The packed target address `reply` answers for (any bytes when it is no reply at all).

        Called on the receiver thread for every frame read, and again for every frame kept: a
        slice, not a parse.
        """

    @abc.abstractmethod
    def admit(self, reply: bytes) -> bytes | None:
        """Who sent `reply` (a MAC, an address; b"" when the source says it all), or None.

        None when the frame is not a well-formed reply of this sweep. Called on the receiver
        thread for frames that answer a target already probed: a few operations.
        """

    @abc.abstractmethod
    def observation(
        self, target: bytes, reply: bytes, seen_at: datetime, rtt_ms: float | None
    ) -> Observation:
        """The observation a kept reply for `target` makes (parsed here, after the sweep)."""

    def drops(self) -> int:
        """Replies the kernel dropped because the receiver's buffer was full (packet sockets)."""
        return rawsock.packet_drops(self.receiver)

    @abc.abstractmethod
    def close(self) -> None:
        """Close every socket, without waiting for the kernel (rawsock.close_soon)."""


class Sweep(abc.ABC):
    """Probes addresses and reports who answered: the template every sweep runs.

    Example (needs CAP_NET_RAW; `scanners.arp.ArpSweep` and `scanners.icmp.IcmpSweep` are the
    real ones)::

        result = ArpSweep("eth0", Scope(["198.19.0.0/24"]), rate=2000).sweep(targets)
        sorted(result.live)   # ['198.19.0.1', '198.19.0.7', ...]

    A fake for tests of the code above the seam subclasses it and overrides `sweep`.
    """

    what = "sweep"  # how errors name this sweep: "ARP sweep"

    def __init__(
        self,
        scope: Scope,
        *,
        rate: float = 2000,
        retries: int = 2,
        timeout: float = 1.0,
        progress: Progress | None = None,
        round_trip: float = 0.0,
    ) -> None:
        if rate <= 0 or retries < 0 or timeout < 0:
            raise ValueError(
                f"rate must be > 0, retries and timeout >= 0 (got {rate}, {retries}, {timeout})"
            )
        self.scope = scope
        self.rate = rate
        self.retries = retries
        self.timeout = timeout
        self.progress = progress
        self.round_trip = round_trip  # seconds: the slowest known (run_schedule's round_trip)

    @abc.abstractmethod
    def open(self, targets: list[bytes]) -> Link:
        """Open the sockets that probe `targets` (packed addresses) and receive their replies."""

    def pack(self, targets: Iterable[str]) -> list[bytes]:
        """The targets as packed addresses; ScopeError for any outside the scope."""
        return self.scope.check_all_v4(targets)

    def sweep(self, targets: Iterable[str]) -> SweepResult:
        """Probe each target address (as `Scope.targets` lists them) and return every reply.

        Raises ScopeError before sending anything when a target lies outside the sweep's scope.
        """
        packed = self.pack(targets)
        index = {ip: i for i, ip in enumerate(packed)}
        link = self.open(packed)
        try:
            budget = ReplyBudget(index, link)
            receiver = Receiver(
                link.receiver, link.snaplen, name=f"ipguard-{link.name}-receiver", admit=budget
            )
        except BaseException:
            link.close()
            raise
        started_at = datetime.now(UTC)
        started = time.monotonic()
        receiver.start()
        try:
            log = run_schedule(
                len(packed),
                budget.sending(link.send),
                _Answers(receiver.records, index, link),
                rate=self.rate,
                retries=self.retries,
                timeout=self.timeout,
                progress=self.progress,
                round_trip=self.round_trip,
            )
        finally:
            receiver.stop()
            dropped = link.drops()
            link.close()
        if receiver.error is not None:
            where = f" on {link.interface}" if link.interface else ""
            raise ScanError(f"{self.what} lost its socket{where}: {receiver.error.strerror}")
        epoch = started_at.timestamp() - started  # a monotonic reading → seconds since the epoch
        observations = _observations(receiver.records, index, packed, link, log, epoch)
        return SweepResult(
            observations=observations,
            targets=len(packed),
            probes_sent=log.probes_sent,
            duration=log.finished - log.first_probe,
            started_at=started_at,
            interface=link.interface,
            source_ip=link.source_ip,
            source_mac=link.source_mac,
            replies_dropped=dropped,
            replies_ignored=budget.ignored(),
        )


class _Answers:
    """The schedule's `answers()`: (target index, time) of each reply kept since the last call."""

    def __init__(self, records: list[tuple[float, bytes]], index: dict[bytes, int], link: Link):
        self._records = records
        self._index = index
        self._source = link.source
        self._cursor = 0

    def __call__(self) -> list[tuple[int, float]]:
        records, index, source = self._records, self._index, self._source
        end = len(records)
        found = []
        for k in range(self._cursor, end):
            when, reply = records[k]
            at = index.get(source(reply))
            if at is not None:
                found.append((at, when))
        self._cursor = end
        return found


class ReplyBudget:
    """Which replies a sweep keeps, so that a flood can neither exhaust memory nor hide hosts.

    Kept: the first reply of each (target, responder) pair for targets the sweep has asked about,
    up to the link's `responders_per_target` responders per target (MAX_RESPONDERS_PER_TARGET
    MACs for ARP), and repeats of a pair already seen, up to MAX_REPEATS_PER_TARGET per target.
    Beyond a target's first responder, at most MAX_EXTRA_RESPONDERS further ones and MAX_REPEATS
    repeats are kept over the whole sweep, so the memory a sweep holds is bounded by its targets
    plus those two constants, and a host's own reply is lost only if eight impostors answered
    for it first.

    Not kept, only counted: replies for targets never asked or not asked yet (`unsolicited`;
    a flood sent ahead of the probes cannot fill a target's quota before its host answers),
    frames the link does not admit (also `unsolicited`), and replies beyond the limits
    (`over_limit`). Called on the receiver thread for every frame: a few operations each.
    """

    def __init__(self, index: dict[bytes, int], link: Link) -> None:
        self._index = index
        self._source = link.source
        self._admit = link.admit
        self._names = (link.unsolicited, link.over_limit)
        self._per_target = link.responders_per_target
        self._asked = bytearray(len(index))
        self._responders = [0] * len(index)
        self._repeats = bytearray(len(index))
        self._pairs: set[bytes] = set()
        self._extra_responders = 0
        self._repeats_kept = 0
        self.unsolicited = 0
        self.over_limit = 0

    def __call__(self, frame: bytes) -> bool:
        key = self._source(frame)
        at = self._index.get(key)
        who = None if at is None or not self._asked[at] else self._admit(frame)
        if who is None:
            self.unsolicited += 1
            return False
        assert at is not None
        pair = key + who
        if pair in self._pairs:
            if self._repeats[at] >= MAX_REPEATS_PER_TARGET or self._repeats_kept >= MAX_REPEATS:
                self.over_limit += 1
                return False
            self._repeats[at] += 1
            self._repeats_kept += 1
            return True
        known = self._responders[at]
        if known >= self._per_target or (known and self._extra_responders >= MAX_EXTRA_RESPONDERS):
            self.over_limit += 1
            return False
        self._responders[at] = known + 1
        self._extra_responders += known > 0
        self._pairs.add(pair)
        return True

    def asking(self, batch: Sequence[int]) -> None:
        """The sweep is about to probe these targets (indices): their replies are now wanted."""
        if isinstance(batch, range) and batch.step == 1:
            self._asked[batch.start : batch.stop] = b"\x01" * len(batch)
        else:
            for i in batch:
                self._asked[i] = 1

    def sending(self, send: _Send) -> _Send:
        """`send`, marking each batch as asked before its probes leave (replies come at once)."""

        def asked_then_sent(batch: Sequence[int]) -> None:
            self.asking(batch)
            send(batch)

        return asked_then_sent

    def ignored(self) -> dict[IgnoredReply, int]:
        """What was read and not kept, by reason (only the nonzero ones)."""
        counts = zip(self._names, (self.unsolicited, self.over_limit), strict=True)
        return {name: count for name, count in counts if count}


def _observations(
    records: list[tuple[float, bytes]],
    index: dict[bytes, int],
    packed: list[bytes],
    link: Link,
    log: ProbeLog,
    epoch: float,
) -> list[Observation]:
    """Every kept reply, in arrival order (parsing kept off the receive path)."""
    source, observe = link.source, link.observation
    observations = []
    for when, reply in records:
        at = index[source(reply)]  # the budget kept only replies for targets
        probed = log.probe_before(at, when)
        rtt = None if probed is None else round((when - probed) * 1000, 3)
        observations.append(
            observe(packed[at], reply, datetime.fromtimestamp(epoch + when, UTC), rtt)
        )
    return observations
