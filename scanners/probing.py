"""The probe schedule both sweeps share: paced passes, retries for silent targets, a settling wait.

The sweep supplies two callbacks: `send(batch)` puts one probe per target index on the wire (its hot
loop lives in the sweep, where the packet template is), and `answers()` returns the (target index,
reply time) pairs its receiver collected since the previous call. The schedule decides who is
probed when.

A batch is a range (first pass) or a sorted list of target indices, and the schedule records when
each batch went out, not each probe: that is enough to know when any target was probed, and at
/16 scale Python work per probe would cost as much as the system calls that send them.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ipguard.scanners.base import Progress
from ipguard.scanners.pacing import Pacer

# A silent target is probed again once its previous probe is RTT_FACTOR round trips old (the
# slowest reply seen so far), but never sooner than MIN_RETRY_GAP nor later than the sweep's
# timeout: on a LAN replies take a millisecond, so waiting the full timeout between passes would
# only waste time. Twice the slowest reply is still more patient than nmap's estimate (smoothed
# round trip + 4 × its variation), which one slow outlier among many fast replies barely moves;
# four times made every wait of a /16 depend on the worst moment of the responder's queue.
RTT_FACTOR = 2.0
MIN_RETRY_GAP = 0.05
# The final wait ends once no reply came for RTT_FACTOR slowest round trips (at least MIN_SETTLE,
# nmap's floor too) after the last probe or reply, and never later than `timeout` after the last
# probe. Until some reply shows how fast the network is, it lasts the whole timeout.
MIN_SETTLE = 0.1
# Retries make up for loss, and a retry pass shows how much there is: when one re-probes every
# silent target and none of them answers, while at least MIN_EVIDENCE targets did answer, the
# sweep stops there. With a per-probe loss rate p, about N·p of N live hosts miss a pass; none
# recovered among N ≥ 1,000 puts p below about 3/N, so a further pass would find about N·p² < 0.01
# hosts. Below MIN_EVIDENCE live hosts every retry is made (few answers prove little, and a
# sparse network's retries are cheap). `retries` is therefore a maximum, as nmap's is.
MIN_EVIDENCE = 1000
PROGRESS_EVERY = 0.1  # seconds between progress reports: a progress bar needs no more
MAX_IDLE_SLEEP = 0.05  # bounded sleeps, so that answers keep being absorbed while waiting


@dataclass
class Pass:
    """One pass over the targets still silent: who, in order, and when each batch went out."""

    targets: Sequence[int]  # range(count) for the first pass, then sorted lists of indices
    ends: array[int] = field(default_factory=lambda: array("q"))  # position past each batch
    times: array[float] = field(default_factory=lambda: array("d"))  # when each batch went out
    skipped: set[int] = field(default_factory=set)  # answered mid-pass before their turn

    def sent(self, index: int) -> float | None:
        """When this pass probed target `index` (None: not in it, passed over, or not yet)."""
        targets = self.targets
        if isinstance(targets, range):
            if index not in targets:
                return None
            position = index - targets.start
        else:
            position = bisect_left(targets, index)
            if position == len(targets) or targets[position] != index:
                return None
        batch = bisect_right(self.ends, position)
        if batch == len(self.times) or index in self.skipped:
            return None
        return self.times[batch]

    def sent_or_zero(self, index: int) -> float:
        """`sent`, with 0.0 for never (a sort key)."""
        return self.sent(index) or 0.0


@dataclass(frozen=True)
class ProbeLog:
    """When each target was probed, pass by pass, and when the sweep began and ended."""

    probes_sent: int
    passes: list[Pass]
    first_probe: float
    last_probe: float
    finished: float
    # target index → (its first reply's time, the probe that reply answered), as the schedule
    # worked them out: most replies are first replies, and looking them up again costs as much.
    first_replies: dict[int, tuple[float, float]] = field(default_factory=dict)

    def probe_before(self, index: int, when: float) -> float | None:
        """The time of the latest probe to target `index` sent no later than `when`."""
        first = self.first_replies.get(index)
        if first is not None and first[0] == when:
            return first[1]
        found = _probe_before(self.passes, index, when)
        return None if found is None else found[1]


def _probe_before(passes: Sequence[Pass], index: int, when: float) -> tuple[int, float] | None:
    """(pass number, time) of the latest probe to target `index` sent no later than `when`."""
    for number in range(len(passes) - 1, -1, -1):
        sent = passes[number].sent(index)
        if sent is not None and sent <= when:
            return number, sent
    return None


def run_schedule(
    count: int,
    send: Callable[[Sequence[int]], None],
    answers: Callable[[], Iterable[tuple[int, float]]],
    *,
    rate: float,
    retries: int,
    timeout: float,
    progress: Progress | None = None,
    round_trip: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeLog:
    """Probe targets 0..count-1 once, then up to `retries` more times each while they stay silent.

    Returns once replies have settled (see MIN_SETTLE), at most `timeout` seconds after the last
    probe, so that late replies are in. Stops retrying early when a retry pass found nobody (see
    MIN_EVIDENCE). `round_trip` is the slowest round trip already known on the way to these
    targets (seconds; another sweep's), so that a sweep nobody answers need not wait `timeout`
    between passes to learn it.
    """
    schedule = Schedule(
        count,
        send,
        answers,
        rate=rate,
        retries=retries,
        timeout=timeout,
        round_trip=round_trip,
        clock=clock,
        sleep=sleep,
    )
    return schedule.run(progress)


class Schedule:
    """One sweep's schedule: who is probed when, what has answered, how long to wait for replies.

    `run` makes the passes (`_probe_pass`), each paced by the rate and, after the first, waiting
    until a target's previous probe is a retry gap old; `_absorb` takes in the replies the sweep's
    receiver collected; `_settled` is the final wait, and the wait that decides whether a retry
    pass is worth making.
    """

    def __init__(
        self,
        count: int,
        send: Callable[[Sequence[int]], None],
        answers: Callable[[], Iterable[tuple[int, float]]],
        *,
        rate: float,
        retries: int,
        timeout: float,
        round_trip: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._send, self._answers = send, answers
        self._count, self._retries, self._timeout = count, retries, timeout
        self._clock, self._sleep = clock, sleep
        self._pacer = Pacer(rate, clock=clock, sleep=sleep)
        self._answered = bytearray(count)
        self._passes: list[Pass] = []
        self._first_replies: dict[int, tuple[float, float]] = {}
        self._found = [0] * (retries + 1)  # targets whose first reply answered each pass's probe
        # The longest round trip seen (or known before), for the retry gap and the final wait.
        self._slowest = max(0.0, min(round_trip, timeout))
        self._latest_reply = 0.0
        self._sent = 0
        self._silent = count
        self._last = 0.0  # when the latest batch went out
        self._progress: Progress | None = None
        self._reported = 0.0

    def run(self, progress: Progress | None = None) -> ProbeLog:
        """Make every pass, wait for the last replies, and say when each probe went out."""
        self._progress = progress
        first = self._clock()
        targets: Sequence[int] = range(self._count)
        for attempt in range(self._retries + 1):
            # Did the last retry pass find anyone? If not yet, wait until it has or until its
            # replies are all in: then no one is left to find.
            evidence = (
                attempt >= 2
                and self._count - self._silent >= MIN_EVIDENCE
                and not self._found[attempt - 1]
            )
            if evidence and self._settled(watched=attempt - 1):
                break
            if attempt:
                self._absorb()
                targets = [i for i in targets if not self._answered[i]]
            self._probe_pass(targets, self._retries - attempt)
        if not self._sent:
            return ProbeLog(0, self._passes, first, first, self._clock())
        self._settled()  # the final wait: late replies (and second MACs for one IP) count too
        self._report(0, 0, force=True)
        return ProbeLog(
            probes_sent=self._sent,
            passes=self._passes,
            first_probe=first,
            last_probe=self._last,
            finished=self._clock(),
            first_replies=self._first_replies,
        )

    def _probe_pass(self, targets: Sequence[int], passes_left: int) -> None:
        """Probe each of `targets` still silent when its turn comes, at the rate."""
        previous = self._passes[-1] if self._passes else None
        current = Pass(targets)
        self._passes.append(current)
        j, total = 0, len(targets)
        while j < total:
            self._absorb()
            granted = self._pacer.acquire(total - j)
            now = self._clock()
            batch: Sequence[int]
            if previous is None:
                batch = targets[j : j + granted]
                j += len(batch)
            else:
                batch, j = self._due(targets, j, granted, now, previous, current)
            if len(batch) < granted:
                self._pacer.refund(granted - len(batch))
            if batch:
                self._send(batch)
                current.ends.append(j)
                current.times.append(now)
                self._sent += len(batch)
                self._last = now
            elif j < total and previous is not None:
                due = previous.sent_or_zero(targets[j]) + self._retry_gap()
                self._sleep(min(MAX_IDLE_SLEEP, max(0.0, due - now)))
            self._report(total - j, passes_left)

    def _due(
        self,
        targets: Sequence[int],
        j: int,
        granted: int,
        now: float,
        previous: Pass,
        current: Pass,
    ) -> tuple[list[int], int]:
        """The retry batch from position `j`: targets whose last probe is a retry gap old and
        that are still silent (at most `granted`), and the position after them."""
        # Targets keep the previous pass's order, so their previous probes are in time order:
        # those old enough for a retry come first.
        ready = bisect_right(
            targets,
            now - self._retry_gap(),
            lo=j,
            hi=min(len(targets), j + granted),
            key=previous.sent_or_zero,
        )
        candidates = targets[j:ready]
        answered = self._answered
        batch = [i for i in candidates if not answered[i]]
        if len(batch) < len(candidates):
            current.skipped.update(i for i in candidates if answered[i])
        return batch, ready

    def _absorb(self) -> None:
        """Take in the replies collected since the last call: who answered, and how fast."""
        for index, when in self._answers():
            self._latest_reply = max(self._latest_reply, when)
            if not self._answered[index]:
                self._answered[index] = 1
                self._silent -= 1
                probed = _probe_before(self._passes, index, when)
                if probed is not None:
                    number, at = probed
                    self._found[number] += 1
                    self._first_replies[index] = (when, at)
                    self._slowest = max(self._slowest, when - at)

    def _retry_gap(self) -> float:
        if self._slowest == 0.0:
            return self._timeout  # nothing answered yet: no idea how slow this network is
        return min(self._timeout, max(MIN_RETRY_GAP, RTT_FACTOR * self._slowest))

    def _report(self, left_in_pass: int, passes_left: int, force: bool = False) -> None:
        # total = probes sent + probes still planned; it shrinks as silent targets answer.
        if self._progress is None:
            return
        now = self._clock()
        if force or now - self._reported >= PROGRESS_EVERY:
            self._reported = now
            planned = left_in_pass + passes_left * self._silent
            self._progress(self._sent, self._sent + planned)

    def _settled(self, watched: int | None = None) -> bool:
        """Wait for replies to settle (True), or until pass `watched` has found someone (False)."""
        deadline = self._last + self._timeout
        while True:
            self._absorb()
            if watched is not None and self._found[watched]:
                return False
            now = self._clock()
            end = deadline
            if self._slowest > 0.0:
                settle = max(MIN_SETTLE, RTT_FACTOR * self._slowest)
                end = min(deadline, max(self._last, self._latest_reply) + settle)
            if now >= end:
                return True
            self._sleep(min(end - now, MAX_IDLE_SLEEP))
