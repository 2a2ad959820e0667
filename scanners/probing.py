"""The probe schedule both sweeps share: paced passes, retries for silent targets, a final wait.

The sweep supplies two callbacks: `send(batch)` puts one probe per target index on the wire (its hot
loop lives in the sweep, where the packet template is), and `answers()` returns the (target index,
reply time) pairs its receiver collected since the previous call. The schedule decides who is
probed when.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from scanners.base import Progress
from scanners.pacing import Pacer

# A silent target is probed again once its previous probe is RTT_FACTOR round trips old (the
# slowest reply seen so far), but never sooner than MIN_RETRY_GAP nor later than the sweep's
# timeout: on a LAN replies take a millisecond, so waiting the full timeout between passes would
# only waste time.
RTT_FACTOR = 4.0
MIN_RETRY_GAP = 0.05
PROGRESS_EVERY = 0.1  # seconds between progress reports: a progress bar needs no more
MAX_IDLE_SLEEP = 0.05  # bounded sleeps, so that answers keep being absorbed while waiting


@dataclass(frozen=True)
class ProbeLog:
    """When each target was probed: `sent_at[p][i]` is pass p's probe time of target i (0: none)."""

    probes_sent: int
    sent_at: list[array[float]]
    first_probe: float
    last_probe: float
    finished: float

    def probe_before(self, index: int, when: float) -> float | None:
        """The time of the latest probe to target `index` sent no later than `when`."""
        for stamps in reversed(self.sent_at):
            sent = stamps[index]
            if 0.0 < sent <= when:
                return sent
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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeLog:
    """Probe targets 0..count-1 once, then up to `retries` more times each while they stay silent.

    Returns after waiting `timeout` seconds past the last probe, so that late replies are in.
    """
    pacer = Pacer(rate, clock=clock, sleep=sleep)
    answered = bytearray(count)
    last_sent = array("d", bytes(8 * count))
    sent_at: list[array[float]] = []
    slowest = 0.0  # the longest round trip seen, for the retry gap
    sent = 0
    silent = count
    reported = 0.0

    def absorb() -> None:
        nonlocal slowest, silent
        for index, when in answers():
            if not answered[index]:
                answered[index] = 1
                silent -= 1
                rtt = when - last_sent[index]
                if rtt > slowest and last_sent[index] > 0.0:
                    slowest = rtt

    def retry_gap() -> float:
        if slowest == 0.0:
            return timeout  # nothing answered yet: no idea how slow this network is
        return min(timeout, max(MIN_RETRY_GAP, RTT_FACTOR * slowest))

    def report(left_in_pass: int, passes_left: int, force: bool = False) -> None:
        # total = probes sent + probes still planned; it shrinks as silent targets answer.
        nonlocal reported
        if progress is None:
            return
        now = clock()
        if force or now - reported >= PROGRESS_EVERY:
            reported = now
            progress(sent, sent + left_in_pass + passes_left * silent)

    first = clock()
    pending: list[int] | range = range(count)
    for attempt in range(retries + 1):
        stamps = array("d", bytes(8 * count))
        sent_at.append(stamps)
        if attempt:
            absorb()
            pending = [i for i in pending if not answered[i]]
        j = 0
        while j < len(pending):
            absorb()
            granted = pacer.acquire(len(pending) - j)
            now = clock()
            if attempt == 0:
                batch: Sequence[int] = pending[j : j + granted]
                j += len(batch)
            else:
                gap = retry_gap()
                chosen: list[int] = []
                while len(chosen) < granted and j < len(pending):
                    i = pending[j]
                    if answered[i]:
                        j += 1
                    elif last_sent[i] + gap > now:
                        break  # targets are in probe order: the rest are younger still
                    else:
                        chosen.append(i)
                        j += 1
                batch = chosen
            if len(batch) < granted:
                pacer.refund(granted - len(batch))
            if batch:
                send(batch)
                for i in batch:
                    last_sent[i] = now
                    stamps[i] = now
                sent += len(batch)
            elif j < len(pending):
                sleep(min(MAX_IDLE_SLEEP, max(0.0, last_sent[pending[j]] + retry_gap() - now)))
            report(len(pending) - j, retries - attempt)
    if not sent:
        return ProbeLog(
            probes_sent=0, sent_at=sent_at, first_probe=first, last_probe=first, finished=clock()
        )
    last = max(last_sent)
    # The final wait: late replies (and second MACs for one IP) still count.
    while (left := last + timeout - clock()) > 0:
        sleep(min(left, MAX_IDLE_SLEEP * 4))
    absorb()
    report(0, 0, force=True)
    return ProbeLog(
        probes_sent=sent, sent_at=sent_at, first_probe=first, last_probe=last, finished=clock()
    )
