"""A ledger made by the first ipguard, used for months, then opened by today's by several
sensors at once: every migration applied once, nothing lost, every command working on the old
history."""

from __future__ import annotations

import json
import multiprocessing
from typing import Any

import sqlalchemy as sa

from ipguard.ledger.store import SCHEMA_HEAD
from tests.conftest import Cli
from tests.ledger.test_sites import upgrade
from tests.ledger.test_store import _open_when_released

DEVICE = (
    "INSERT INTO device (ip, mac, hostname, owner, department, roles, allowed_services, status, "
    "isolated, created_at, updated_at) VALUES (:ip, :mac, '', '李伟', 'math', 'host', 'tcp/22', "
    "'active', false, '2025-01-02 08:00:00', '2025-01-02 08:00:00')"
)
AUDIT = (
    "INSERT INTO audit (at, actor, action, entity, key, before, after) VALUES "
    "('2025-01-02 08:00:00', 'admin', 'add', 'device', :ip, NULL, :after)"
)
RUN = (
    "INSERT INTO scan_run (site, interface, subnets, started_at, finished_at, status, settings, "
    "counts, version, actor, sensor, error) VALUES ('north', 'eth0', '[\"198.18.1.0/24\"]', "
    ":at, :at, 'complete', '{}', '{\"hosts_seen\": 2}', '0.1', 'cron', 'sensor-1', '') "
    "RETURNING id"
)
SEEN = (
    "INSERT INTO observation (run_id, ip, mac, source, seen_at, replies) "
    "VALUES (:run, :ip, :mac, 'arp', :at, 1)"
)
FINDING = (
    "INSERT INTO finding (site, kind, subject, ip, mac, severity, state, summary, detail, "
    "evidence, first_seen_at, first_run_id, last_seen_at, last_run_id, report_due_at) VALUES "
    "('north', 'unregistered-host', '198.18.1.66|02:66:00:00:00:01', '198.18.1.66', "
    "'02:66:00:00:00:01', 'high', 'open', 'unregistered host', '{}', :evidence, "
    "'2025-02-01 08:00:00', :first, :at, :last, '2025-02-02 08:00:00')"
)


def _first_ipguards_history(db_url: str) -> None:
    """Devices at 0001; months of runs and a finding at 0002 (as those versions wrote them)."""
    upgrade(db_url, "0001")
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        for ip, mac in (("198.18.1.10", "02:00:00:00:01:10"), ("198.18.1.11", "02:00:00:00:01:11")):
            connection.execute(sa.text(DEVICE), {"ip": ip, "mac": mac})
            connection.execute(sa.text(AUDIT), {"ip": ip, "after": json.dumps({"mac": mac})})
    engine.dispose()
    upgrade(db_url, "0002")
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        ids = []
        for month in range(2, 8):
            at = f"2025-{month:02d}-01 08:00:00"
            run = connection.execute(sa.text(RUN), {"at": at}).scalar_one()
            ids.append(run)
            for ip, mac in (
                ("198.18.1.10", "02:00:00:00:01:10"),
                ("198.18.1.66", "02:66:00:00:00:01"),
            ):
                connection.execute(sa.text(SEEN), {"run": run, "ip": ip, "mac": mac, "at": at})
        evidence = json.dumps({"first": {"run_id": ids[0]}, "last": {"run_id": ids[-1]}})
        values = {"evidence": evidence, "first": ids[0], "last": ids[-1], "at": at}
        connection.execute(sa.text(FINDING), values)
    engine.dispose()


def test_the_first_ledger_upgraded_by_four_sensors_at_once_keeps_everything(
    cli: Cli, db_url: str
) -> None:
    _first_ipguards_history(db_url)
    context = multiprocessing.get_context("fork")
    errors: Any = context.Queue()
    barrier = context.Barrier(4)
    processes = [
        context.Process(target=_open_when_released, args=(db_url, barrier, errors))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * 4
    assert errors.empty(), errors.get()
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert versions.scalars().all() == [SCHEMA_HEAD]
    engine.dispose()

    def json_of(*args: str) -> Any:
        out = cli(*args, "--format", "json")
        assert out.exit_code == 0, out.stderr
        return json.loads(out.stdout)

    devices = json_of("ledger", "list")
    assert [(d["ip"], d["owner"], d["site"], d["ipv6"]) for d in devices] == [
        ("198.18.1.10", "李伟", "", ""),
        ("198.18.1.11", "李伟", "", ""),
    ]
    runs = json_of("runs", "list")
    assert [run["started_at"][:7] for run in runs] == [f"2025-{m:02d}" for m in range(7, 1, -1)]
    (finding,) = json_of("findings", "list")["findings"]
    assert (finding["kind"], finding["first_seen"]) == ("unregistered-host", "2025-02-01T08:00:00Z")
    changes = json_of("diff")
    assert (changes["from_run"], changes["to_run"]) == (runs[1]["id"], runs[0]["id"])
    report = json_of("report", "--month", "2025-03")
    assert [run["id"] for run in report["runs"]] == [runs[4]["id"]]
    # 0006's sightings were filled from the old runs: .10 was seen, .11 never was.
    history = cli("ledger", "history", "198.18.1.10")
    assert history.exit_code == 0 and "admin" in history.stdout
    pruned = json_of("prune", "--older-than", "365")
    assert pruned["runs"] == 6 and pruned["observations"] == 12
    assert json_of("runs", "list") == []
    (kept,) = json_of("findings", "list")["findings"]  # open: its evidence is on its row
    assert kept["id"] == finding["id"]
