"""What the benchmark sections share: targets, measured child processes, the machine, tables."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

Log = Callable[[str], None]


def log(message: str) -> None:
    """Progress on stderr (RESULTS.md is the output)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True, file=sys.stderr)


@dataclass(frozen=True)
class Target:
    """One goal of the issue and how this run measured against it."""

    what: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass
class Section:
    """One section of RESULTS.md, with what it measured against the targets."""

    name: str
    title: str
    markdown: str
    targets: list[Target] = field(default_factory=list)
    started_at: str = ""
    seconds: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (results.json keeps every section's latest run)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Section:
        """Back from results.json."""
        values = dict(data)
        values["targets"] = [Target(**t) for t in values.get("targets", [])]
        return cls(**values)


def load1() -> float:
    """The one-minute load average (the machine is shared: every section notes it)."""
    return os.getloadavg()[0]


# --- child processes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: its times, its peak memory and its output."""

    wall: float
    cpu: float
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str


# The measured command is forked by this small interpreter, not by the benchmark: Linux hands an
# exec'ed process the peak RSS of the memory image it replaced, so a command forked from a large
# process would report that process's size as its own peak (ru_maxrss). It writes the command's
# wall seconds, CPU seconds, peak RSS (KiB) and exit code to the file named first.
_SHIM = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    cpu = usage.ru_utime + usage.ru_stime
    report.write(f"{wall} {cpu} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_child(
    argv: Sequence[str],
    *,
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ChildRun:
    """Run a command: its wall time, CPU time and peak RSS (its own wait4 rusage), its output.

    For `ip netns exec NS CMD`, `ip` execs CMD in place: the figures are CMD's.
    """
    with tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        report = Path(tmp) / "report"
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            shim = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _SHIM, str(report), *argv],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,  # its own process group: a timeout ends the command too
            )
            try:
                shim.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(shim.pid, signal.SIGKILL)
                shim.wait()
                raise TimeoutError(f"{' '.join(argv)} took longer than {timeout:.0f} s") from None
            except BaseException:  # interrupted: the command must not outlive the benchmark
                os.killpg(shim.pid, signal.SIGKILL)
                shim.wait()
                raise
        if not report.exists():
            raise RuntimeError(f"could not run {' '.join(argv)}: {err_path.read_text()[-500:]}")
        wall, cpu, maxrss, code = report.read_text().split()
        return ChildRun(
            wall=float(wall),
            cpu=float(cpu),
            maxrss_mb=int(maxrss) / 1024,
            returncode=int(code),
            stdout=out_path.read_bytes().decode(errors="replace"),
            stderr=err_path.read_bytes().decode(errors="replace"),
        )


def compile_sources() -> None:
    """Byte-compile ipguard as `pip install` does, so no timed process compiles its modules.

    In a checkout, with PYTHONDONTWRITEBYTECODE set or after an edit, every `ipguard` process
    would otherwise compile the changed modules again: 25 stale modules cost 60 ms before the first
    probe. A user's installed ipguard never pays that; the benchmark must not either.
    """
    import compileall

    for folder in ("ipguard", "scanners", "policies"):
        compileall.compile_dir(REPO / folder, quiet=1)


def ipguard_argv(*args: str) -> list[str]:
    """The installed `ipguard` command of this virtualenv."""
    return [str(Path(sys.executable).with_name("ipguard")), *args]


def ipguard_in(work: Path, *args: str, ns: str | None = None, timeout: float = 900.0) -> ChildRun:
    """`ipguard` on `work`'s ledger.db and ipguard.toml (inside namespace `ns`); exit 0 or 1."""
    from tests.lab import netns

    argv = ipguard_argv(
        "--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml"), *args
    )
    child = run_child(netns.exec_argv(ns, argv) if ns else argv, timeout=timeout)
    if child.returncode not in (0, 1):  # 1: findings at or above fail_on, as the labs plant
        raise SystemExit(f"ipguard {' '.join(args)} failed: {child.stderr.strip()[-800:]}")
    return child


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, memory, kernel: what the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(total.group(1)) / 1024 / 1024:.1f} GiB" if total else "unknown",
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    """The versions of everything measured."""

    def package(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    def tool(argv: list[str], pattern: str) -> str:
        if shutil.which(argv[0]) is None:
            return "not installed"
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        found = re.search(pattern, result.stdout + result.stderr)
        return found.group(1) if found else "unknown"

    return {
        "ipguard": package("ipguard"),
        "python": platform.python_version(),
        "arp-scan": tool(["arp-scan", "--version"], r"arp-scan ([\d.]+)"),
        "nmap": tool(["nmap", "--version"], r"Nmap version ([\d.]+)"),
        "sqlite": sqlite3.sqlite_version,
        "scapy": package("scapy"),
        "SQLAlchemy": package("SQLAlchemy"),
    }


def now_text() -> str:
    """The current UTC time, to the minute."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- Markdown ------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` holds one of l/r per column (default: left)."""
    marks = [":---" if a == "l" else "---:" for a in (align or "l" * len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool | None) -> str:
    """The targets table's last column."""
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def seconds(value: float) -> str:
    """Seconds, with precision where it matters."""
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"
