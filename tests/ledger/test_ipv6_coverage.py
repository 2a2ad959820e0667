"""rogue-ra, DHCPv6 rogue-dhcp and binding findings at IPv6 addresses are resolved only by a run
that ran the ipv6 phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ipguard.ledger import findings, runs
from ipguard.ledger.store import Store
from ipguard.model import Finding, FindingKind, Phase, Severity

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SUBNETS = ("198.18.0.0/15", "2001:db8:20::/64")
ROGUE_RA = Finding(
    FindingKind.ROGUE_RA, Severity.CRITICAL, "fe80::1", "02:00:00:00:00:60", None, "rogue RA",
    {"prefixes": ["fd00:60::/64"]},
)  # fmt: skip
DHCP6 = Finding(
    FindingKind.ROGUE_DHCP, Severity.CRITICAL, "fe80::2", "02:00:00:00:00:62", None, "DHCPv6",
    {"family": 6},
)  # fmt: skip
DHCP4 = Finding(
    FindingKind.ROGUE_DHCP, Severity.CRITICAL, "198.18.0.40", "02:00:00:00:00:40", None, "DHCP",
    {"offered_ips": ["198.18.0.120"]},
)  # fmt: skip


def _run(
    store: Store, at: datetime, found: list[Finding], phases: set[Phase], interface: str = "eth0"
) -> set[str]:
    """One run; the subjects it resolved."""
    with store.session() as session:
        run = runs.start(
            session, site="main", interface=interface, subnets=SUBNETS, settings={}, actor="t",
            sensor="s", version="0", now=at,
        )  # fmt: skip
        assert run.id is not None
        outcome = findings.sync(
            session, site="main", run_id=run.id, now=at, findings=found, subnets=SUBNETS,
            phases=frozenset(phases), evidence=lambda _finding: {},
        )  # fmt: skip
        return {row.subject for row in outcome.resolved}


@pytest.mark.parametrize(
    ("phases", "resolved"),
    [
        ({Phase.SWEEP, Phase.DHCP}, {DHCP4.subject}),  # DHCP alone says nothing about IPv6
        ({Phase.SWEEP, Phase.IPV6}, {ROGUE_RA.subject, DHCP6.subject}),  # link-local: resolved
        ({Phase.SWEEP, Phase.DHCP, Phase.IPV6}, {ROGUE_RA.subject, DHCP6.subject, DHCP4.subject}),
    ],
)
def test_resolved_only_by_a_run_that_ran_the_ipv6_phase(
    db_url: str, phases: set[Phase], resolved: set[str]
) -> None:
    store = Store(db_url)
    _run(store, T0, [ROGUE_RA, DHCP6, DHCP4], {Phase.SWEEP, Phase.DHCP, Phase.IPV6})
    assert _run(store, T0 + timedelta(minutes=15), [], phases) == resolved


def test_what_is_heard_on_one_link_is_resolved_only_by_a_run_on_that_link(db_url: str) -> None:
    """A sensor with a NIC on each of two VLANs: the RA, DHCPv6 and DHCP servers heard on eth0
    were resolved by eth1's run (every phase, the same subnets), and reopened by eth0's next."""
    store = Store(db_url)
    every = {Phase.SWEEP, Phase.DHCP, Phase.IPV6}
    _run(store, T0, [ROGUE_RA, DHCP6, DHCP4], every)
    assert _run(store, T0 + timedelta(minutes=15), [], every, interface="eth1") == set()
    everything = {ROGUE_RA.subject, DHCP6.subject, DHCP4.subject}
    assert _run(store, T0 + timedelta(minutes=30), [], every) == everything


UNREGISTERED_LL = Finding(
    FindingKind.UNREGISTERED_HOST, Severity.HIGH, "fe80::66:ff:fe00:69", "02:66:00:00:00:69", None,
    "unregistered",
)  # fmt: skip
MISMATCH_V6 = Finding(
    FindingKind.IP_MAC_MISMATCH, Severity.HIGH, "2001:db8:20::68", "02:18:00:00:00:67", None,
    "mismatch",
)  # fmt: skip
OUTSIDE_V6 = Finding(
    FindingKind.IP_MAC_MISMATCH, Severity.HIGH, "2001:db8:99::68", "02:18:00:00:00:67", None,
    "outside the prefixes",
)  # fmt: skip


@pytest.mark.parametrize(
    ("phases", "resolved"),
    [
        ({Phase.SWEEP, Phase.DHCP}, set()),  # the IPv4 sweep sees no IPv6 address
        ({Phase.IPV6}, {UNREGISTERED_LL.subject, MISMATCH_V6.subject}),
    ],
)
def test_ipv6_binding_findings_resolved_only_by_discovery(
    db_url: str, phases: set[Phase], resolved: set[str]
) -> None:
    store = Store(db_url)
    found = [UNREGISTERED_LL, MISMATCH_V6, OUTSIDE_V6]
    _run(store, T0, found, {Phase.SWEEP, Phase.IPV6})
    assert _run(store, T0 + timedelta(minutes=15), [], phases) == resolved
