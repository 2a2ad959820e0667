"""The administrators' calendar (`[policy] timezone`): a guest's last day ends at local midnight.

`guest_until = 2026-12-04` lets a guest on until midnight Friday→Saturday where the school is: in
Shanghai (UTC+8) that is 16:00 UTC on Friday, not 00:00 UTC (08:00 on Saturday there, eight hours
too long); in New York (UTC−5) 05:00 UTC on Saturday, not 00:00 UTC (19:00 on Friday there, five
hours too early). A day the clocks change is 23 or 25 hours long.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ipguard.policies import evaluate
from tests.policies.helpers import IP1, A, arp, device, facts, settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def expired(now: datetime, guest_until: str, zone: ZoneInfo) -> bool:
    """Whether a run at `now` reports the guest (online at its own address) as expired."""
    run = replace(facts([device(IP1, A, guest_until=guest_until)], [arp(IP1, A)]), now=now)
    return any(f.kind == "guest-expired" for f in evaluate(run, settings(timezone=zone)))


@pytest.mark.parametrize(
    ("now", "zone", "until", "is_expired"),
    [
        # Shanghai: Friday 23:59 local is still the guest's day; 00:00 Saturday it is over
        # (before: allowed until 08:00 Saturday local, 00:00 UTC).
        pytest.param(datetime(2026, 12, 4, 15, 59, tzinfo=UTC), SHANGHAI, "2026-12-04", False),
        pytest.param(datetime(2026, 12, 4, 16, 0, tzinfo=UTC), SHANGHAI, "2026-12-04", True),
        pytest.param(datetime(2026, 12, 4, 23, 59, tzinfo=UTC), SHANGHAI, "2026-12-04", True),
        # New York: 19:30 Friday local is still Friday (before: cut off at 19:00 local).
        pytest.param(datetime(2026, 12, 5, 0, 30, tzinfo=UTC), NEW_YORK, "2026-12-04", False),
        pytest.param(datetime(2026, 12, 5, 4, 59, tzinfo=UTC), NEW_YORK, "2026-12-04", False),
        pytest.param(datetime(2026, 12, 5, 5, 0, tzinfo=UTC), NEW_YORK, "2026-12-04", True),
        # The night the clocks go back (Sunday 2026-11-01, 25 hours): its end is midnight EST,
        # 05:00 UTC, an hour after what the day's start offset (EDT, UTC−4) would say.
        pytest.param(datetime(2026, 11, 2, 4, 30, tzinfo=UTC), NEW_YORK, "2026-11-01", False),
        pytest.param(datetime(2026, 11, 2, 5, 0, tzinfo=UTC), NEW_YORK, "2026-11-01", True),
        # The night they go forward (Sunday 2026-03-08, 23 hours): over at midnight EDT, 04:00.
        pytest.param(datetime(2026, 3, 9, 3, 59, tzinfo=UTC), NEW_YORK, "2026-03-08", False),
        pytest.param(datetime(2026, 3, 9, 4, 0, tzinfo=UTC), NEW_YORK, "2026-03-08", True),
        # UTC as before.
        pytest.param(datetime(2026, 12, 4, 23, 59, tzinfo=UTC), UTC, "2026-12-04", False),
        pytest.param(datetime(2026, 12, 5, 0, 0, tzinfo=UTC), UTC, "2026-12-04", True),
    ],
)
def test_a_guest_period_ends_at_local_midnight(
    now: datetime, zone: ZoneInfo, until: str, is_expired: bool
) -> None:
    assert expired(now, until, zone) is is_expired


def test_stale_registration_names_the_local_day_it_was_last_seen() -> None:
    # Seen last at 20:00 UTC on 2026-10-01: 04:00 on 2 October in Shanghai.
    last = datetime(2026, 10, 1, 20, 0, tzinfo=UTC)
    record = device(IP1, A)
    run = facts([record], [], last_seen={(IP1, A): last})
    run = replace(run, now=last + timedelta(days=60))
    (stale,) = [
        f for f in evaluate(run, settings(timezone=SHANGHAI)) if f.kind == "stale-registration"
    ]
    assert "(last on 2026-10-02)" in stale.summary
