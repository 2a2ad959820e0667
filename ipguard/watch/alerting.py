"""The watcher's alert digests, sent beside the capture, never in its way.

A digest goes to every `[alerts] urls` target, and waits for them up to `ipguard.alerts.DEADLINE`
(a minute: a webhook behind a hung proxy that sends its answer a byte a second never trips a read
timeout). Sent from the watcher's loop, that would stop the capture and the judging for as long
(findings not stored, frames dropped by the kernel). So each digest is sent by a thread of its
own; while it is out, no other starts (the next one waits for it, and says so once), and the next
is due an `alert_interval` after it finished, as when it was sent inline. A watcher stopping
waits a few seconds for a digest still out, then leaves it (the findings it carries are not
marked alerted, so the next watcher or scan sends them).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from ipguard.alerts import send_digest
from ipguard.config import AlertSettings, Settings
from ipguard.errors import IpguardError
from ipguard.ledger.store import Store

STOP_WAIT = 5.0  # seconds a stopping watcher waits for a digest still being sent


class Digests:
    """Alert digests of one site, sent in the background (see the module docstring)."""

    def __init__(self, store: Store, site: str) -> None:
        self.store = store
        self.site = site
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._last = time.monotonic()  # when the last digest was started or finished
        self._told = False  # the digest still out has been warned about
        self._said: queue.SimpleQueue[str] = queue.SimpleQueue()

    def tick(
        self, settings: Settings, *, run_id: int | None, clock: Callable[[], datetime]
    ) -> None:
        """Start a digest when one is due and none is out; warn (once) of one that hangs."""
        moment, interval = time.monotonic(), settings.watch.alert_interval
        if self._thread is not None and self._thread.is_alive():
            if not self._told and moment - self._started >= interval:
                self._told = True
                self._said.put(
                    f"an alert digest has been sending for {moment - self._started:.0f} s (a "
                    "target that does not answer); the next waits for it, watching goes on"
                )
            return
        if moment - self._last < interval:
            return
        self._started = self._last = moment
        self._told = False
        self._thread = threading.Thread(
            target=self._send,
            args=(settings.alerts, run_id, clock()),
            name="ipguard-alerts",
            daemon=True,  # a target that never answers must not keep the process alive
        )
        self._thread.start()

    def _send(self, settings: AlertSettings, run_id: int | None, now: datetime) -> None:
        try:
            outcome = send_digest(self.store, settings, site=self.site, run_id=run_id, now=now)
        except IpguardError as error:
            self._said.put(f"alerts not sent: {error}")
        else:
            for line in outcome.failed:
                self._said.put(line)
        finally:
            # The next digest is due an interval after this one finished: the first also loads
            # apprise and may take seconds, and the next must still come an interval later.
            self._last = time.monotonic()

    def warnings(self, warn: Callable[[str], None]) -> None:
        """Hand what the digests had to say to `warn` (from the watcher's own thread)."""
        while True:
            try:
                warn(self._said.get_nowait())
            except queue.Empty:
                return

    def stop(self, warn: Callable[[str], None]) -> None:
        """Wait at most STOP_WAIT seconds for a digest still out, then say what is left."""
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            if self._thread.is_alive():
                self._said.put(
                    "an alert digest was still being sent at exit and is abandoned; its findings "
                    "are alerted next time"
                )
        self.warnings(warn)
