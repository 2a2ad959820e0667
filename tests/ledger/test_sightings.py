"""Sightings: when each (ip, mac) pair was last seen, one row per pair (real SQLite and PostgreSQL).

`last_seen` used to group every stored observation of every complete run and watcher; it now reads
the sighting table, kept where observations become final. The old query is the oracle here.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ipguard.ledger import records, retention, runs, watching
from ipguard.ledger.scan_tables import ScanRun
from ipguard.ledger.store import Store
from ipguard.model import Observation, RunStatus, ScanResult
from tests.ledger.test_sites import upgrade
from tests.pg import create_database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
A = ("198.18.0.10", "02:00:00:00:00:10")
B = ("198.18.0.11", "02:00:00:00:00:11")


def old_last_seen(store: Store) -> dict[tuple[str, str], datetime]:
    """What `last_seen` read before sightings: every complete run's and every watcher's
    observations with a MAC, the latest time of each pair (now unpacked run by run)."""
    run = ScanRun.__table__  # type: ignore[attr-defined]
    query = sa.select(run.c.id).where(
        sa.or_(run.c.status == RunStatus.COMPLETE.value, run.c.kind == runs.WATCH)
    )
    latest: dict[tuple[str, str], datetime] = {}
    with store.session(write=False) as session:
        for run_id in session.execute(query).scalars():
            for seen in records.read(session, run_id, "observations"):
                if seen["mac"] is not None:
                    key = (seen["ip"], seen["mac"])
                    latest[key] = max(latest.get(key, seen["seen_at"]), seen["seen_at"])
    return latest


def last_seen(store: Store) -> dict[tuple[str, str], datetime]:
    with store.session(write=False) as session:
        return runs.last_seen(session)


def seen(pairs: list[tuple[str, str | None]], at: datetime) -> tuple[Observation, ...]:
    return tuple(Observation(ip, mac, at, "arp") for ip, mac in pairs)


def start(store: Store, at: datetime, *, site: str = "lab", kind: str = runs.SCAN) -> int:
    with store.session() as session:
        run = runs.start(
            session, site=site, interface="eth0", subnets=["198.18.0.0/24"], settings={},
            actor="tester", sensor=site, version="0", now=at, kind=kind,
        )  # fmt: skip
        assert run.id is not None
        return run.id


def scan(
    store: Store,
    at: datetime,
    observations: tuple[Observation, ...],
    status: RunStatus = RunStatus.COMPLETE,
    *,
    site: str = "lab",
) -> int:
    """A scan run as the runner records it: results stored, then the run closed (apart)."""
    run_id = start(store, at, site=site)
    with store.session() as session:
        runs.store_results(session, run_id, ScanResult(observations=observations))
    if status is not RunStatus.RUNNING:
        with store.session() as session:
            runs.finish(session, run_id, status, now=at + timedelta(seconds=5))
    return run_id


def test_only_a_completed_scan_run_counts_and_the_later_time_wins(db_url: str) -> None:
    store = Store(db_url)
    running = scan(store, NOW, seen([A], NOW), RunStatus.RUNNING)
    assert last_seen(store) == {}  # stored, not yet complete
    scan(store, NOW, seen([A], NOW), RunStatus.FAILED)
    scan(store, NOW, seen([A], NOW), RunStatus.ABORTED)
    with store.session() as session:  # killed: the next scan of the site marks it aborted
        assert runs.abort_dead(session, "lab", now=NOW) == [running]
    assert last_seen(store) == {}
    scan(store, NOW - timedelta(days=1), seen([A, (B[0], None)], NOW - timedelta(days=1)))
    assert last_seen(store) == {A: NOW - timedelta(days=1)}  # no MAC: not a sighting
    scan(store, NOW, seen([A, B], NOW))
    scan(store, NOW - timedelta(days=2), seen([A], NOW - timedelta(days=2)))  # a late spool
    assert last_seen(store) == {A: NOW, B: NOW} == old_last_seen(store)
    store.close()


def test_a_watch_batch_counts_while_the_watcher_runs(db_url: str) -> None:
    store = Store(db_url)
    run_id = start(store, NOW, kind=runs.WATCH)
    later = NOW + timedelta(minutes=1)
    with store.session() as session:
        watching.store_sightings(session, run_id, (*seen([A], NOW), *seen([A, B], later)), ())
    assert last_seen(store) == old_last_seen(store) == {A: NOW, B: later}
    with store.session() as session:
        watching.stop(session, run_id, {}, later, error="interface went away")
    assert last_seen(store) == old_last_seen(store)
    store.close()


def test_prune_keeps_sightings(db_url: str) -> None:
    store = Store(db_url)
    long_ago = NOW - timedelta(days=90)
    scan(store, long_ago, seen([A], long_ago))
    with store.session() as session:
        report = retention.prune(session, days=60, now=NOW, actor="tester")
    assert report.runs == 1 and report.rows["observations"] == 1
    assert old_last_seen(store) == {}
    assert last_seen(store) == {A: long_ago}
    store.close()


def test_last_seen_is_the_old_query_over_a_long_history(db_url: str) -> None:
    store = Store(db_url)
    pick = random.Random(7)
    pairs = [(f"198.18.{i // 50}.{i % 50}", f"02:00:00:00:{i // 50:02x}:{i % 50:02x}")
             for i in range(120)]  # fmt: skip
    statuses = [RunStatus.COMPLETE] * 4 + [RunStatus.FAILED, RunStatus.ABORTED, RunStatus.RUNNING]
    for number in range(40):
        at = NOW - timedelta(hours=pick.randrange(2000))
        chosen: list[tuple[str, str | None]] = [
            *pick.sample(pairs, 40),
            (pick.choice(pairs)[0], None),
        ]
        moved = [(ip, pick.choice(pairs)[1]) for ip, _ in pick.sample(pairs, 3)]  # MACs moving
        observations = tuple(
            Observation(ip, mac, at + timedelta(seconds=pick.randrange(60)), "arp")
            for ip, mac in chosen + moved
        )
        if number % 5 == 0:
            run_id = start(store, at, site="branch", kind=runs.WATCH)
            with store.session() as session:
                watching.store_sightings(session, run_id, observations, ())
        else:
            scan(store, at, observations, pick.choice(statuses), site=pick.choice(["lab", "hq"]))
    expected = old_last_seen(store)
    assert len(expected) > 100
    assert last_seen(store) == expected
    store.close()


def test_migration_0006_backfills_what_the_old_query_returned(db_url: str) -> None:
    upgrade(db_url, "0005")
    runs_sql = (
        "INSERT INTO scan_run (id, site, interface, subnets, started_at, status, settings, counts,"
        " version, actor, sensor, error, kind) VALUES "
        "(:id, 'lab', 'eth0', '[]', '2026-11-01 10:00:00', :status, '{}', '{}', '0', 'tester', "
        "'', '', :kind)"
    )
    seen_sql = (
        "INSERT INTO observation (run_id, ip, mac, source, seen_at, replies) "
        "VALUES (:run, :ip, :mac, 'arp', :at, 1)"
    )
    history = [
        (1, "complete", "scan", [(A, "2026-11-01 10:00:01"), ((B[0], None), "2026-11-09 10:00")]),
        (2, "complete", "scan", [(A, "2026-11-03 10:00:01"), (B, "2026-11-02 10:00:00")]),
        (3, "aborted", "scan", [(A, "2026-11-08 10:00:00"), (B, "2026-11-08 10:00:00")]),
        (4, "failed", "scan", [(B, "2026-11-08 11:00:00")]),
        (5, "aborted", "watch", [(B, "2026-11-04 09:00:00")]),
    ]  # fmt: skip
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        for run, status, kind, rows in history:
            connection.execute(sa.text(runs_sql), {"id": run, "status": status, "kind": kind})
            for (ip, mac), at in rows:
                values = {"run": run, "ip": ip, "mac": mac, "at": at}
                connection.execute(sa.text(seen_sql), values)
    engine.dispose()
    store = Store(db_url)  # migrates to 0006
    assert (
        last_seen(store)
        == old_last_seen(store)
        == {
            A: datetime(2026, 11, 3, 10, 0, 1, tzinfo=UTC),
            B: datetime(2026, 11, 4, 9, 0, tzinfo=UTC),
        }
    )
    store.close()


def test_concurrent_sensors_on_postgresql_keep_the_later_time(postgres_server: str) -> None:
    url = create_database(postgres_server)
    Store(url).close()
    pairs = [(f"198.18.0.{i}", f"02:00:00:00:00:{i:02x}") for i in range(200)]
    sensors = 4
    gate = threading.Barrier(sensors)
    failures: list[BaseException] = []

    def sensor(number: int) -> None:
        store = Store(url)
        pick = random.Random(number)
        try:
            for round_ in range(6):
                order = pick.sample(pairs, len(pairs))  # each sensor meets the pairs in its order
                at = NOW + timedelta(minutes=round_, seconds=number)
                observations = tuple(Observation(ip, mac, at, "arp") for ip, mac in order)
                gate.wait(timeout=60)
                if (number + round_) % 2:  # scans and watchers, meeting each other
                    scan(store, at, observations, site=f"site{number}")
                else:
                    run_id = start(store, at, site=f"site{number}", kind=runs.WATCH)
                    with store.session() as session:
                        watching.store_sightings(session, run_id, observations, ())
        except BaseException as error:  # reported by the main thread
            failures.append(error)
            gate.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=sensor, args=(n,)) for n in range(sensors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    latest = NOW + timedelta(minutes=5, seconds=sensors - 1)
    store = Store(url)
    assert last_seen(store) == old_last_seen(store) == dict.fromkeys(pairs, latest)
    store.close()
