"""Shared fixtures: a fresh real ledger file per test, and the CLI run as a user runs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest_plugins = ["tests.lab.fixtures", "tests.lab.scale"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for the whole session (skips when PostgreSQL is not installed)."""
    import os

    from tests.pg import pg_bin, postgres_cluster

    if pg_bin() is None or os.geteuid() != 0:
        pytest.skip("PostgreSQL server binaries (and root, to run them as postgres) are needed")
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger: a SQLite file, and a PostgreSQL database on a real server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    from tests.pg import create_database

    return create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger file, for tests about SQLite itself."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@dataclass
class Result:
    """What one CLI invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """Run `ipguard --db <fresh ledger> ARGS…` in-process; returns exit code and output."""
    from ipguard.cli.main import app

    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.chdir(tmp_path)

    def run(*args: str, input: str | bytes | None = None, db: str | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(
            app, ["--db", db or db_url, *args], input=input, catch_exceptions=False
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    return run
