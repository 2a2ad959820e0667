"""Shared fixtures: a fresh real ledger file per test, and the CLI run as a user runs it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

if TYPE_CHECKING:
    from ipguard.runner import Scanner

pytest_plugins = ["tests.lab.fixtures", "tests.lab.scale"]


@pytest.fixture(scope="session", autouse=True)
def utc_calendar() -> Iterator[None]:
    """The suite's dates and expected outputs are UTC days: `[policy] timezone` defaults to the
    machine's zone (TZ, else /etc/localtime), so a machine set to another zone would move them.
    Tests of the zones set TZ or the key themselves."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TZ", "UTC")
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def scapy_never_resolves() -> Iterator[None]:
    """Network safety: a frame a test builds with scapy must name its destination MAC.

    Left out, scapy resolves it itself, sending ARP requests or Neighbor Solicitations from
    whatever namespace the test process is in: this machine's own, outside the lab. Here that
    is an error instead.
    """
    from scapy.layers.l2 import Neighbor

    def refuse(self: object, l2inst: object, l3inst: object) -> None:
        raise AssertionError(
            "a test frame without a destination MAC: scapy would resolve it on the network"
        )

    saved = Neighbor.resolve
    Neighbor.resolve = refuse  # type: ignore[method-assign,assignment]
    yield
    Neighbor.resolve = saved  # type: ignore[method-assign]


def _network_namespace() -> int:
    """The calling thread's network namespace (its inode)."""
    import os

    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.fixture(scope="session", autouse=True)
def probes_only_from_lab_namespaces() -> Iterator[None]:
    """Network safety: in this process, the real scanner runs, and raw sockets open, only inside
    a lab namespace (tests.lab.netns.inside), never in this machine's own.

    A CLI test that forgets the fake scanner would otherwise sweep this machine's eth0; that
    happened once (session 5: `scan --site BAD` before the site check existed). Scans the tests
    start as processes run under `ip netns exec` in the lab's namespaces.
    """
    from ipguard.scanners import rawsock, suite

    own = _network_namespace()  # the one pytest started in: this machine's (PID 1 hides its own)

    def guarded(original: Callable[..., Any], what: str) -> Callable[..., Any]:
        @functools.wraps(original)
        def refusing(*args: Any, **kwargs: Any) -> Any:
            if _network_namespace() == own:
                raise AssertionError(
                    f"{what} from this machine's own network namespace: use the fake scanner, "
                    "or run inside a lab namespace"
                )
            return original(*args, **kwargs)

        return refusing

    saved = (suite.NetworkScanner.begin, rawsock.open_socket)
    suite.NetworkScanner.begin = guarded(saved[0], "the real scanner")  # type: ignore[method-assign]
    rawsock.open_socket = guarded(saved[1], "a raw socket")
    yield
    suite.NetworkScanner.begin, rawsock.open_socket = saved  # type: ignore[method-assign]


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


class Cli:
    """Runs `ipguard --db <ledger> ARGS…` in-process, as a user runs it; returns what it printed.

    `scanner`, when set, is put at the scanner seam of every later invocation: the CLI's state
    takes a scanner factory (as httpx takes a transport), so no module global is patched.
    """

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.scanner: Scanner | None = None

    def __call__(
        self, *args: str, input: str | bytes | None = None, db: str | None = None
    ) -> Result:
        """One invocation; `db` replaces the fixture's ledger URL."""
        from ipguard.cli.context import AppState
        from ipguard.cli.main import app

        scanner = self.scanner
        shared = AppState(scanner_factory=None if scanner is None else lambda: scanner)
        result = CliRunner().invoke(
            app,
            ["--db", db or self.db_url, *args],
            input=input,
            catch_exceptions=False,
            obj=shared,
        )
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """Run `ipguard --db <fresh ledger> ARGS…` in-process; returns exit code and output."""
    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.chdir(tmp_path)
    return Cli(db_url)
