"""The administrators' calendar: `[policy] timezone`, and the conversions at the edges.

The ledger keeps UTC instants. People give and read calendar days and clock times in their own
zone: a guest "until Friday" may stay until local midnight, a monthly report covers a local
month, a table shows local times with the offset beside them. Only the edges convert, with the
helpers here; JSON and CSV keep UTC ISO 8601 (DESIGN.md).

The zone is an IANA name (`Asia/Shanghai`, `America/New_York`, `UTC`). Empty means this
machine's own zone, as `date` and cron use it: `TZ`, else `/etc/localtime`, else UTC.
"""

from __future__ import annotations

import io
import os
import re
import struct
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ipguard.errors import ConfigError

_LOCALTIME = Path("/etc/localtime")
# What a machine set to UTC may call it (`Etc/UTC` is Debian's /etc/localtime): named UTC alike.
_UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Zulu", "Universal"}
)


def _zone(name: str) -> tzinfo:
    # UTC needs no zone data: a machine without tzdata still runs in UTC.
    return UTC if name in _UTC_NAMES else ZoneInfo(name)


def resolve_zone(name: str, where: str) -> tzinfo:
    """The zone an IANA name gives; "" is this machine's zone. An unknown name is a ConfigError."""
    text = name.strip()
    if not text:
        return local_zone()
    try:
        return _zone(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        if not available_timezones():
            raise ConfigError(
                f"{where} = {name!r}: this machine has no time zone data; install it "
                "(Debian: apt-get install tzdata)"
            ) from None
        raise ConfigError(
            f"{where} = {name!r}: not a time zone; give an IANA name such as "
            '"Asia/Shanghai", "America/New_York" or "UTC" (or "" for this machine\'s zone)'
        ) from None


def local_zone() -> tzinfo:
    """This machine's zone as `date` reads it: `TZ`, else /etc/localtime, else UTC."""
    given = os.environ.get("TZ", "").strip().lstrip(":")
    if given:
        try:
            if given.startswith("/") and "/zoneinfo/" not in given:
                with open(given, "rb") as data:
                    return ZoneInfo.from_file(data, key=given)
            return _zone(given.split("/zoneinfo/", 1)[-1])
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return _posix(given)
    try:
        target = str(_LOCALTIME.resolve())
        name = target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "localtime"
        if name in _UTC_NAMES:  # a link into the zone database names the zone
            return UTC
        try:
            return ZoneInfo(name)  # one object per zone, as for a name in the configuration
        except (ZoneInfoNotFoundError, ValueError):
            pass
        with _LOCALTIME.open("rb") as data:  # the file itself: no zone database needed
            return ZoneInfo.from_file(data, key=name)
    except (ValueError, OSError):
        return UTC


# A POSIX TZ string, as old guides set it for China: `CST-8` (name, then hours WEST of UTC).
_POSIX_TZ = re.compile(r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)([+-]?)(\d{1,2})(?::(\d{2}))?")


# A zone file (RFC 8536, version 2) with no transitions and one UTC type: what its footer, a POSIX
# TZ string, says holds for every instant. zoneinfo reads that footer with its own parser.
_TZIF_HEAD = b"TZif2" + bytes(15)
_TZIF_BLOCK = struct.pack(">6l", 0, 0, 0, 0, 1, 4) + struct.pack(">lbB", 0, 0, 0) + b"UTC\0"


def _posix(given: str) -> tzinfo:
    """A POSIX TZ string as the C library reads it: `CST-8` is UTC+8 (hours WEST of UTC), and
    `CET-1CEST,M3.5.0,M10.5.0/3` (busybox, OpenWrt and container images set TZ so) changes to
    summer time and back by its rule.

    A daylight-saving name without a rule (`CET-1CEST`) keeps the standard offset all year. What
    is no TZ string at all is UTC, as for the C library.
    """
    if given.isprintable() and given.isascii() and " " not in given:
        footer = b"\n" + given.encode("ascii") + b"\n"
        try:
            data = _TZIF_HEAD + _TZIF_BLOCK + _TZIF_HEAD + _TZIF_BLOCK + footer
            return ZoneInfo.from_file(io.BytesIO(data), key=given)
        except ValueError:
            pass  # no rule after a daylight-saving name, or no TZ string: as below
    match = _POSIX_TZ.match(given)
    if match is None:
        return UTC
    sign, hours, minutes = match.groups()
    west = (int(hours) * 60 + int(minutes or 0)) * (-1 if sign == "-" else 1)
    if west == 0:
        return UTC
    return timezone(timedelta(minutes=-west), given[: match.start(1)].strip("<>"))


def zone_name(zone: tzinfo) -> str:
    """The zone's IANA name (or what stands for it) for headings: `Asia/Shanghai`."""
    return str(getattr(zone, "key", None) or zone)


def day_start(day: date, zone: tzinfo) -> datetime:
    """The UTC instant a local day begins (its local midnight).

    East of UTC, 1 January of the year 1 begins before the first instant a datetime holds: it
    begins at that instant (`--changed-since 0001-01-01` means everything).
    """
    try:
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def days_span(first: date, last: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The half-open UTC period of local days `first` to `last`, both included.

    A day is local midnight to the next local midnight: 23 or 25 hours across a DST change.
    """
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)


def local_day(moment: datetime, zone: tzinfo) -> date:
    """The local calendar day an instant falls on (a naive instant is UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def today(now: datetime, zone: tzinfo) -> date:
    """The local date of `now`."""
    return local_day(now, zone)


def offset_text(moment: datetime) -> str:
    """A local time's offset for a reader: `UTC` at offset zero, else `+08:00`, `-05:00`."""
    offset = moment.utcoffset() or timedelta()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def shown(moment: datetime | None, zone: tzinfo, *, seconds: bool = False) -> str:
    """An instant as a person reads it: `2026-12-05 23:59 +08:00` (`… UTC` at offset zero)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{local.strftime(pattern)} {offset_text(local)}"


def iso_local(moment: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 in the zone, with its offset (`2026-12-05T23:59:00+08:00`; `…Z` at UTC itself)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    return local.isoformat(timespec="seconds").replace("+00:00", "Z")
