"""Shared by the hardening tests: ipguard in a subprocess, a private tmpfs, ledger checks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/16"]
site = "lab"
[policy]
hostname_rule = ""
"""


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of an ipguard subprocess: its own user state dir (spool), no stray config."""
    values = {
        key: value for key, value in os.environ.items() if not key.startswith(("IPGUARD_", "XDG_"))
    }
    values.update(
        PYTHONPATH=str(REPO),
        IPGUARD_ACTOR="tester",
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    values.update(extra)
    return values


def fake_cli_argv(
    *args: str, hosts: int = 10, seed: int = 0, hold: float = 0.0, flag: Path | None = None
) -> list[str]:
    """argv running `ipguard ARGS…` with the fake scanner (tests.hardening.fake_cli)."""
    argv = [sys.executable, "-m", "tests.hardening.fake_cli", "--hosts", str(hosts)]
    argv += ["--seed", str(seed), "--hold", str(hold)]
    if flag is not None:
        argv += ["--flag", str(flag)]
    return [*argv, "--", *args]


def ipguard_argv(*args: str) -> list[str]:
    """argv of the real `ipguard` command of this virtualenv."""
    return [str(Path(sys.executable).with_name("ipguard")), *args]


def run(
    argv: Sequence[str], tmp_path: Path, *, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run to the end, capturing output."""
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env(tmp_path, **extra),
        check=False,
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Until `path` exists; fails early if the process ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"exited {process.returncode} before {path} appeared: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def stop(process: subprocess.Popen[str]) -> None:
    """Make sure a child we started is gone."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def ledger_facts(database: str | Path, *, through: PrivateTmpfs | None = None) -> dict:
    """What a SQLite ledger holds, read without changing it (tests.hardening.dbcheck).

    A ledger on a private tmpfs is read from inside its mount namespace: SQLite resolves
    /proc/PID/root back to this namespace's own files.
    """
    argv = [sys.executable, "-m", "tests.hardening.dbcheck", str(database)]
    if through is not None:
        argv = through.argv(argv)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    facts: dict = json.loads(done.stdout)
    return facts


def spool_files(tmp_path: Path) -> list[Path]:
    """Spool files under the subprocesses' user state dir."""
    return sorted((tmp_path / "state").glob("ipguard/spool/*/run-*.json"))


@dataclass
class PrivateTmpfs:
    """A tmpfs mounted in a private mount namespace that a sleeping process holds open.

    Nothing of it is visible in the test's own mount namespace: commands reach it through
    `argv()` (nsenter), the test reads and writes it through `/proc/PID/root`. When the holder
    dies the namespace and its mount vanish, whatever happened to the test.
    """

    mountpoint: Path
    holder: subprocess.Popen[str]

    def path(self, *parts: str) -> Path:
        """A path inside the tmpfs, as this process reaches it."""
        return (
            Path(f"/proc/{self.holder.pid}/root") / str(self.mountpoint).lstrip("/") / Path(*parts)
        )

    def inside(self, *parts: str) -> str:
        """A path inside the tmpfs, as processes run through `argv` see it."""
        return str(self.mountpoint.joinpath(*parts))

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Run `argv` in the namespace that sees the tmpfs."""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv]

    def remount(self, options: str) -> None:
        """`mount -o remount,OPTIONS` the tmpfs (ro, rw, size=…)."""
        subprocess.run(
            self.argv(["mount", "-o", f"remount,{options}", str(self.mountpoint)]),
            check=True,
            capture_output=True,
            timeout=30,
        )

    def fill(self) -> Path:
        """Write until the tmpfs is full; returns the filler file (delete it to free space)."""
        filler = self.path("filler")
        for name, block in (("filler", b"\0" * 65536), ("filler-2", b"\0" * 512)):
            with open(self.path(name), "wb", buffering=0) as out, contextlib.suppress(OSError):
                while True:
                    out.write(block)
        return filler


@contextlib.contextmanager
def private_tmpfs(tmp_path: Path, size: str) -> Iterator[PrivateTmpfs]:
    """A tmpfs of `size` (e.g. "8m") in its own mount namespace; skips without root or unshare."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "nsenter")):
        pytest.skip("a private tmpfs needs root, unshare and nsenter (util-linux)")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    script = (
        f"mount -t tmpfs -o size={size},mode=0755 ipg-hardening {mountpoint} && echo ready "
        "&& exec sleep 600"
    )
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line.strip() == "ready", holder.stderr.read() if holder.stderr else ""
        yield PrivateTmpfs(mountpoint, holder)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)


@dataclass
class Cluster:
    """A PostgreSQL cluster of our own, on a Unix socket only, that a test may stop and start."""

    root: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, user: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{user}{secret}@/postgres?host={self.root}&port={self.port}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-c listen_addresses='' -k {self.root} -p {self.port} -c fsync=off"
        self._ctl("-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def own_cluster(port: int, *, password: str | None = None) -> Iterator[Cluster]:
    """Start a throwaway cluster (SCRAM auth with `password`, else trust); always removed."""
    import tempfile

    from tests.pg import pg_bin

    binaries = pg_bin()
    if binaries is None or os.geteuid() != 0:
        pytest.skip("PostgreSQL server binaries (and root) are needed")
    root = Path(tempfile.mkdtemp(prefix="ipg-pgown-"))
    shutil.chown(root, "postgres", "postgres")
    auth = ["-A", "trust"]
    if password is not None:
        (root / "pw").write_text(password + "\n")
        shutil.chown(root / "pw", "postgres", "postgres")
        auth = ["-A", "scram-sha-256", f"--pwfile={root / 'pw'}"]
    cluster = Cluster(root, port, binaries)
    try:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(binaries / "initdb"),
                "-D",
                str(cluster.data),
                *auth,
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
