"""What a run saw, made ready for judging: the facts the policies read, the evidence findings keep,
and the subnets the run covered (findings are resolved only there)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ipguard.config import PolicySettings
from ipguard.ledger import audit, devices, findings, runs
from ipguard.ledger.pools import list_pools
from ipguard.model import Finding, ScanRequest, ScanResult, Uncovered

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def covered_subnets(subnets: Sequence[str], uncovered: Sequence[Uncovered]) -> list[str]:
    """The subnets without the ranges the run could not reach (where nothing may be resolved)."""
    left = [ipaddress.ip_network(text) for text in subnets]
    for item in uncovered:
        gone = ipaddress.ip_network(item.range)
        kept: list[IPNetwork] = []
        for network in left:
            if network.version == gone.version and gone.subnet_of(network):  # type: ignore[arg-type]
                kept.extend(network.address_exclude(gone))  # type: ignore[arg-type]
            elif network.version == gone.version and network.subnet_of(gone):  # type: ignore[arg-type]
                continue
            else:
                kept.append(network)
        left = kept
    return [str(network) for network in left]


@dataclass(frozen=True)
class LedgerView:
    """The ledger as a run judges it: every record, when each pair was last seen, the pools.

    A scan reads it while its phases still run (the DHCP window is seconds of waiting), so that
    once they end only what they saw is left to store and judge: the run is judged against the
    ledger as it was when the run looked, not as it is a few seconds later.
    """

    records: list[devices.Stored]
    last_seen: dict[tuple[str, str], datetime]
    pools: tuple[Any, ...]


def ledger_view(session: Any) -> LedgerView:
    """Read the ledger side of a run's facts (and load the policies that will judge them)."""
    import ipguard.policies  # noqa: F401  (loaded now rather than once the phases are over)
    from ipguard.policies.base import PoolRange

    records = devices.stored(session)
    seen = runs.last_seen(session)
    # A record never seen yet counts from its registration: a fresh import is not stale at once;
    # nor is a record given a new address or network card (edited since), from when it got them.
    changed = {
        (record.binding.ip, record.binding.mac)
        for record in records
        if record.updated_at > record.created_at
        and (record.binding.ip, record.binding.mac) not in seen
    }
    since = audit.paired_since(session, changed) if changed else {}
    for record in records:
        pair = (record.binding.ip, record.binding.mac)
        seen.setdefault(pair, max(record.created_at, since.get(pair, record.created_at)))
    pools = tuple(PoolRange(pool.department, pool.cidr) for pool in list_pools(session))
    return LedgerView(records, seen, pools)


def facts(
    session: Any,
    request: ScanRequest,
    result: ScanResult,
    now: datetime,
    view: LedgerView | None = None,
    *,
    grace_days: int = 0,
) -> Any:
    """What the policies read: the run's sightings, the ledger (`view`, else read now).

    `grace_days`: `[policy] unregistered_grace_days`; an unregistered host away no longer than
    that is on the same stay when it returns (`findings.first_seen`).
    """
    from ipguard.policies.base import RunFacts

    view = view or ledger_view(session)
    return RunFacts(
        now=now,
        subnets=request.subnets,
        observations=result.observations,
        services=result.services,
        dhcp_offers=result.dhcp_offers,
        proxies=result.proxies,
        names=result.names,
        evidence=result.evidence,
        snmp=result.snmp,
        router_adverts=result.router_adverts,
        dhcp6_adverts=result.dhcp6_adverts,
        ledger=tuple(record.binding for record in view.records),
        pools=view.pools,
        last_seen=view.last_seen,
        first_seen=findings.first_seen(
            session, request.site, now=now, returning_within=timedelta(days=grace_days)
        ),
        site=request.site,  # the whole ledger is judged; records of other sites authorise nothing
    )


def evaluate_policies(facts: Any, policy: PolicySettings) -> list[Finding]:
    """Every policy over the run's facts."""
    from ipguard import policies

    return list(policies.evaluate(facts, policy))


def evidence_of(result: ScanResult) -> Callable[[Finding], dict[str, Any]]:
    """For a finding, the sightings of this run about its address (capped per kind).

    Made plain only for the addresses a finding names: a sweep of 1,000 hosts in order has
    no finding, and turning each sighting into a dict took longer than judging them all.
    """
    by_ip: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    groups: list[tuple[str, str, tuple[Any, ...]]] = [
        ("observations", "ip", result.observations),
        ("services", "ip", result.services),
        ("proxies", "ip", result.proxies),
        ("names", "ip", result.names),
        ("evidence", "ip", result.evidence),
        ("dhcp_offers", "server_ip", result.dhcp_offers),
        ("router_adverts", "source_ip", result.router_adverts),
        ("dhcp6_adverts", "server_ip", result.dhcp6_adverts),
    ]
    for name, key, items in groups:
        for item in items:
            bucket = by_ip[getattr(item, key)][name]
            if len(bucket) < 20:
                bucket.append(item)

    def evidence(finding: Finding) -> dict[str, Any]:
        found = by_ip.get(finding.ip or "", {})
        return {name: [_plain(item) for item in items] for name, items in found.items() if items}

    return evidence


def _plain(item: Any) -> dict[str, Any]:
    values = asdict(item)
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = value.isoformat()
        elif isinstance(value, tuple):
            values[key] = list(value)
    return values
