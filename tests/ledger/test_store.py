"""The store: migrations applied on first use, identical schema head, durable transactions."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ipguard.errors import InputError
from ipguard.ledger.store import SCHEMA_HEAD, Store
from ipguard.ledger.urls import display_url, resolve_url

INSERT_POOL = (
    "INSERT INTO pool (department, cidr, description, created_at) "
    "VALUES ('m', '10.0.0.0/24', '', '2026-01-01')"
)


def test_schema_head_matches_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location",
        str(Path(__import__("ipguard.ledger.store").ledger.store.__file__).with_name("migrations")),
    )
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_first_open_migrates_and_later_opens_keep_data(db_url: str) -> None:
    store = Store(db_url)
    with store.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        assert {"device", "pool", "audit", "alembic_version"} <= tables
        assert (
            connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            == SCHEMA_HEAD
        )
    with store.session() as session:
        session.execute(sa.text(INSERT_POOL))
    store.close()
    again = Store(db_url)
    with again.session(write=False) as session:
        assert session.execute(sa.text("SELECT count(*) FROM pool")).scalar() == 1
    again.close()


def test_a_failed_unit_of_work_changes_nothing(db_url: str) -> None:
    store = Store(db_url)
    with pytest.raises(RuntimeError, match="boom"), store.session() as session:
        session.execute(sa.text(INSERT_POOL))
        raise RuntimeError("boom")
    with store.session(write=False) as session:
        assert session.execute(sa.text("SELECT count(*) FROM pool")).scalar() == 0
    store.close()


def test_urls_paths_and_masking(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IPGUARD_DB", raising=False)
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("IPGUARD_DB", "sqlite:////tmp/env.db")
    assert resolve_url(None) == "sqlite:////tmp/env.db"
    assert display_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # never opened
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("postgresql:/ipguard:S3cret@db.example/ipguard", "lacks its '://'"),
        ("postgresql+psycopg:ipguard:S3cret@db.example/ipguard", "lacks its '://'"),
        ("sqlite:/var/lib/ipguard/S3cret.db", "lacks its '://'"),
        ("host=db.example user=ipguard password=S3cret dbname=ipguard", "libpq connection"),
    ],
)
def test_a_mistyped_postgresql_url_is_refused_not_made_a_sqlite_file(
    cli: Any, tmp_path: Path, given: str, message: str
) -> None:
    # Taken as a path, each made directories or a file named after the password in the current
    # directory, and a new, empty ledger that `ledger list` showed as if it were the real one.
    refused = cli("ledger", "list", db=given)
    assert refused.exit_code == 2 and message in refused.stderr
    assert refused.stderr.startswith("error: --db ") and refused.stderr.count("\n") == 1
    assert "S3cret" not in refused.stdout + refused.stderr
    assert list(tmp_path.iterdir()) == []  # the cli fixture runs in tmp_path


def _open_when_released(url: str, barrier: Any, errors: Any) -> None:
    barrier.wait(timeout=30)
    try:
        Store(url).close()
    except Exception as error:  # reported to the parent, which asserts there are none
        errors.put(f"{type(error).__name__}: {error}")


def test_many_processes_opening_a_fresh_sqlite_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    """One migrates, the others wait and find the schema at head (none re-runs a migration)."""
    context = multiprocessing.get_context("fork")  # started in a blink: they really collide
    errors = context.Queue()
    for attempt in range(8):
        url = f"sqlite:///{tmp_path / f'ledger{attempt}.db'}"
        barrier = context.Barrier(8)
        processes = [
            context.Process(target=_open_when_released, args=(url, barrier, errors))
            for _ in range(8)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0] * 8
        assert errors.empty(), errors.get()
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalars().all() == [SCHEMA_HEAD]
        engine.dispose()


def test_another_programs_database_is_refused_and_left_alone(cli: Any, db_url: str) -> None:
    # A mistyped --db naming some other program's database: ipguard's tables are not added to it.
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE moz_places (id integer, url text)"))
    result = cli("ledger", "list", db=db_url)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {display_url(db_url)} is not an ipguard ledger: it holds other tables "
        "(moz_places) and ipguard will not add its own; give the ledger's path, or a new file "
        "or an empty database\n"
    )
    with engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == ["moz_places"]
    engine.dispose()


def test_a_ledger_from_a_newer_ipguard_is_refused_and_left_alone(cli: Any, db_url: str) -> None:
    Store(db_url).close()
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    result = cli("runs", "list", db=db_url)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: ledger {display_url(db_url)} has schema revision ")
    assert result.stderr.endswith(
        f"'0099', which ipguard {__import__('ipguard').__version__} does not know (its newest "
        f"is {SCHEMA_HEAD}): a newer ipguard made it; upgrade ipguard to use it\n"
    )
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert version == "0099"
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # paths are SQLite's
@pytest.mark.parametrize("name", ["what?.db", "50%25 off.db", "50% off.db"])
def test_a_ledger_path_with_url_characters_is_that_file(
    cli: Any, tmp_path: Path, name: str
) -> None:
    # `?` began a URL query and `%25` was decoded: `--db "what?.db"` opened a file `what`, and
    # `50%25 off.db` the file `50% off.db` (another ledger, when both exist).
    folder = tmp_path / "ledgers"
    folder.mkdir()
    ledger = folder / name
    assert cli("pools", "add", "math", "198.18.1.0/24", db=str(ledger)).exit_code == 0
    assert [path.name for path in folder.iterdir() if path.suffix == ".db"] == [name]
    listed = cli("pools", "list", "--format", "json", db=str(ledger))
    assert [pool["cidr"] for pool in json.loads(listed.stdout)] == ["198.18.1.0/24"]
    # Its own files are still recognised as the ledger's (output is never written onto them).
    refused = cli("ledger", "export", str(ledger), "--format", "csv", db=str(ledger))
    assert refused.exit_code == 2 and "the ledger's own file" in refused.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # paths are SQLite's
def test_a_ledger_path_in_a_directory_that_does_not_exist_is_refused(
    cli: Any, tmp_path: Path
) -> None:
    # `--db /var/lib/ipgaurd/ledger.db` made the directory and a new, empty ledger: `ledger
    # list` showed no devices and a scan reported every host as unregistered.
    typo = tmp_path / "ipgaurd" / "ledger.db"
    refused = cli("ledger", "list", db=str(typo))
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: --db {str(typo)!r}: there is no directory {typo.parent}; check the path, or "
        "create the directory first\n",
    )
    assert not typo.parent.exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # paths are SQLite's
def test_a_sqlite_url_in_a_directory_that_does_not_exist_is_refused_too(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The URL form of the same typo (`--db sqlite:////var/lib/ipgaurd/ledger.db`, or in
    # IPGUARD_DB) made the directory and a new, empty ledger that the plain path form refuses.
    typo = tmp_path / "ipgaurd" / "ledger.db"
    url = f"sqlite:///{typo}"
    refused = cli("ledger", "list", db=url)
    assert (refused.exit_code, refused.stderr) == (
        2,
        f"error: --db {url!r}: there is no directory {typo.parent}; check the path, or "
        "create the directory first\n",
    )
    monkeypatch.setenv("IPGUARD_DB", url)
    with pytest.raises(InputError, match=r"^IPGUARD_DB 'sqlite:///.*': there is no directory"):
        resolve_url(None)
    target = cli("ledger", "migrate", "--to", url)
    assert target.exit_code == 2 and "--to 'sqlite:///" in target.stderr
    assert not typo.parent.exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the fixture's own is not used
def test_a_postgresql_user_without_rights_is_one_error_line(
    cli: Any, postgres_server: str, tmp_path: Path
) -> None:
    # PostgreSQL 15 lets only a database's owner create tables in `public`: a sensor's own role
    # met an InsufficientPrivilege traceback at its first command.
    from tests.pg import create_database

    owner_url = create_database(postgres_server)
    role = f"sensor_{tmp_path.name[-12:].replace('-', '_')}".lower()
    engine = sa.create_engine(owner_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    sensor_url = owner_url.replace("postgres@", f"{role}:S3cret@")
    shown = display_url(sensor_url)
    for missing in ("schema public", "table alembic_version"):
        refused = cli("ledger", "list", db=sensor_url)
        assert refused.exit_code == 3
        assert refused.stderr == (
            f"error: ledger {shown} refuses its user: permission denied for {missing}; connect as "
            "the database's owner, or grant the user its rights (CREATE and USAGE on the schema, "
            "all on ipguard's tables and sequences)\n"
        )
        Store(owner_url).close()  # the owner creates the schema: now the tables are refused
        with engine.begin() as connection:
            connection.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
    engine.dispose()
