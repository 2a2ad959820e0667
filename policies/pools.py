"""Addresses handed out by unit: out-of-pool.

Only when pools are configured, and only for the registered pair answering at its own IP (every
other answer already has a binding finding, so an unregistered host is not also out of pool):

- a device whose department has pools, answering outside all of them: out-of-pool;
- a device whose department has none, answering outside every pool: out-of-pool.

Departments are compared without regard to case or surrounding spaces. Membership is a bisection
over the merged, sorted pool ranges, so the cost does not grow with the number of pools.
"""

from __future__ import annotations

from typing import Any

from ipguard.model import Finding, FindingKind
from ipguard.policies.base import (
    AddressRanges,
    PolicySettingsLike,
    RunFacts,
    registration,
    severity_of,
    who,
)
from ipguard.policies.sightings import Sightings


def _department(name: str) -> str:
    return name.strip().casefold()


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every out-of-pool finding of the run."""
    if not facts.pools:
        return []
    cidrs_by_department: dict[str, list[str]] = {}
    for pool in facts.pools:
        cidrs_by_department.setdefault(_department(pool.department), []).append(pool.cidr)
    ranges = {name: AddressRanges(cidrs) for name, cidrs in cidrs_by_department.items()}
    everywhere = AddressRanges(pool.cidr for pool in facts.pools)
    kind = FindingKind.OUT_OF_POOL
    found = []
    for ip, record in seen.authorised.items():
        department = _department(record.department)
        own = ranges.get(department)
        if own is not None:
            if ip in own:
                continue
            pools = cidrs_by_department[department]
            summary = (
                f"{ip} ({who(record)}) is outside the pools of department "
                f"{record.department}: {', '.join(pools)}"
            )
            rule = "department-pools"
        else:
            if ip in everywhere:
                continue
            pools = []
            summary = f"{ip} ({who(record)}) is outside every address pool"
            rule = "any-pool"
        detail: dict[str, Any] = {
            "department": record.department,
            "department_pools": pools,
            "rule": rule,
            "registered": registration(record),
        }
        found.append(
            Finding(kind, severity_of(kind, settings), ip, record.mac, None, summary, detail)
        )
    return found
