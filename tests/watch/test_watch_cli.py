"""`ipguard watch` without a network: its unit, its configuration, its run in the ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.config import WatchSettings, parse_settings
from ipguard.errors import ConfigError
from ipguard.ledger import runs, watching
from ipguard.ledger.store import Store
from ipguard.model import RunStatus, Severity
from ipguard.watch import systemd
from tests.conftest import Cli

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_print_unit_gives_a_notify_service_for_this_very_command(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nsubnets = ["198.18.0.0/24"]\nsite = "north"\n')
    done = cli("--config", str(config), "watch", "--interface", "ens3", "--print-unit")
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    for expected in (
        "Type=notify",
        "Restart=on-failure",
        "User=ipguard",
        "AmbientCapabilities=CAP_NET_RAW",
        f"WatchdogSec={systemd.WATCHDOG_SECONDS}",
    ):
        assert expected in lines
    (start,) = [line for line in lines if line.startswith("ExecStart=")]
    assert f"--config {config}" in start
    assert start.endswith("watch --quiet --interface ens3 --site north")
    assert "Description=ipguard watch: passive ARP and DHCP monitoring of site north" in lines


def test_watch_listens_to_a_scope_too_big_to_sweep_and_checks_its_site(
    cli: Cli, tmp_path: Path
) -> None:
    # Watch never sends a frame: the /12 limit of a scan's sweep is not its own.
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nsubnets = ["10.0.0.0/8"]\n')
    done = cli("--config", str(config), "watch", "--print-unit", "--site", " north ")
    assert done.exit_code == 0, done.stderr
    assert "watch --quiet --interface eth0 --site north --subnet" not in done.stdout
    assert "--site north\n" in done.stdout
    refused = cli("--config", str(config), "watch", "--print-unit", "--site", "a\nb")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: --site 'a\\nb': a site name is one line of text, not empty\n",
    )


def test_print_unit_refuses_to_write_a_database_password(cli: Cli) -> None:
    url = "postgresql+psycopg://ipguard:s3cret@db.example/ipguard"
    done = cli("watch", "--print-unit", "--subnet", "10.0.0.0/24", db=url)
    assert done.exit_code == 2
    assert "s3cret" not in done.stdout + done.stderr
    assert "EnvironmentFile" in done.stderr


def test_watch_refuses_a_subnet_outside_the_scope(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nsubnets = ["198.18.0.0/24"]\n')
    done = cli("--config", str(config), "watch", "--subnet", "10.0.0.0/8")
    assert done.exit_code == 2
    assert done.stderr.startswith("error: --subnet 10.0.0.0/8 is outside the subnets")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[watch]\nduplicate_window = 0", "watch.duplicate_window = 0.0: must be above 0"),
        ("[watch]\nalert_interval = 'often'", "watch.alert_interval = 'often': expected"),
        ("[watch]\nwindow = 3", "unknown key watch.window"),
        ("[policy]\nrandomized_mac_severity = 'loud'", "randomized_mac_severity = 'loud'"),
    ],
)
def test_bad_watch_settings_are_named(text: str, message: str) -> None:
    import tomllib

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_settings(tomllib.loads(text), "ipguard.toml")


def test_watch_settings_and_their_defaults() -> None:
    import tomllib

    assert parse_settings({}).watch == WatchSettings(duplicate_window=10.0, alert_interval=30.0)
    text = "[watch]\nduplicate_window = 4\nalert_interval = 60.5\n"
    text += '[policy]\nrandomized_mac_severity = "LOW"\n'
    settings = parse_settings(tomllib.loads(text))
    assert settings.watch == WatchSettings(duplicate_window=4.0, alert_interval=60.5)
    assert settings.policy.randomized_mac_severity is Severity.LOW


def start_watch(session, *, now: datetime, dead=lambda run: False):
    return watching.start(
        session,
        site="lab",
        interface="eth0",
        subnets=["198.18.0.0/24"],
        settings={},
        actor="tester",
        sensor="sensor-1",
        version="test",
        now=now,
        dead=dead,
    )


def test_watch_runs_live_beside_scans_and_die_by_heartbeat(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as session:
        watch_run, aborted = start_watch(session, now=NOW)
        assert aborted == [] and watch_run.kind == "watch"
        watching.beat(session, watch_run.id, {"frames_read": 5}, NOW + timedelta(seconds=30))
    with store.session() as session:
        # A scan of the site, holding its lock, aborts dead scans only.
        assert runs.abort_dead(session, "lab", now=NOW) == []
        # Another watcher a minute later: the first still beats, so it lives.
        second, aborted = start_watch(session, now=NOW + timedelta(seconds=60))
        assert aborted == []
        # Much later, the first has not beaten for too long: it died.
        third, aborted = start_watch(session, now=NOW + timedelta(minutes=5))
        assert sorted(aborted) == sorted([watch_run.id, second.id])
        watching.stop(session, third.id, {"frames_read": 9}, NOW + timedelta(minutes=6))
    with store.session(write=False) as session:
        statuses = {run.id: (run.kind, run.status) for run in runs.list_runs(session)}
        assert statuses[third.id] == ("watch", RunStatus.COMPLETE.value)
        assert statuses[watch_run.id] == ("watch", RunStatus.ABORTED.value)
        # A watcher's lifetime is no sweep: diff and the service baseline never pick it.
        assert runs.last_complete(session, site="lab") == []
        assert runs.get(session, third.id).counts["frames_read"] == 9
    store.close()


def test_a_watcher_that_knows_a_run_s_process_is_gone_aborts_it_at_once(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as session:
        killed, _ = start_watch(session, now=NOW)
        _, aborted = start_watch(session, now=NOW, dead=lambda run: run.id == killed.id)
        assert aborted == [killed.id]
    store.close()


def test_existing_runs_are_scans_after_the_migration(db_url: str) -> None:
    from tests.ledger.test_sites import upgrade

    upgrade(db_url, "0003")
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO scan_run (site, interface, subnets, started_at, status, settings, "
                "counts, version, actor) VALUES ('lab', 'eth0', '[]', '2026-01-01', 'complete', "
                "'{}', '{}', '1', 'tester')"
            )
        )
    engine.dispose()
    store = Store(db_url)
    with store.session(write=False) as session:
        (run,) = runs.list_runs(session)
        assert run.kind == "scan"
        assert runs.last_complete(session) == [run]
    store.close()


def test_ledger_export_adds_dhcp_fingerprints_to_notes_only_on_request(
    cli: Cli, db_url: str
) -> None:
    from ipguard.scanners.passive import DhcpClient

    mac = "00:16:3e:00:00:95"
    assert cli("ledger", "add", "198.18.0.95", mac, "--notes", "laptop").exit_code == 0
    store = Store(db_url)
    with store.session() as session:
        client = DhcpClient(mac, "198.18.0.95", "request", "laptop-95", (1, 3, 6), "MSFT 5.0")
        watching.store_fingerprints(session, "lab", [client], NOW)
    store.close()
    plain = cli("ledger", "export", "-", "--format", "json")
    assert json.loads(plain.stdout)[0]["notes"] == "laptop"
    heard = cli("ledger", "export", "-", "--format", "json", "--dhcp-fingerprint")
    assert json.loads(heard.stdout)[0]["notes"] == (
        "laptop [DHCP at lab: options 1,3,6; vendor MSFT 5.0; hostname laptop-95]"
    )


def test_watch_on_a_missing_interface_fails_at_once_and_records_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nsubnets = ["198.18.0.0/24"]\n')
    done = cli("--config", str(config), "watch", "--interface", "nosuch0", "--quiet")
    assert done.exit_code == 3
    assert done.stderr == (
        "error: interface nosuch0 does not exist: pick one listed by `ip link` with "
        "--interface or [scan] interface\n"
    )
    assert json.loads(cli("runs", "list", "--format", "json").stdout) == []


def test_a_watcher_s_batch_updates_findings_and_never_resolves_one(db_url: str) -> None:
    from ipguard.ledger import findings
    from ipguard.model import Finding, FindingKind, Phase

    def finding(ip: str) -> Finding:
        return Finding(
            FindingKind.UNREGISTERED_HOST, Severity.HIGH, ip, "00:16:3e:00:00:01", None, ip
        )

    store = Store(db_url)
    with store.session() as session:
        scanned = findings.sync(
            session, site="lab", run_id=1, now=NOW, findings=[finding("198.18.0.7")],
            subnets=["198.18.0.0/24"], phases=frozenset({Phase.SWEEP}), evidence=lambda f: {},
        )  # fmt: skip
        later = NOW + timedelta(minutes=1)
        watched = findings.sync(
            session, site="lab", run_id=2, now=later,
            findings=[finding("198.18.0.8"), finding("198.18.0.7")],
            subnets=(), phases=frozenset(), evidence=lambda f: {},
        )  # fmt: skip
        assert [row.ip for row in watched.new] == ["198.18.0.8"]
        assert watched.seen_again == scanned.new and watched.resolved == []
        alone = findings.sync(
            session, site="lab", run_id=2, now=later, findings=[finding("198.18.0.9")],
            subnets=(), phases=frozenset(), evidence=lambda f: {},
        )  # fmt: skip
        assert alone.resolved == []
        rows = findings.list_findings(session, site="lab")
        assert sorted((row.ip, row.state) for row in rows) == [
            ("198.18.0.7", "open"),
            ("198.18.0.8", "open"),
            ("198.18.0.9", "open"),
        ]
        assert scanned.new[0].last_seen_at == later
    store.close()


def test_a_write_told_how_long_to_wait_gives_up_on_another_writers_lock(db_url: str) -> None:
    """The watcher's writes wait half a second for another writer (an import, a scan, a
    `sqlite3` shell holding a transaction), not the store's 30 s: it must go on listening."""
    import time

    from ipguard.errors import LedgerUnavailable

    holder, watcher = Store(db_url), Store(db_url)
    with holder.session() as session:
        run, _ = start_watch(session, now=NOW)
    with holder.session() as held:
        watching.beat(held, run.id, {"frames_read": 1}, NOW)
        held.flush()  # the run's row (PostgreSQL) or the whole file (SQLite) is locked now
        began = time.monotonic()
        with pytest.raises(LedgerUnavailable, match="lock"), watcher.session(wait=0.3) as session:
            watching.beat(session, run.id, {"frames_read": 2}, NOW)
            session.flush()
        assert time.monotonic() - began < 5
    with watcher.session(wait=0.3) as session:  # the lock is gone: it writes at once
        watching.beat(session, run.id, {"frames_read": 3}, NOW)
    with watcher.session(write=False) as session:
        assert runs.get(session, run.id).counts["frames_read"] == 3
    holder.close()
    watcher.close()


def test_a_watcher_and_a_scan_opening_the_same_finding_at_once_make_one(db_url: str) -> None:
    """The watcher takes no scan lock: its batch and a scan's results may store the same new
    finding in the same moment. On PostgreSQL both read "no such finding" and both opened one; the
    second then stayed open for ever, neither updated nor resolved (one per key is looked at)."""
    import threading

    from ipguard.ledger import findings
    from ipguard.model import Finding, FindingKind

    newcomer = Finding(
        FindingKind.UNREGISTERED_HOST, Severity.HIGH, "198.18.0.7", "00:16:3e:00:00:01", None, "new"
    )

    def sync(session) -> None:
        findings.sync(
            session, site="lab", run_id=None, now=NOW, findings=[newcomer], subnets=(),
            phases=frozenset(), evidence=lambda _f: {},
        )  # fmt: skip

    first, second = Store(db_url), Store(db_url)
    errors: list[BaseException] = []

    def beside() -> None:
        try:
            with second.session() as session:
                sync(session)
        except BaseException as error:  # shown by the assertion below
            errors.append(error)

    with first.session() as session:
        sync(session)
        session.flush()
        thread = threading.Thread(target=beside)
        thread.start()
        thread.join(0.5)  # the other writer reads and writes now, while this one is not done
    thread.join(30)
    assert not errors, errors
    with first.session(write=False) as session:
        live = findings.list_findings(session, site="lab", live_only=True)
    assert [(row.kind, row.ip) for row in live] == [("unregistered-host", "198.18.0.7")]
    first.close()
    second.close()
