"""Network-namespace helpers: run commands in a namespace, move a thread into one, clean up.

Every function here acts on namespaces by name under ``/run/netns``. Nothing touches the root
namespace's interfaces, routes or rules: the only commands run outside a lab namespace are
``ip netns add`` / ``ip netns del``, and :func:`batch_netns` refuses anything else.

    >>> with inside("ipg-3f9a1c-scan"):
    ...     sock = socket.create_connection(("198.18.0.20", 22))   # belongs to the lab namespace
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

PREFIX = "ipg-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


class LabError(RuntimeError):
    """The lab could not be built, changed or torn down; the message says which step failed."""


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def run(
    ns: str,
    argv: Sequence[str],
    *,
    timeout: float = 30.0,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside namespace ``ns`` and capture its output as text."""
    return subprocess.run(
        exec_argv(ns, argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def run_many(jobs: Iterable[tuple[list[str], str | None]], *, timeout: float = 30.0) -> None:
    """Run independent commands concurrently; raise :class:`LabError` naming the first that failed.

    Each job is ``(argv, stdin_text)``. Starting them all before waiting overlaps the fork/exec
    cost of ``ip`` and ``sysctl``, which dominates lab build time.
    """
    started = [
        (
            argv,
            text,
            subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for argv, text in jobs
    ]
    failures: list[str] = []
    deadline = time.monotonic() + timeout
    for argv, text, proc in started:
        try:
            _out, err = proc.communicate(text, timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            failures.append(f"{' '.join(argv)}: timed out after {timeout:.0f} s")
            continue
        if proc.returncode != 0:
            detail = err.strip() or f"exit status {proc.returncode}"
            failures.append(
                f"{' '.join(argv)}: {detail}" + (f"\n--- input ---\n{text}" if text else "")
            )
    if failures:
        raise LabError("lab command failed: " + failures[0])


def ip_batch_argv(ns: str) -> list[str]:
    """The argv of an ``ip -batch`` reading commands from stdin inside namespace ``ns``."""
    return ["ip", "-n", ns, "-batch", "-"]


def batch_netns(lines: Sequence[str]) -> None:
    """Run ``ip netns add|del`` lines in one ``ip -batch`` (the only root-level command allowed)."""
    for line in lines:
        words = line.split()
        if len(words) != 3 or words[:1] != ["netns"] or words[1] not in ("add", "del"):
            raise ValueError(f"not a netns add/del command: {line!r}")
        if not words[2].startswith(PREFIX):
            raise ValueError(
                f"refusing to touch namespace {words[2]!r}: lab namespaces start with {PREFIX}"
            )
    if lines:
        run_many([(["ip", "-batch", "-"], "\n".join(lines) + "\n")])


def existing(prefix: str = PREFIX) -> list[str]:
    """Names of the namespaces under /run/netns that start with ``prefix``."""
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))
    except FileNotFoundError:
        return []


def identity(path: str | Path) -> tuple[int, int]:
    """(device, inode) identifying the network namespace behind ``path`` (netns file or link)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def namespace_pids(names: Iterable[str]) -> dict[str, list[int]]:
    """Processes (not zombies) whose network namespace is one of ``names``, like ``ip netns pids``.

    One pass over /proc for all namespaces, instead of one ``ip netns pids`` process each.
    """
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        with contextlib.suppress(OSError):
            wanted[identity(NETNS_DIR / name)] = name
    found: dict[str, list[int]] = {name: [] for name in wanted.values()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            ident = identity(f"/proc/{pid}/ns/net")
            if ident in wanted and not _is_zombie(pid):
                found[wanted[ident]].append(pid)
        except OSError:
            continue  # the process exited while we looked
    return found


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def kill_processes(names: Iterable[str], *, grace: float = 2.0) -> None:
    """SIGTERM every process in the namespaces, then SIGKILL whatever is left after ``grace`` s."""
    names = list(names)
    me = os.getpid()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    for _attempt in range(2):
        pids = [p for group in namespace_pids(names).values() for p in group if p != me]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        while pids and time.monotonic() < deadline:
            time.sleep(0.02)
            pids = [p for group in namespace_pids(names).values() for p in group if p != me]
        if not pids:
            return
        sig, deadline = signal.SIGKILL, time.monotonic() + grace


def destroy(names: Iterable[str]) -> None:
    """Kill every process in the namespaces and delete them; missing ones are skipped."""
    present = [name for name in names if (NETNS_DIR / name).exists()]
    if not present:
        return
    kill_processes(present)
    batch_netns([f"netns del {name}" for name in present])


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)}")


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Move the current thread into network namespace ``ns`` for the duration of the block.

    Sockets created, subprocesses and threads started by this thread inside the block belong to
    ``ns`` (sockets keep belonging to it after the block ends). The thread's original namespace is
    restored on exit, also when the block raises. Threads that already exist are not affected.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            # If this fails the thread stays in the lab namespace: the safe side to fail on.
            _setns(own)
    finally:
        os.close(own)
