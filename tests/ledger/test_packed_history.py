"""Scan history kept packed (one `run_records` row per run and kind): every field back exactly,
and a ledger holding runs in the old per-record tables upgrades in place (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from ipguard.ledger import packing, records, retention, runs
from ipguard.ledger.store import Store
from ipguard.model import (
    DhcpOffer,
    Evidence,
    EvidenceKind,
    NameObservation,
    NameSource,
    Observation,
    ObservationSource,
    PointsTo,
    ProxyMethod,
    ProxyVerdict,
    RunStatus,
    ScanResult,
    ServiceObservation,
)
from tests.conftest import Cli
from tests.ledger.test_sites import upgrade

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MAC = "3c:52:82:00:00:{:02x}".format
HOSTILE = "\\u0000‮=cmd|' /C calc'!A0 <b>"


def test_every_field_comes_back_exactly_in_order() -> None:
    east = timezone(timedelta(hours=8))
    rows = [
        {"ip": "198.18.0.10", "when": NOW + timedelta(microseconds=1), "rtt": 0.1, "n": 2**40,
         "ok": True, "dns": ["198.18.0.1", "198.18.0.2"], "kind": ObservationSource.ARP},
        {"ip": "2001:db8::10", "when": None, "rtt": None, "n": -3, "ok": False, "dns": [],
         "kind": "icmp"},
        {"ip": HOSTILE, "when": datetime(2025, 1, 1, 20, tzinfo=east), "rtt": 1e-9, "n": 0,
         "ok": False, "dns": ["李"], "kind": None},
        {"ip": "198.18.0.10", "when": NOW - timedelta(days=400), "rtt": 123456.789, "n": 1,
         "ok": True, "dns": [], "kind": ObservationSource.ARP},
    ]  # fmt: skip
    back = packing.unpack(packing.pack(rows, ["ip", "when", "rtt", "n", "ok", "dns", "kind"]))
    expected = [
        {**row, "kind": row["kind"].value if hasattr(row["kind"], "value") else row["kind"]}
        for row in rows
    ]
    assert back == expected
    assert back[2]["when"].tzinfo is UTC and back[2]["when"] == rows[2]["when"]
    assert packing.unpack(packing.pack([], ["ip"])) == []


def test_a_document_of_an_unknown_format_is_refused() -> None:
    import zlib

    with pytest.raises(ValueError, match="format 2"):
        packing.unpack(zlib.compress(b'{"v":2,"n":0,"c":{}}'))


def _results(at: datetime, hosts: range) -> ScanResult:
    """A run with every kind of record, the awkward values included."""
    seen = []
    for n in hosts:
        ip, mac = f"198.18.0.{n}", MAC(n)
        when = at + timedelta(seconds=n, microseconds=n * 7919)
        seen.append(
            Observation(ip, mac, when, ObservationSource.ARP, 64, 0.1 * n, "Hewlett Packard")
        )
        seen.append(Observation(ip, None, when, ObservationSource.ICMP, 128 if n % 2 else None))
        seen.append(Observation(f"2001:db8::{n:x}", mac, when, ObservationSource.NDP, vendor=None))
    return ScanResult(
        observations=tuple(seen),
        services=(
            ServiceObservation("198.18.0.10", "tcp", 22, "ssh", "OpenSSH", "9.6", HOSTILE),
            ServiceObservation("198.18.0.11", "udp", 161, "snmp"),
        ),
        dhcp_offers=(
            DhcpOffer("198.18.0.1", MAC(1), "198.18.0.150", None, (), None),
            DhcpOffer("198.18.0.66", MAC(66), "198.18.0.151", "198.18.0.66", ("8.8.8.8",), at),
        ),
        proxies=(
            ProxyVerdict("198.18.0.12", 3128, ProxyMethod.HTTP_CONNECT, True, "relayed"),
            ProxyVerdict("198.18.0.12", 1080, ProxyMethod.SOCKS5, False),
        ),
        names=(NameObservation("198.18.0.10", "pc-李伟.campus.example", NameSource.MDNS),),
        evidence=(
            Evidence("198.18.0.13", None, EvidenceKind.TTL, PointsTo.ROUTER, "ttl 63"),
            Evidence("198.18.0.14", MAC(14), EvidenceKind.SSDP_AP, PointsTo.ACCESS_POINT),
        ),
    )


OLD_COLUMNS = {
    "observation": ("ip", "mac", "source", "seen_at", "replies", "ttl", "rtt_ms", "vendor"),
    "service_observation": ("ip", "proto", "port", "service", "product", "version", "banner"),
    "dhcp_offer": ("server_ip", "server_mac", "offered_ip", "router", "dns", "seen_at"),
    "proxy_check": ("ip", "port", "method", "relays", "detail"),
    "name_observation": ("ip", "name", "source"),
    "evidence": ("ip", "mac", "kind", "points_to", "detail"),
}


def _store_the_old_way(connection: Any, run_id: int, result: ScanResult) -> None:
    """What ipguard before 0007 wrote for a run: a row per record in six tables."""
    groups = {
        "observation": result.observations,
        "service_observation": result.services,
        "dhcp_offer": result.dhcp_offers,
        "proxy_check": result.proxies,
        "name_observation": result.names,
        "evidence": result.evidence,
    }
    for table, items in groups.items():
        types = {"seen_at": sa.DateTime, "dns": sa.JSON, "relays": sa.Boolean}
        columns = [sa.column(name, types.get(name)) for name in ("run_id", *OLD_COLUMNS[table])]
        rows = []
        for item in items:
            row = {name: getattr(item, name, 1) for name in OLD_COLUMNS[table]}  # replies: 1
            if row.get("seen_at") is not None:
                row["seen_at"] = row["seen_at"].astimezone(UTC).replace(tzinfo=None)
            if "dns" in row:
                row["dns"] = list(row["dns"])
            rows.append({"run_id": run_id, **{k: getattr(v, "value", v) for k, v in row.items()}})
        if rows:
            connection.execute(sa.table(table, *columns).insert(), rows)


RUN = (
    "INSERT INTO scan_run (site, interface, subnets, started_at, finished_at, status, settings, "
    "counts, version, actor, sensor, error, kind) VALUES ('lab', 'eth0', '[\"198.18.0.0/24\"]', "
    ":at, :at, :status, '{\"phases\": [\"sweep\", \"services\"]}', :counts, '0.6', 'cron', "
    "'lab', '', :kind) RETURNING id"
)


def test_an_old_ledger_upgrades_in_place_and_answers_the_same(cli: Cli, db_url: str) -> None:
    upgrade(db_url, "0006")
    older, newer = (
        _results(NOW - timedelta(minutes=15), range(10, 16)),
        _results(NOW, range(11, 18)),
    )
    watched = ScanResult(
        observations=_results(NOW - timedelta(days=90), range(20, 22)).observations
    )
    counts = json.dumps({"hosts_seen": 6, "service_mode": "full"})
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    ids = []
    with engine.begin() as connection:
        for at, result, status, kind in (
            (NOW - timedelta(minutes=15), older, "complete", "scan"),
            (NOW, newer, "complete", "scan"),
            (NOW - timedelta(days=90), watched, "running", "watch"),
        ):
            values = {"at": at.replace(tzinfo=None), "status": status, "kind": kind}
            run_id = connection.execute(sa.text(RUN), {**values, "counts": counts}).scalar_one()
            _store_the_old_way(connection, run_id, result)
            ids.append(run_id)
    engine.dispose()

    store = Store(db_url)  # upgrades
    with store.session(write=False) as session:
        for run_id, result in zip(ids, (older, newer, watched), strict=True):
            loaded = runs.load_results(session, runs.get(session, run_id))
            for group in ("observations", "services", "dhcp_offers", "proxies", "names"):
                assert getattr(loaded, group) == getattr(result, group), (run_id, group)
            assert loaded.evidence == result.evidence
        baseline = runs.service_baseline(session, "lab", full_since=NOW - timedelta(days=1))
        assert baseline is not None and baseline["198.18.0.11"].services[0].port == 161
        assert baseline["198.18.0.17"].mac == MAC(17) and not baseline["198.18.0.17"].services
        tables = set(sa.inspect(session.connection()).get_table_names())
    store.close()
    assert "run_records" in tables and not tables & set(OLD_COLUMNS)

    changes = json.loads(cli("diff", "--format", "json").stdout)
    assert (changes["from_run"], changes["to_run"]) == (ids[0], ids[1])
    assert "198.18.0.17" in json.dumps(changes) and "198.18.0.10" in json.dumps(changes)
    shown = cli("runs", "show", str(ids[1]), "--format", "json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["run"]["id"] == ids[1]
    # The watcher, alive, keeps its run; what it saw before the cutoff goes.
    store = Store(db_url)
    with store.session() as session:
        runs_ = runs.get(session, ids[2])
        runs_.counts = {"heartbeat_at": NOW.isoformat()}
        session.add(runs_)
    with store.session() as session:
        pruned = retention.prune(session, days=60, now=NOW, actor="tester")
        assert pruned.runs == 0 and pruned.rows["observations"] == len(watched.observations)
        assert records.read(session, ids[2], "observations") == []
        assert runs.load_results(session, runs.get(session, ids[1])).observations
    store.close()


def test_a_watchers_batches_read_back_in_order_and_prune_keeps_the_newer(db_url: str) -> None:
    store = Store(db_url)
    early, late = _results(NOW - timedelta(days=70), range(10, 12)), _results(NOW, range(12, 14))
    # One batch straddling the cutoff: the part before it goes, the rest is kept as it was.
    straddling = ScanResult(observations=early.observations[:3] + late.observations[:3])
    with store.session() as session:
        run = runs.start(
            session, site="lab", interface="eth0", subnets=["198.18.0.0/24"], settings={},
            actor="tester", sensor="lab", version="0", now=NOW - timedelta(days=80),
            kind=runs.WATCH,
        )  # fmt: skip
        assert run.id is not None
        run.counts = {"heartbeat_at": NOW.isoformat()}
        for batch in (early, straddling, late):
            runs.store_results(session, run.id, batch, sighted=True)
        run_id = run.id
    with store.session() as session:
        loaded = runs.load_results(session, runs.get(session, run_id)).observations
        assert loaded == early.observations + straddling.observations + late.observations
        dry = retention.prune(session, days=60, now=NOW, actor="tester", dry_run=True)
    with store.session() as session:
        done = retention.prune(session, days=60, now=NOW, actor="tester")
        assert dry.rows == done.rows and done.rows["observations"] == len(early.observations) + 3
        assert done.rows["dhcp_offers"] == 1  # the early batch's offer seen at its time
        kept = runs.load_results(session, runs.get(session, run_id))
        assert kept.observations == late.observations[:3] + late.observations
    with store.session(write=False) as session:
        status = runs.get(session, run_id).status
    store.close()
    assert status == RunStatus.RUNNING.value


def test_a_campus_run_packs_to_a_tenth_of_its_old_row_format() -> None:
    """5,000 observations as a sweep hands them over (sorted addresses, a few vendors, times spread
    over the sweep, round trips to the microsecond): at most 20 bytes each (the old rows took about
    160, indexes aside). Seeded, so the size is the same on every machine."""
    import random

    pick = random.Random(7)
    vendors = [("00:1b:21", "Intel Corporate"), ("3c:52:82", "Hewlett Packard")] * 3 + [
        ("b8:27:eb", "Raspberry Pi Foundation")
    ]
    seen = []
    for n in range(5000):
        prefix, vendor = pick.choice(vendors)
        tail = ":".join(f"{pick.randrange(256):02x}" for _ in range(3))
        when = NOW + timedelta(seconds=n * 0.004, microseconds=pick.randrange(1000))
        seen.append(
            {"ip": f"198.18.{n >> 8}.{n & 255}", "mac": f"{prefix}:{tail}", "source": "arp",
             "seen_at": when, "replies": 1, "ttl": pick.choice((64, 128)),
             "rtt_ms": round(pick.uniform(0.2, 9.0), 3), "vendor": vendor}
        )  # fmt: skip
    packed = packing.pack(seen, records.FIELDS["observations"])
    assert len(packed) <= 20 * len(seen)
    assert packing.unpack(packed) == seen
