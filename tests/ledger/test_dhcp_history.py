"""The slowest rogue DHCP server on record, which a scan's DHCP probe listens for, as the ledger
keeps it: a watcher seeing the server again, and odd figures in a finding's detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ipguard.ledger import findings, runs
from ipguard.ledger.store import Store
from ipguard.model import Finding, FindingKind, Phase, Severity

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY_AGO = NOW - timedelta(days=1)
LINK = ("sensor-1", "eth0")


def _rogue(ip: str, **detail: Any) -> Finding:
    mac = "02:00:00:00:0e:" + ip.rsplit(".", 1)[1][-2:]
    summary = f"DHCP server {ip} ({mac}) offered 198.18.0.200 and lacks role dhcp-server"
    return Finding(FindingKind.ROGUE_DHCP, Severity.CRITICAL, ip, mac, None, summary, detail)


def _sync(
    session: Any, at: datetime, found: list[Finding], *, scan: bool, link: tuple[str, str] = LINK
) -> None:
    """A run on `link` (a scan with the DHCP phase, or a watcher's batch) that saw `found`."""
    sensor, interface = link
    run = runs.start(
        session, site="lab", interface=interface, subnets=("198.18.0.0/24",), settings={},
        actor="t", sensor=sensor, version="0", now=at,
    )  # fmt: skip
    assert run.id is not None
    findings.sync(
        session, site="lab", run_id=run.id, now=at, findings=found,
        subnets=["198.18.0.0/24"] if scan else (),
        phases=frozenset({Phase.DHCP}) if scan else frozenset(), evidence=lambda _f: {},
    )  # fmt: skip


def test_a_watcher_seeing_the_slow_server_keeps_its_time_to_offer(sqlite_url: str) -> None:
    # `ipguard watch` beside the cron scan (the README's set-up) hears the rogue server's
    # OFFERs and ACKs passively: no DISCOVER of its own, so no time to offer. Its sighting
    # replaced the finding's detail, the scan's 4.7 s went with it, and the next scan listened
    # for the configured window only: the late server was missed again.
    store = Store(sqlite_url)
    with store.session() as session:
        _sync(session, NOW, [_rogue("198.18.0.43", seconds_to_offer=[4.7, 5.1])], scan=True)
        _sync(session, NOW + timedelta(minutes=1), [_rogue("198.18.0.43", naks=1)], scan=False)
        assert findings.slowest_dhcp_offer(session, "lab", LINK, since=DAY_AGO) == 4.7
        (row,) = findings.list_findings(session, site="lab")
        assert row.detail["naks"] == 1  # the rest of the detail is the watcher's
    store.close()


def test_odd_figures_on_record_do_not_hide_the_slow_server(sqlite_url: str) -> None:
    # A NaN first (the detail is JSON, which Python reads NaN from) made max() answer NaN,
    # and the probe its configured window: the 4.7 s server on record was not waited for.
    store = Store(sqlite_url)
    odd: list[Any] = [float("nan"), -3.0, "9", True, None, [2.0]]
    with store.session() as session:
        found = [_rogue(f"198.18.0.{10 + n}", seconds_to_offer=[v]) for n, v in enumerate(odd)]
        found.append(_rogue("198.18.0.43", seconds_to_offer=[4.7]))
        _sync(session, NOW, found, scan=True)
        assert findings.slowest_dhcp_offer(session, "lab", LINK, since=DAY_AGO) == 4.7
    store.close()


def test_a_slow_server_on_another_link_is_not_waited_for(sqlite_url: str) -> None:
    """Two sensors of one site (or one sensor's two NICs), on two VLANs: a late server heard on
    eth1's link made every scan on eth0 listen up to twice dhcp_wait for an OFFER that can never
    cross to its link."""
    store = Store(sqlite_url)
    other = ("sensor-1", "eth1")
    with store.session() as session:
        _sync(session, NOW, [_rogue("198.18.1.43", seconds_to_offer=[5.5])], scan=True, link=other)
        _sync(session, NOW, [_rogue("198.18.0.40", seconds_to_offer=[3.3])], scan=True)
        assert findings.slowest_dhcp_offer(session, "lab", LINK, since=DAY_AGO) == 3.3
        assert findings.slowest_dhcp_offer(session, "lab", other, since=DAY_AGO) == 5.5
        assert (
            findings.slowest_dhcp_offer(session, "lab", ("sensor-2", "eth0"), since=DAY_AGO) is None
        )
    store.close()
