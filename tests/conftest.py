"""Shared fixtures: a fresh real ledger file per test, and the CLI run as a user runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

# TEMP until the lab fixtures land
if (Path(__file__).parent / "lab" / "fixtures.py").exists():
    pytest_plugins = ["tests.lab.fixtures"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger file (created by the first command that opens it)."""
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
        result = runner.invoke(app, ["--db", db or db_url, *args], input=input, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run
