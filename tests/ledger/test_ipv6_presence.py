"""A registered device that answered an earlier run over IPv6 only was present then (real store).

The run's IPv6 sightings are stored as (IPv6, MAC) pairs; the next run's stale-registration rule
reads them back from the ledger (SQLite and PostgreSQL) as the device's last sighting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ipguard import runfacts
from ipguard.config import PolicySettings
from ipguard.ledger import devices, runs
from ipguard.ledger.store import Store
from ipguard.ledger.tables import Device
from ipguard.model import Binding, Observation, RunStatus, ScanRequest, ScanResult

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SUBNETS = ("198.18.0.0/24", "2001:db8:20::/64")
V6_ONLY = Binding("198.18.0.10", "02:00:00:00:00:10", owner="v6 only")
NEVER = Binding("198.18.0.11", "02:00:00:00:00:11", owner="gone")
PRIVACY = "2001:db8:20:0:5e3d:9a1:c2f0:77b1"


def _run(store: Store, at: datetime, observations: tuple[Observation, ...]) -> None:
    with store.session() as session:
        run = runs.start(
            session, site="lab", interface="eth0", subnets=list(SUBNETS), settings={},
            actor="tester", sensor="test", version="0", now=at,
        )  # fmt: skip
        assert run.id is not None
        counts = runs.store_results(session, run.id, ScanResult(observations=observations))
        runs.finish(session, run.id, RunStatus.COMPLETE, counts=counts, now=at)


def test_an_earlier_run_that_saw_the_mac_over_ipv6_only_keeps_it_from_stale(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as session:
        for binding in (V6_ONLY, NEVER):
            devices.add(session, binding, actor="tester")
        # registered 90 days ago, never seen over IPv4 since
        session.execute(sa.update(Device).values(created_at=NOW - timedelta(days=90)))
    seen = Observation(PRIVACY, V6_ONLY.mac, NOW - timedelta(days=3), "ndp")
    _run(store, NOW - timedelta(days=3), (seen,))
    request = ScanRequest(site="lab", interface="eth0", subnets=SUBNETS)
    with store.session(write=False) as session:
        facts = runfacts.facts(session, request, ScanResult(), NOW)
    found = runfacts.evaluate_policies(facts, PolicySettings())
    assert {(f.kind, f.ip, f.mac) for f in found} == {("stale-registration", NEVER.ip, NEVER.mac)}
