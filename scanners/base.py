"""What every scanner shares: the result of a sweep, progress callbacks, clipped text.

The sweeps themselves are in scanners.sweep (the template), scanners.arp (hosts on the local link)
and scanners.icmp (routed subnets). A sweep refuses targets outside its `scanners.scope.Scope`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ipguard.model import IgnoredReply, Observation


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
    # Replies read but not kept, by reason: a flood or a spoofer (scanners.sweep.ReplyBudget).
    replies_ignored: Mapping[IgnoredReply, int] = field(default_factory=dict)

    @property
    def live(self) -> set[str]:
        """The addresses that answered at least once."""
        return {o.ip for o in self.observations}
