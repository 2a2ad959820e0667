"""The sensor's clock against the ledger server's: many sensors share one ledger's times.

A run's start, every finding's first and last seen, its report-due time, when each address was
last seen (stale-registration) and what retention prunes are all written from the clock of the
sensor that scanned. On a shared PostgreSQL ledger a sensor whose clock is wrong (no NTP, a
hardware clock kept in local time read as UTC: eight hours ahead in China) would write them into
everyone's history: a sighting from the future keeps a record from ever being stale, a finding
first seen tomorrow is never overdue, runs dated next year outlive retention. Such a sensor may not
scan until its clock is set. A SQLite ledger is on the sensor's own disk: there is one clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from ipguard.errors import OperationalError

# NTP keeps clocks within milliseconds; a few minutes is a clock nobody sets.
MAX_SKEW = timedelta(minutes=5)


# What a wrong clock would do, by what the machine is about to do.
SCAN = (
    "sensor",
    "its times (first and last seen, report due, retention) would be wrong in every sensor's "
    "ledger",
    "scan",
)
PRUNE = (
    "machine",
    "its cutoff would remove history the retention keeps (a clock a year ahead: a year of it)",
    "prune",
)


def refuse_skewed(session: Session, doing: tuple[str, str, str] = SCAN) -> None:
    """Refuse to act on this machine's clock when it is off the PostgreSQL server's.

    `doing` is SCAN or PRUNE: who this machine is, what would go wrong, what to do again. The
    wall clock is read here, not a run's clock: a run replayed at a chosen time (a spooled run,
    a test) still comes from a machine whose clock must be right.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    server = session.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
    local = datetime.now(UTC)
    skew = local - server
    if abs(skew) <= MAX_SKEW:
        return
    who, harm, again = doing
    direction = "ahead of" if skew > timedelta(0) else "behind"
    raise OperationalError(
        f"this {who}'s clock ({local:%Y-%m-%d %H:%M:%S} UTC) is {_span(abs(skew))} "
        f"{direction} the ledger server's ({server.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC); "
        f"{harm}: set the clock that is wrong (timedatectl set-ntp true: this {who}'s, or the "
        f"database server's if every sensor is refused) and {again} again"
    )


def _span(skew: timedelta) -> str:
    """`3 h 12 min`, `9 min 5 s`: how far off, to the second."""
    seconds = round(skew.total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{count} {unit}" for count, unit in parts if count]
    return " ".join(shown[:2])
