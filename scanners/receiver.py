"""The thread that reads a raw socket's replies as fast as they come (the sweeps and probes).

Linux only, like scanners.rawsock, which opens and filters the sockets it reads.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable

# Frames read in one go before the receiver looks at its stop flag again: a flood faster than
# Python can read must not keep a sweep from ending.
DRAIN_BATCH = 65_536


class Receiver(threading.Thread):
    """Reads every frame the (filtered) socket queues, stamping its arrival, until stopped.

    The loop does little but read and append: parsing happens elsewhere, so the thread keeps up
    with the socket and the kernel buffer never fills. `records` grows while the thread runs;
    readers may look at `records[:len(records)]` at any time (appends are atomic).

    Hostile links send what they like, so what is kept is bounded: `admit(frame)` (cheap, called
    on the receiving thread) may refuse a frame, and at most `limit` frames are kept. Frames read
    but not kept are counted in `ignored`.
    """

    def __init__(
        self,
        sock: socket.socket,
        snaplen: int,
        *,
        name: str = "ipguard-receiver",
        admit: Callable[[bytes], bool] | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.records: list[tuple[float, bytes]] = []
        self.error: OSError | None = None
        self.ignored = 0
        self._sock = sock
        self._snaplen = snaplen
        self._admit = admit
        self._limit = limit
        self._stopping = threading.Event()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # stop() ends a poll at once
        sock.setblocking(False)

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._wake, select.POLLIN)
        drain = self._drain if self._admit is None and self._limit is None else self._drain_some
        try:
            while True:
                stopping = (
                    self._stopping.is_set()
                )  # read before draining: the last drain is complete (floods aside)
                emptied = drain()
                if stopping:
                    return
                if emptied:
                    poller.poll(20)
        except OSError as exc:  # e.g. ENETDOWN: the interface went away mid-sweep
            # Once stopping, a starved thread can outlive stop()'s join and find its socket
            # closed by the sweep (EBADF): that is the end of the sweep, not a lost interface.
            if not self._stopping.is_set():
                self.error = exc

    def _drain(self) -> bool:
        """Read up to DRAIN_BATCH frames; True when the socket ran empty."""
        recv, append, clock = self._sock.recv, self.records.append, time.monotonic
        snaplen = self._snaplen
        try:
            for _ in range(DRAIN_BATCH):
                append((clock(), recv(snaplen)))
        except BlockingIOError:
            return True
        return False

    def _drain_some(self) -> bool:
        """`_drain`, keeping only the frames `admit` accepts, up to `limit` in all."""
        recv, records, clock = self._sock.recv, self.records, time.monotonic
        snaplen = self._snaplen
        admit = self._admit
        limit = self._limit if self._limit is not None else 1 << 62
        try:
            for _ in range(DRAIN_BATCH):
                frame = recv(snaplen)
                if len(records) < limit and (admit is None or admit(frame)):
                    records.append((clock(), frame))
                else:
                    self.ignored += 1
        except BlockingIOError:
            return True
        return False

    def stop(self) -> None:
        """Drain what is queued, then end the thread."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.eventfd_write(self._wake, 1)
        if self.ident is not None:  # started
            self.join(timeout=5.0)
        if not self.is_alive():  # else a starved thread still polls it: the process's to close
            os.close(self._wake)
