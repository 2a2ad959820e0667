"""`ipguard ledger migrate --to URL`: the whole history moves with its ids and times, or nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ipguard.errors import ScanError
from ipguard.ledger.transfer import ledger_tables
from ipguard.model import (
    DhcpOffer,
    Evidence,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    ScanResult,
    ServiceObservation,
)
from tests.conftest import Cli, Result
from tests.fakes import FakeScanner, result

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\nsite = "lab"\n'
SECRET = "pw-SECRET-4711"
GUARD = ("198.18.0.10", "02:00:00:00:00:10")
THIEF_MAC = "02:66:00:00:00:10"
STRANGER = ("198.18.0.66", "02:00:00:00:00:66")


@dataclass
class Run:
    """`ipguard --db URL --config … ARGS` in-process, the fake scanner (if any) at the seam."""

    cli: Cli
    config: Path

    def __call__(self, db: str, *args: str) -> Result:
        return self.cli("--config", str(self.config), *args, db=db)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """`ipguard --db URL --config … ARGS` in-process."""
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.delenv("IPGUARD_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    return Run(Cli(""), config)


@pytest.fixture(params=["postgresql", "sqlite"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database to migrate into: PostgreSQL on the suite's server, or another file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    from tests.pg import create_database

    return create_database(request.getfixturevalue("postgres_server"))


def everything_seen() -> ScanResult:
    now = datetime.now(UTC)
    return ScanResult(
        observations=(
            Observation(*GUARD, now, "arp", rtt_ms=0.25, vendor="Lab"),
            Observation(GUARD[0], THIEF_MAC, now, "arp"),
            Observation(*STRANGER, now, "arp"),
            Observation(*STRANGER, now, "arp"),
        ),
        services=(ServiceObservation(STRANGER[0], "tcp", 3128, "http-proxy", "tinyproxy", "1.11"),),
        dhcp_offers=(DhcpOffer(STRANGER[0], STRANGER[1], "198.18.0.150", "198.18.0.1", ("1.1",)),),
        proxies=(ProxyVerdict(STRANGER[0], 3128, "http-connect", True, "relayed"),),
        names=(NameObservation(STRANGER[0], "visitor-laptop", "dns"),),
        evidence=(Evidence(STRANGER[0], STRANGER[1], "forwarding", "router", "forwarded"),),
        phases=frozenset(Phase),
    )


@pytest.fixture
def history(run: Run, sqlite_url: str) -> str:
    """A SQLite ledger with some of everything: records, pools, audit, runs of every outcome."""
    added = run(sqlite_url, "ledger", "add", *GUARD, "--owner", "李伟", "--site", "lab")
    assert added.exit_code == 0, added.stderr
    run(sqlite_url, "ledger", "add", "198.18.0.11", "02:00:00:00:00:11", "--status", "retired")
    run(sqlite_url, "ledger", "edit", GUARD[0], "--notes", "=1+2")
    run(sqlite_url, "pools", "add", "math", "198.18.0.0/25")
    scanner = FakeScanner([everything_seen(), result(GUARD)])
    run.cli.scanner = scanner
    assert run(sqlite_url, "scan", "--quiet").exit_code == 1
    listed = json.loads(run(sqlite_url, "findings", "list", "--format", "json").stdout)
    run(sqlite_url, "findings", "ack", str(listed["findings"][0]["id"]), "--note", "known")
    scanner.error = ScanError("interface went away")
    assert run(sqlite_url, "scan", "--quiet").exit_code == 3
    return sqlite_url


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every ledger table, as the ledger's own column types read it."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = {
            table.name: [
                dict(row)
                for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()
            ]
            for table in ledger_tables()
        }
    engine.dispose()
    return rows


def test_the_whole_history_moves_with_ids_and_times(
    run: Run, history: str, target_url: str
) -> None:
    before = dump(history)
    assert all(before[name] for name in ("device", "pool", "audit", "scan_run", "finding"))
    kinds = {row["kind"] for row in before["run_records"]}
    assert {"observations", "dhcp_offers", "proxy_checks", "names", "evidence"} <= kinds
    assert {row["status"] for row in before["scan_run"]} == {"complete", "failed"}

    moved = run(history, "ledger", "migrate", "--to", target_url)
    assert moved.exit_code == 0, moved.stderr
    assert dump(target_url) == before
    assert dump(history) == before  # the source is left as it was
    lines = {line.split("│")[1].strip(): line for line in moved.stdout.splitlines() if "│" in line}
    assert lines["run_records"].split("│")[2].strip() == str(len(before["run_records"]))

    # New rows continue after the copied ids: the sequences were moved past them.
    assert run(target_url, "ledger", "add", "198.18.0.12", "02:00:00:00:00:12").exit_code == 0
    devices = dump(target_url)["device"]
    assert devices[-1]["id"] == max(row["id"] for row in before["device"]) + 1
    # And the history goes on: a scan at the new database keeps the same findings alive.
    run(target_url, "scan", "--quiet")
    after = dump(target_url)
    assert after["scan_run"][-1]["id"] == before["scan_run"][-1]["id"] + 1
    still = [row for row in after["finding"] if row["state"] != "resolved"]
    assert {row["id"] for row in still} <= {row["id"] for row in before["finding"]}
    assert run(target_url, "runs", "show", str(before["scan_run"][0]["id"])).exit_code == 0


def test_a_target_that_holds_data_is_refused(run: Run, history: str, target_url: str) -> None:
    assert run(history, "ledger", "migrate", "--to", target_url).exit_code == 0
    copied = dump(target_url)
    again = run(history, "ledger", "migrate", "--to", target_url)
    assert again.exit_code == 2
    assert "already holds data (" in again.stderr and "device: 2 rows" in again.stderr
    assert "migrate only into an empty database" in again.stderr
    assert dump(target_url) == copied


def test_the_ledger_itself_is_not_a_target(run: Run, history: str) -> None:
    again = run(history, "ledger", "migrate", "--to", history.removeprefix("sqlite:///"))
    assert again.exit_code == 2 and "is the ledger itself" in again.stderr


def test_a_directory_as_the_target_is_named_as_the_target(
    run: Run, history: str, tmp_path: Path
) -> None:
    refused = run(history, "ledger", "migrate", "--to", str(tmp_path))
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: --to {str(tmp_path)!r} is a directory; give the ledger file inside it\n",
    )


def test_a_failure_half_way_commits_nothing(run: Run, history: str, postgres_server: str) -> None:
    from tests.pg import create_database

    # SQLite keeps a NUL byte in text; PostgreSQL refuses it. The finding table comes late.
    engine = sa.create_engine(history, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE finding SET summary = 'a' || char(0) || 'b'"))
    engine.dispose()
    target = create_database(postgres_server)
    failed = run(history, "ledger", "migrate", "--to", target)
    assert failed.exit_code == 3
    assert failed.stderr.startswith("error: cannot copy table finding into ")
    assert "nothing was committed" in failed.stderr
    assert all(rows == [] for rows in dump(target).values())


def test_the_target_password_is_never_printed(run: Run, history: str, postgres_server: str) -> None:
    from tests.pg import create_database, free_port

    plain = create_database(postgres_server)
    with_password = plain.replace("postgres@", f"postgres:{SECRET}@")  # trust: any password works
    moved = run(history, "ledger", "migrate", "--to", with_password)
    assert moved.exit_code == 0, moved.stderr
    assert SECRET not in moved.stdout + moved.stderr
    assert "postgres:***@" in moved.stdout + moved.stderr

    unreachable = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{free_port()}/nothing"
    failed = run(history, "ledger", "migrate", "--to", unreachable)
    assert failed.exit_code == 3
    assert SECRET not in failed.stdout + failed.stderr
    assert "postgres:***@127.0.0.1" in failed.stderr
