"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster on loopback."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
_names = itertools.count(1)
# Server URL -> the directory holding its Unix socket, for clients in other network namespaces.
_SOCKET_DIRS: dict[str, Path] = {}


def pg_bin() -> Path | None:
    """Directory of initdb/pg_ctl, or None when PostgreSQL is not installed."""
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (for now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_cluster(
    *, durable: bool = False, netns: str | None = None, listen: str = "127.0.0.1"
) -> Iterator[str]:
    """Start a throwaway cluster; yields the server URL (without database). Always stopped.

    Tests skip fsync (nothing is kept); `durable` keeps PostgreSQL's production defaults, for
    benchmarks. `netns` runs the server in that lab namespace, listening on its address `listen`
    (clients of `listen`'s /24 are trusted, as loopback's are).
    """
    binaries = pg_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL binaries not found")
    root = Path(tempfile.mkdtemp(prefix="ipg-pg-"))
    shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port() if netns is None else 5432
    inside = ["ip", "netns", "exec", netns] if netns else []
    as_postgres = [*inside, "runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    if netns is not None:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {listen}/24 trust\n")
    options = f"-h {listen} -p {port} -k {root} -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c full_page_writes=off"
    try:
        subprocess.run(
            [
                *as_postgres,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        url = f"postgresql+psycopg://postgres@{listen}:{port}"
        _SOCKET_DIRS[url] = root
        yield url
    finally:
        _SOCKET_DIRS.pop(f"postgresql+psycopg://postgres@{listen}:{port}", None)
        subprocess.run(
            [
                *as_postgres,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg

    name = f"ipg_test_{next(_names)}_{int(time.time() * 1000) % 100000}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def socket_url(database_url: str) -> str:
    """The same database reached through the server's Unix socket.

    Lab sensors run in network namespaces, where 127.0.0.1 is their own loopback; a socket file
    is reachable from every namespace, so the server never listens beyond the host's loopback.
    """
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    server = f"{url.drivername}://{url.username}@{url.host}:{url.port}"
    directory = _SOCKET_DIRS[server]
    return f"{url.drivername}://{url.username}@/{url.database}?host={directory}&port={url.port}"
