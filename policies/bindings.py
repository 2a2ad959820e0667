"""Who may use which address: unregistered-host, ip-mac-mismatch, mac-moved, duplicate-ip.

Each answer at an IP raises at most one of these (see `policies.sightings` for the verdicts):

- `duplicate-ip` (ip): two or more MACs answered one IP. It is the only binding finding at that IP:
  the unregistered, mismatching or moved MACs among them are listed in its detail, not reported
  again. Critical when the IP is registered to a router or gateway (ARP spoofing of the gateway).
- `ip-mac-mismatch` (ip, offending MAC): a registered IP answered from another MAC and its own MAC
  did not answer. Wins over mac-moved and unregistered-host for the offender. Critical when the
  IP is registered to a router or gateway.
- `mac-moved` (observed ip, MAC): a registered MAC answered at an IP no active record holds, or
  the MAC of a record scoped to another site answered in this site's run (even at its own IP: the
  device moved between sites). The detail lists the registered sites.
- `unregistered-host` (ip, MAC or none for ICMP): nothing in the ledger knows the pair. One level
  more severe once it has been open longer than `unregistered_grace_days`. A randomized MAC (the
  locally administered bit: phones and laptops make one up per network) is said so in the summary
  and the detail (`"randomized": true`), at `randomized_mac_severity` when a site set it.
  IPv6 addresses are one finding per MAC, not per address (a privacy address changes daily, a
  host holds several): with an unregistered IPv4 address when the MAC has one, else at its
  link-local address (stable), the other addresses listed in the detail (`"ipv6"`). So is
  mac-moved for a device of another site seen at IPv6 addresses.

Ports found open on a host with one of these findings go into its detail, not into
unexpected-service findings; so do the names the host goes by.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ipguard.model import Binding, DeviceStatus, Finding, FindingKind
from ipguard.policies.base import (
    GATEWAY_SPOOFING,
    PAST_GRACE,
    PolicySettingsLike,
    RunFacts,
    escalated,
    is_gateway,
    is_randomized,
    iso,
    registration,
    severity_of,
    utc,
    virtual_router,
    who,
)
from ipguard.policies.sightings import Sighting, Sightings, Verdict


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every binding finding of the run."""
    found = [_duplicate(ip, macs, settings, seen) for ip, macs in seen.duplicates.items()]
    unregistered, moved = [], []
    for sighting in seen:
        if sighting.verdict is Verdict.MISMATCH:
            found.append(_mismatch(sighting, settings, seen))
        elif sighting.verdict is Verdict.MOVED:
            moved.append(sighting)
        elif sighting.verdict is Verdict.UNREGISTERED:
            unregistered.append(sighting)
    for sighting, ipv6 in _one_per_mac(moved):
        found.append(_moved(sighting, settings, seen, ipv6))
    for sighting, ipv6 in _one_per_mac(unregistered):
        found.append(_unregistered(sighting, facts, settings, seen, ipv6))
    return found


def _one_per_mac(sightings: list[Sighting]) -> list[tuple[Sighting, list[str]]]:
    """Each sighting to report, with the IPv6 addresses of its MAC folded into it."""
    ipv6: dict[str, list[Sighting]] = {}
    kept: list[Sighting] = []
    carrier: dict[str, Sighting] = {}  # MAC -> its first IPv4 sighting
    for sighting in sightings:
        if sighting.mac is not None and ":" in sighting.ip:
            ipv6.setdefault(sighting.mac, []).append(sighting)
        else:
            kept.append(sighting)
            if sighting.mac is not None:
                carrier.setdefault(sighting.mac, sighting)
    folded: dict[int, list[str]] = {}  # id of the carrying sighting -> the addresses
    for mac, group in ipv6.items():
        addresses = [sighting.ip for sighting in group]
        lead = carrier.get(mac)
        if lead is None:
            # The link-local address is the stable one (from the MAC, or RFC 7217's secret).
            lead = next((s for s in group if s.ip.startswith("fe80:")), group[0])
            kept.append(lead)
            addresses.remove(lead.ip)
        folded[id(lead)] = addresses
    return [(sighting, folded.get(id(sighting), [])) for sighting in kept]


def _host_detail(ip: str, seen: Sightings) -> dict[str, Any]:
    return {
        "observed": seen.observed(ip),
        "open_ports": seen.open_ports(ip),
        "names": seen.names_at(ip),
    }


def _other_records(mac: str, seen: Sightings) -> list[dict[str, Any]]:
    """The records a MAC holds elsewhere, any status: who the offender is, if anyone knows."""
    return [registration(record) for record in seen.ledger.records_of(mac)]


def _duplicate(
    ip: str, macs: tuple[str, ...], settings: PolicySettingsLike, seen: Sightings
) -> Finding:
    owner = seen.ledger.active_by_ip.get(ip)
    kind = FindingKind.DUPLICATE_IP
    escalation = GATEWAY_SPOOFING if is_gateway(owner) else None
    listed = ", ".join(macs)
    if owner is None:
        summary = f"{ip} answered from {len(macs)} MACs ({listed}) and is registered to none"
    else:
        summary = (
            f"{ip} is registered to {owner.mac} ({who(owner)}) but answered from "
            f"{len(macs)} MACs ({listed})"
        )
    detail: dict[str, Any] = {
        "registered": None if owner is None else registration(owner),
        "macs": list(macs),
        "others": [
            {"mac": mac, "registered_elsewhere": _other_records(mac, seen)}
            for mac in macs
            if owner is None or mac not in owner.macs
        ],
        **_host_detail(ip, seen),
    }
    if escalation:
        detail["escalation"] = escalation
    return Finding(kind, severity_of(kind, settings, escalation), ip, None, None, summary, detail)


def _mismatch(sighting: Sighting, settings: PolicySettingsLike, seen: Sightings) -> Finding:
    owner = sighting.record
    assert owner is not None and sighting.mac is not None
    kind = FindingKind.IP_MAC_MISMATCH
    escalation = GATEWAY_SPOOFING if is_gateway(owner) else None
    elsewhere = _other_records(sighting.mac, seen)
    offender = sighting.mac
    if elsewhere:
        offender += f" (registered to {_describe(seen, sighting.mac)})"
    summary = (
        f"{sighting.ip} is registered to {owner.mac} ({who(owner)}) but answered from {offender}"
    )
    detail: dict[str, Any] = {
        "registered": registration(owner),
        "registered_mac": owner.mac,
        "observed_mac": sighting.mac,
        "offender_records": elsewhere,
        **_host_detail(sighting.ip, seen),
    }
    if escalation:
        detail["escalation"] = escalation
    protocol = virtual_router(sighting.mac) if escalation else None
    twin = escalation and sighting.mac in seen.ledger.router_macs
    if twin:  # still critical (a router can be made to spoof), but most likely a failover
        detail["failover_twin"] = True
        summary += (
            ", another registered router: if the two fail over without a virtual MAC "
            f"(keepalived's default), register it (ipguard ledger edit {sighting.ip} "
            f"--alt-macs {sighting.mac})"
        )
    if protocol:  # still critical: anyone can send from such a MAC; but most likely the ledger
        detail["virtual_router"] = protocol
        summary += (
            f", a {protocol} virtual router MAC: if the gateway runs {protocol}, register that "
            f"(ipguard ledger edit {sighting.ip} --mac {sighting.mac})"
        )
    severity = severity_of(kind, settings, escalation)
    return Finding(kind, severity, sighting.ip, sighting.mac, None, summary, detail)


def _moved(
    sighting: Sighting, settings: PolicySettingsLike, seen: Sightings, ipv6: list[str]
) -> Finding:
    assert sighting.mac is not None
    ledger = seen.ledger
    here = ledger.active_by_mac.get(sighting.mac, [])
    elsewhere = ledger.elsewhere_by_mac.get(sighting.mac, [])
    records = [*here, *elsewhere]
    kind = FindingKind.MAC_MOVED
    registered_at = ", ".join(_place(record, ledger.site) for record in records)
    answered_at = sighting.ip + (f" at site {ledger.site}" if elsewhere else "")
    summary = (
        f"{sighting.mac} ({who(records[0])}), registered at {registered_at}, "
        f"answered at {answered_at}"
    )
    detail = {
        "registered": [registration(record) for record in records],
        "registered_ips": [record.ip for record in records],
        "registered_sites": sorted({record.site for record in records}),
        **_host_detail(sighting.ip, seen),
    }
    if ipv6:
        detail["ipv6"] = ipv6
    return Finding(
        kind, severity_of(kind, settings), sighting.ip, sighting.mac, None, summary, detail
    )


def _unregistered(
    sighting: Sighting,
    facts: RunFacts,
    settings: PolicySettingsLike,
    seen: Sightings,
    ipv6: list[str],
) -> Finding:
    kind = FindingKind.UNREGISTERED_HOST
    finding = Finding(kind, severity_of(kind, settings), sighting.ip, sighting.mac, None, "")
    first = facts.first_seen.get((kind.value, finding.subject))
    grace = timedelta(days=settings.unregistered_grace_days)
    overdue = first is not None and utc(facts.now) - utc(first) > grace
    randomized = is_randomized(sighting.mac)
    if sighting.mac is None:
        summary = f"{sighting.ip} answered without a MAC (routed segment) and no record holds it"
    else:
        what = "a randomized MAC that" if randomized else "which"
        summary = f"{sighting.ip} answered from {sighting.mac}, {what} matches no ledger record"
    if overdue:
        summary += f", unregistered for more than {settings.unregistered_grace_days} days"
    detail: dict[str, Any] = {
        "first_seen": iso(first),
        "grace_days": settings.unregistered_grace_days,
        "randomized": randomized,
        **_host_detail(sighting.ip, seen),
    }
    if ipv6:
        detail["ipv6"] = ipv6
    if overdue:
        detail["escalation"] = PAST_GRACE
    severity = severity_of(kind, settings, PAST_GRACE if overdue else None)
    if randomized and settings.randomized_mac_severity is not None:
        # Where a phone's finding starts; the grace period's escalation applies on top.
        severity = settings.randomized_mac_severity
        if overdue:
            severity = escalated(severity)
    return Finding(kind, severity, sighting.ip, sighting.mac, None, summary, detail)


def _place(record: Binding, site: str) -> str:
    """Where a record is registered: its IP, and its site when that is not the run's."""
    if record.site and record.site != site:
        return f"{record.ip} at site {record.site}"
    return record.ip


def _describe(seen: Sightings, mac: str) -> str:
    records: list[Binding] = seen.ledger.records_of(mac)
    first = records[0]
    state = "" if first.status is DeviceStatus.ACTIVE else f", {first.status.value}"
    return f"{who(first)} at {_place(first, seen.ledger.site)}{state}"
