"""How ipguard judges: what a run saw, set against the ledger, turned into findings.

Every policy is a pure function of its inputs: `RunFacts` (the run's observations, a ledger
snapshot, the history it needs, the run's time) and the `[policy]` settings. `evaluate` runs every
family once over shared indexes:

    sightings   each answer at each IP gets one verdict (authorised, mismatch, moved, …)
    bindings    unregistered-host, ip-mac-mismatch, mac-moved, duplicate-ip
    services    unexpected-service
    devices     open-proxy, rogue-dhcp, rogue-router, rogue-ap
    pools       out-of-pool
    naming      hostname-policy
    lifecycle   isolated-device-online, suspended-device-online, guest-expired, stale-registration
    switchports wrong-port, unmanaged-switch (SNMP forwarding tables)
    ipv6        rogue-ra, rogue-dhcp for DHCPv6 (router advertisements, DHCPv6 ADVERTISEs)

Example:

    findings = evaluate(RunFacts(now=now, subnets=("10.20.0.0/16",), observations=replies,
                                 ledger=bindings), settings.policy)
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import replace

from ipguard.addresses import ip_sort_key
from ipguard.model import Finding, FindingKind, Severity
from ipguard.policies import (
    bindings,
    devices,
    ipv6,
    lifecycle,
    naming,
    pools,
    services,
    switchports,
)
from ipguard.policies.base import KIND_ORDER, PolicySettingsLike, PoolRange, RunFacts
from ipguard.policies.sightings import LedgerIndex, Sightings, Verdict

__all__ = ["LedgerIndex", "PolicySettingsLike", "PoolRange", "RunFacts", "evaluate"]

Family = Callable[[RunFacts, PolicySettingsLike, Sightings], list[Finding]]
FAMILIES: tuple[Family, ...] = (
    bindings.check,
    services.check,
    devices.check,
    pools.check,
    naming.check,
    lifecycle.check,
    switchports.check,
    ipv6.check,
)


def evaluate(
    facts: RunFacts, settings: PolicySettingsLike, ledger: LedgerIndex | None = None
) -> list[Finding]:
    """Every finding of one run, each reported once, most severe first.

    Severity overrides (`settings.severity`) replace the defaults, with escalations on top (see
    `policies.base.severity_of`). Double reports are removed: nothing but isolated-device-online
    is said about an isolated device seen online, and one (kind, subject) is one finding (the more
    severe, should two families ever raise the same). The order is severity (most severe first),
    then kind as DESIGN.md lists them, then IP numerically, MAC and port. `ledger`: the index
    of `facts.ledger` at `facts.site`, when the caller keeps one across evaluations (a watcher).
    """
    # Judging a large network allocates millions of short-lived, acyclic objects next to a large
    # ledger snapshot; the collector's full passes over that heap would take half the time.
    if ledger is None and facts.router_adverts:  # the routers' link-local addresses are theirs
        index = LedgerIndex(facts.ledger, facts.site)
        routers = ipv6.router_link_locals(facts.router_adverts, index)
        if routers:
            records = ipv6.with_router_addresses(facts.ledger, routers, facts.site, index)
            facts = replace(facts, ledger=records)
    collecting = gc.isenabled()
    gc.disable()
    try:
        seen = Sightings(facts, ledger)
        found: list[Finding] = []
        for family in FAMILIES:
            found.extend(family(facts, settings, seen))
        return _sorted(_once(_quiet_about_isolated(found, seen)))
    finally:
        if collecting:
            gc.enable()


def _quiet_about_isolated(found: list[Finding], seen: Sightings) -> list[Finding]:
    isolated = list(seen.with_verdict(Verdict.ISOLATED))
    if not isolated and not any(f.kind is FindingKind.ISOLATED_DEVICE_ONLINE for f in found):
        return found
    macs = {s.record.mac for s in isolated if s.record is not None}
    macs.update(s.mac for s in isolated if s.mac is not None)
    # Isolated devices only a switch's forwarding table showed (policies.lifecycle)
    macs.update(f.mac for f in found if f.kind is FindingKind.ISOLATED_DEVICE_ONLINE and f.mac)
    mac_less = {s.ip for s in isolated if s.mac is None}
    return [
        finding
        for finding in found
        if finding.kind is FindingKind.ISOLATED_DEVICE_ONLINE
        or not (finding.mac in macs or (finding.mac is None and finding.ip in mac_less))
    ]


def _once(found: Iterable[Finding]) -> list[Finding]:
    unique: dict[tuple[FindingKind, str | None, str | None, str | None], Finding] = {}
    for finding in found:
        key = (finding.kind, finding.ip or None, finding.mac or None, finding.port or None)
        kept = unique.get(key)
        if kept is None or finding.severity > kept.severity:
            unique[key] = finding
    return list(unique.values())


_URGENCY = {severity: -severity.rank for severity in Severity}


def _sorted(found: list[Finding]) -> list[Finding]:
    ip_keys: dict[str | None, tuple[int, int, str]] = {}

    def order(finding: Finding) -> tuple[int, int, tuple[int, int, str], str, str]:
        key = ip_keys.get(finding.ip)
        if key is None:
            key = ip_keys[finding.ip] = ip_sort_key(finding.ip)
        rank = _URGENCY[finding.severity]
        return (rank, KIND_ORDER[finding.kind], key, finding.mac or "", finding.port or "")

    return sorted(found, key=order)
