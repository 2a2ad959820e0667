"""Registrations over time: isolated-device-online, suspended-device-online, guest-expired, stale.

These findings are about a ledger record, so their subject is the record's own (ip, MAC) wherever
the device answered; the addresses it answered at are in the detail.

- `isolated-device-online` (critical): a record flagged isolated, any status, whose MAC answered
  anywhere, or whose IP answered without a MAC, or whose MAC a polled switch learnt on any port
  (the device is plugged into the network, whatever VLAN hides it from the sweep; the detail's
  `learnt_on` names the ports). Nothing else is reported about that device.
- `suspended-device-online`: a suspended or retired record answering (its MAC with no active
  record, or its own pair, or a MAC-less reply at its IP). When its MAC answers at an IP registered
  to someone else, ip-mac-mismatch is reported instead (the offender's record is in its detail).
- `guest-expired`: an active record whose `guest_until` is before the run's date in the
  administrators' zone (`[policy] timezone`: a guest may stay until that day's local midnight),
  while its device is online: its pair answered, or its MAC answered anywhere but at another of
  its records.
- `stale-registration`: an active, non-isolated record not seen by this run and last seen by an
  earlier run more than `stale_after_days` ago, or never. Only records whose IP lies inside the
  run's subnets and that are valid at the run's site are judged: a run that did not look, or looked
  at another site, proves nothing. A never-seen record is stale at once; to give new records
  time, pass their creation time as `last_seen`. An isolated record being unseen is what the rules
  want, so it is never stale. A device seen over IPv6 only was seen: at a static IPv6 of the
  record, or at any IPv6 address when the record is its MAC's only active one here (an IPv6 answer
  cannot tell which of a MAC's several records the device still uses; their IPv4 answers can).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ipguard.model import Binding, DeviceStatus, Finding, FindingKind
from ipguard.policies.base import (
    AddressRanges,
    PolicySettingsLike,
    RunFacts,
    iso,
    registration,
    severity_of,
    utc,
    who,
)
from ipguard.policies.sightings import Sighting, Sightings, Verdict, pick

# Sightings in which a device answers at an address that is not one of its own active records.
_STRAY = frozenset({Verdict.DUPLICATE, Verdict.MISMATCH, Verdict.MOVED, Verdict.SUSPENDED})


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every lifecycle finding of the run."""
    learnt = _learnt_isolated(facts, seen)
    return [
        *_online(seen, Verdict.ISOLATED, settings, learnt),
        *_online(seen, Verdict.SUSPENDED, settings),
        *_guests_expired(facts, settings, seen),
        *_stale(facts, settings, seen),
    ]


def _by_record(sightings: Iterable[Sighting]) -> dict[tuple[str, str], list[Sighting]]:
    grouped: dict[tuple[str, str], list[Sighting]] = {}
    for sighting in sightings:
        if sighting.record is not None:
            key = (sighting.record.ip, sighting.record.mac)
            grouped.setdefault(key, []).append(sighting)
    return grouped


def _learnt_isolated(facts: RunFacts, seen: Sightings) -> dict[str, list[dict[str, Any]]]:
    """MAC of an isolated record -> the switch ports it was learnt on (answered polls only)."""
    isolated = seen.ledger.isolated_by_mac
    learnt: dict[str, list[dict[str, Any]]] = {}
    for poll in facts.snmp:
        if not poll.answered:
            continue
        for entry in poll.fdb:
            if entry.mac in isolated:
                port = {"device": poll.device, "port": f"{poll.device}:{entry.if_name}"}
                learnt.setdefault(entry.mac, []).append({**port, "vlan": entry.vlan})
    return learnt


def _online(
    seen: Sightings,
    verdict: Verdict,
    settings: PolicySettingsLike,
    learnt: Mapping[str, list[dict[str, Any]]] | None = None,
) -> list[Finding]:
    grouped = _by_record(seen.with_verdict(verdict))
    for mac in learnt or ():  # isolated devices only a switch saw (by any of their MACs)
        only = pick(seen.ledger.isolated_by_mac[mac], "")
        if not any(mac in group[0].record.macs for group in grouped.values() if group[0].record):
            grouped[(only.ip, only.mac)] = [Sighting("", mac, verdict, only)]
    found = []
    for sightings in grouped.values():
        record = sightings[0].record
        assert record is not None
        ips = list(dict.fromkeys(sighting.ip for sighting in sightings if sighting.ip))
        observed = [
            entry for sighting in sightings for entry in seen.observed(sighting.ip, sighting.mac)
        ]
        where = ", ".join(ips)
        # Where a switch learnt any of its MACs (a bond's other NIC sits on another port).
        learnt_on = [port for mac in record.macs for port in (learnt or {}).get(mac, [])]
        if verdict is Verdict.ISOLATED:
            kind = FindingKind.ISOLATED_DEVICE_ONLINE
            ports = ", ".join(port["port"] for port in learnt_on)
            said = [f"answered at {where}"] if ips else []
            said += [f"was learnt on switch port {ports}"] if ports else []
            summary = (
                f"Isolated device {record.ip} / {record.mac} ({who(record)}) {' and '.join(said)}"
            )
        else:
            kind = FindingKind.SUSPENDED_DEVICE_ONLINE
            summary = (
                f"{record.ip} / {record.mac} ({who(record)}), whose registration is "
                f"{record.status.value}, answered at {where}"
            )
        detail: dict[str, Any] = {
            "status": record.status.value,
            "seen_at": ips,
            "observed": observed,
            "open_ports": [port for ip in ips for port in seen.open_ports(ip)],
            "names": [name for ip in ips for name in seen.names_at(ip)],
            "registered": registration(record),
        }
        if verdict is Verdict.ISOLATED:
            detail["learnt_on"] = learnt_on
        severity = severity_of(kind, settings)
        found.append(Finding(kind, severity, record.ip, record.mac, None, summary, detail))
    return found


def _guests_expired(
    facts: RunFacts, settings: PolicySettingsLike, seen: Sightings
) -> list[Finding]:
    guests = [
        record
        for record in seen.ledger.records
        if record.guest_until is not None and record.status is DeviceStatus.ACTIVE
    ]
    if not guests:
        return []
    # The guest's last day ends at its local midnight: the run's date in the administrators' zone.
    today = utc(facts.now).astimezone(settings.timezone).date()
    expired = [record for record in guests if record.guest_until and record.guest_until < today]
    if not expired:
        return []
    stray: dict[str, list[str]] = {}
    for sighting in seen:
        if sighting.verdict in _STRAY and sighting.mac is not None:
            stray.setdefault(sighting.mac, []).append(sighting.ip)
    kind = FindingKind.GUEST_EXPIRED
    found = []
    for record in expired:
        ips = [record.ip] if seen.authorised.get(record.ip) is record else []
        ips += [ip for ip in record.ipv6 if seen.authorised.get(ip) is record]
        ips += seen.ipv6_by_mac.get(record.mac, []) + stray.get(record.mac, [])
        if not ips:
            continue
        assert record.guest_until is not None
        summary = (
            f"Guest {record.ip} / {record.mac} ({who(record)}) is online although its guest "
            f"period ended on {record.guest_until.isoformat()}"
        )
        detail = {
            "guest_until": record.guest_until.isoformat(),
            "seen_at": ips,
            "registered": registration(record),
        }
        found.append(
            Finding(kind, severity_of(kind, settings), record.ip, record.mac, None, summary, detail)
        )
    return found


def _stale(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    if not facts.subnets:  # nothing covered (a watcher's facts): nothing can be proven stale
        return []
    now = utc(facts.now)
    limit = timedelta(days=settings.stale_after_days)
    covered = AddressRanges(facts.subnets)
    found = []
    by_mac: dict[str, datetime] | None = None
    for record in seen.ledger.records:
        if record.status is not DeviceStatus.ACTIVE or record.isolated:
            continue
        if not seen.ledger.applies(record) or _seen_now(record, seen):
            continue
        last = None
        for mac in record.macs:  # answering from any of its MACs is being seen
            last = _newest(last, facts.last_seen.get((record.ip, mac)))
        if last is not None and now - utc(last) <= limit:
            continue
        if record.ip not in covered:
            continue
        if by_mac is None:  # read only when some record is a candidate
            by_mac = _ipv6_last_seen(facts.last_seen)
        last = _newest(last, _last_over_ipv6(record, facts.last_seen, by_mac, seen))
        if last is not None and now - utc(last) <= limit:
            continue
        found.append(_stale_finding(record, last, now, settings))
    return found


def _sole(record: Binding, seen: Sightings) -> bool:
    """True when the record is its MAC's only active one here: the MAC's presence is its own."""
    return len(seen.ledger.active_by_mac.get(record.mac, ())) == 1


def _seen_now(record: Binding, seen: Sightings) -> bool:
    """The record's device answered in this run: at its IP or a static IPv6 of its own, or its
    MAC at an IPv6 address the network gave it (SLAAC, privacy, DHCPv6, link-local). Of several
    records of one MAC, only the one whose own address answered was seen: an IPv6 answer cannot
    say which of them the device still uses."""
    authorised = seen.authorised
    if authorised.get(record.ip) is record:
        return True
    if any(authorised.get(ip) is record for ip in record.ipv6):
        return True
    return record.mac in seen.ipv6_by_mac and _sole(record, seen)


def _ipv6_last_seen(last_seen: Mapping[tuple[str, str], datetime]) -> dict[str, datetime]:
    """MAC -> when an earlier run last saw it at any IPv6 address."""
    newest: dict[str, datetime] = {}
    for (ip, mac), when in last_seen.items():
        if ":" in ip:
            known = newest.get(mac)
            if known is None or utc(when) > utc(known):
                newest[mac] = when
    return newest


def _last_over_ipv6(
    record: Binding,
    last_seen: Mapping[tuple[str, str], datetime],
    by_mac: Mapping[str, datetime],
    seen: Sightings,
) -> datetime | None:
    """When an earlier run last saw the record's device over IPv6 (the same rules as
    `_seen_now`): at a static IPv6 of its own, or anywhere when it is its MAC's only record."""
    last = by_mac.get(record.mac) if _sole(record, seen) else None
    for ip in record.ipv6:
        last = _newest(last, last_seen.get((ip, record.mac)))
    return last


def _newest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return a if utc(a) >= utc(b) else b


def _stale_finding(
    record: Binding, last: datetime | None, now: datetime, settings: PolicySettingsLike
) -> Finding:
    kind = FindingKind.STALE_REGISTRATION
    if last is None:
        summary = f"{record.ip} / {record.mac} ({who(record)}) has never been seen by a scan"
        days = None
    else:
        days = (now - utc(last)).days
        summary = (
            f"{record.ip} / {record.mac} ({who(record)}) has not been seen for {days} days "
            f"(last on {utc(last).astimezone(settings.timezone).date().isoformat()})"
        )
    detail = {
        "last_seen": iso(last),
        "days_unseen": days,
        "stale_after_days": settings.stale_after_days,
        "registered": registration(record),
    }
    return Finding(kind, severity_of(kind, settings), record.ip, record.mac, None, summary, detail)
