"""The scanner seam: a sweep turns target addresses into observations.

A run (ipguard.runner) holds sweeps only through `Sweep`, so tests of the runner and the command
line can hand it a fake that returns canned observations, and nothing else needs a network:

    class FakeSweep(Sweep):
        def __init__(self, seen: list[Observation]) -> None:
            self.seen = seen

        def sweep(self, targets: Iterable[str]) -> SweepResult:
            wanted = set(targets)
            found = [o for o in self.seen if o.ip in wanted]
            return SweepResult(observations=found, targets=len(wanted), probes_sent=len(wanted),
                               duration=0.0, started_at=datetime.now(UTC))

Real sweeps: `scanners.arp.ArpSweep` (hosts on the local link) and `scanners.icmp.IcmpSweep`
(routed subnets). Both refuse targets outside their `scanners.scope.Scope`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ipguard.model import Observation


def clipped(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last one … when anything was cut.

    Hosts choose how long their names, banners and titles are; ipguard keeps a bounded part and
    says so, so that nobody mistakes a cut value for the whole of it.
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


Progress = Callable[[int, int], None]
"""Called as `progress(done, total)` while a sweep runs, a few times a second at most.

`done` counts probes sent; `total` is `done` plus the probes still planned, so it shrinks as silent
targets answer and need no retry. The last call has done == total.
"""


@dataclass(frozen=True)
class SweepResult:
    """What one sweep saw and what it cost.

    `observations` holds every reply, in arrival order: an IP answering from two MACs gives two
    observations, and a host answering twice gives two as well (both matter for duplicate-ip).
    """

    observations: list[Observation]
    targets: int
    probes_sent: int
    duration: float  # seconds from the first probe to the end of the final wait
    started_at: datetime
    interface: str | None = None
    source_ip: str | None = None
    source_mac: str | None = None
    replies_dropped: int = 0  # replies the kernel discarded because the receive buffer was full
    # Replies read but not kept, by reason: a flood or a spoofer (scanners.arp.ReplyBudget).
    replies_ignored: Mapping[str, int] = field(default_factory=dict)

    @property
    def live(self) -> set[str]:
        """The addresses that answered at least once."""
        return {o.ip for o in self.observations}


class Sweep(abc.ABC):
    """Probes addresses and reports who answered."""

    @abc.abstractmethod
    def sweep(self, targets: Iterable[str]) -> SweepResult:
        """Probe each target address (as `Scope.targets` lists them) and return every reply.

        Raises ScopeError before sending anything when a target lies outside the sweep's scope.
        """
