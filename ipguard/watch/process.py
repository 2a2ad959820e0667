"""The watcher as a process: its signals, and whether another watcher's process still lives."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from ipguard.ledger.scan_tables import ScanRun


def gone(run: ScanRun) -> bool:
    """True for a watch run of this machine whose process no longer exists (killed)."""
    pid = run.settings.get("pid")
    if run.sensor != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, as another user
    return False


@contextmanager
def signals(stop: Callable[[], None], reload: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call `stop`, SIGHUP `reload` (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        stop()

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        reload()

    handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_reload}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
