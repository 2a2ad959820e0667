"""A finding raised from an SNMP device's data is resolved only by a run that polled that device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ipguard.ledger import findings, runs
from ipguard.ledger.store import Store
from ipguard.model import Finding, FindingKind, FindingState, Phase, Severity

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SUBNETS = ("198.18.0.0/15",)
WRONG_PORT = Finding(
    FindingKind.WRONG_PORT,
    Severity.MEDIUM,
    "198.18.10.13",
    "02:00:00:00:00:13",
    "core-1:Gi1/0/5",
    "registered to core-1:Gi1/0/7, learnt on core-1:Gi1/0/5",
    {"device": "core-1"},
)
ROUTED = Finding(
    FindingKind.UNREGISTERED_HOST,
    Severity.HIGH,
    "198.18.20.10",
    "02:00:00:00:20:10",
    None,
    "unregistered",
)


def _evidence(finding: Finding) -> dict[str, object]:
    """The sightings a run kept: the routed host only in the router's ARP table."""
    if finding.kind is FindingKind.UNREGISTERED_HOST:
        seen = {"ip": finding.ip, "mac": finding.mac, "source": "snmp-arp", "device": "rtr-1"}
        icmp = {"ip": finding.ip, "mac": None, "source": "icmp", "device": None}
        return {"observations": [seen, icmp]}
    return {}


def _run(
    store: Store, at: datetime, found: list[Finding], phases: set[Phase], polled: set[str]
) -> findings.SyncOutcome:
    with store.session() as session:
        run = runs.start(
            session, site="main", interface="eth0", subnets=SUBNETS, settings={}, actor="t",
            sensor="s", version="0", now=at,
        )  # fmt: skip
        assert run.id is not None
        return findings.sync(
            session, site="main", run_id=run.id, now=at, findings=found, subnets=SUBNETS,
            phases=frozenset(phases), evidence=_evidence, snmp_polled=frozenset(polled),
        )  # fmt: skip


def _states(store: Store) -> dict[str, str]:
    with store.session(write=False) as session:
        return {row.kind: row.state for row in findings.list_findings(session, site="main")}


@pytest.mark.parametrize(
    ("phases", "polled", "resolved"),
    [
        ({Phase.SWEEP, Phase.SNMP}, set(), set()),  # no device answered
        ({Phase.SWEEP, Phase.SNMP}, {"core-1"}, {"wrong-port"}),  # the switch, not the router
        ({Phase.SWEEP, Phase.SNMP}, {"core-1", "rtr-1"}, {"wrong-port", "unregistered-host"}),
        ({Phase.SWEEP}, {"core-1", "rtr-1"}, set()),  # the snmp phase did not run
    ],
)
def test_resolved_only_by_a_run_that_polled_the_device(
    db_url: str, phases: set[Phase], polled: set[str], resolved: set[str]
) -> None:
    store = Store(db_url)
    _run(store, T0, [WRONG_PORT, ROUTED], {Phase.SWEEP, Phase.SNMP}, {"core-1", "rtr-1"})
    outcome = _run(store, T0 + timedelta(minutes=15), [], phases, polled)
    assert {row.kind for row in outcome.resolved} == resolved
    states = _states(store)
    for kind in ("wrong-port", "unregistered-host"):
        expected = FindingState.RESOLVED if kind in resolved else FindingState.OPEN
        assert states[kind] == expected.value
