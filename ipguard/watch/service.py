"""The watcher's loop: frames in, judged in batches, findings in the ledger within a second.

    record the watch run (running), take a ledger snapshot, open the capture, READY=1
    until SIGTERM/SIGINT:
        read what the socket holds (at most 0.1 s of waiting), parse it at fixed offsets
        every FLUSH_SECONDS with frames pending: judge them, then in one transaction store the
            sightings, DHCP fingerprints and findings (opened or updated, never resolved)
        every few seconds: heartbeat and counts, ledger edits (device table's updated_at),
            the interface (gone or down: wait and reopen), the watchdog
        every [watch] alert_interval seconds: the alert digest (ipguard.alerts: never twice), sent
            by a thread of its own (ipguard.watch.alerting): a target that hangs stalls nothing
        SIGHUP: read the configuration and the ledger again
    store what is pending, close the run (complete), exit 0

The ledger unavailable: judged batches are spooled to disk (ipguard.watch.spooling) and wait in
memory (bounded, MAX_BACKLOG); they are stored, in order, once it answers again, or by the next
watcher of the site if this one is killed meanwhile. Nothing here prints: the caller gets each
new or escalated finding and each warning through callbacks (the CLI writes them to standard
error, the journal).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ipguard import __version__, spool
from ipguard.config import Settings
from ipguard.errors import InterfaceError, IpguardError, LedgerUnavailable
from ipguard.ledger import findings, skew, watching
from ipguard.ledger.scan_tables import FindingRow
from ipguard.ledger.store import Store
from ipguard.ledger.tables import utcnow
from ipguard.scanners.passive import parse_frame
from ipguard.watch import process, spooling, systemd
from ipguard.watch.alerting import Digests
from ipguard.watch.judge import Judge
from ipguard.watch.link import Link
from ipguard.watch.verdicts import Verdicts

FLUSH_SECONDS = 0.2  # frames wait at most this long to be judged and stored
TICK_SECONDS = 5.0  # heartbeat, ledger poll, interface check
MAX_PENDING = 200_000  # parsed frames waiting for the next batch; beyond, counted and dropped
MAX_BACKLOG = 3_000  # judged batches waiting for an unavailable ledger (10 minutes of batches)
# While listening, a write waits at most this long for another writer's lock (an import, a scan,
# an administrator's sqlite3 shell): the batch is then kept as if the ledger were down, tried
# again at most every RETRY_SECONDS, and the loop goes on reading frames and pinging systemd.
WRITE_WAIT = 0.5
RETRY_SECONDS = 5.0  # each try may take a couple of seconds (a silent PostgreSQL server)
STOP_WAIT = 5.0  # each of the last writes at SIGTERM
WATCHING = (skew.SCAN[0], skew.SCAN[1], "start watching")  # for a wrong clock's error

Report = Callable[[str, FindingRow], None]  # ("new" | "escalated", the stored finding)
Warn = Callable[[str], None]


@dataclass(frozen=True)
class WatchRequest:
    """What to watch: the site, the interface and the subnets whose claims are judged."""

    site: str
    interface: str
    subnets: tuple[str, ...]
    actor: str


class Watcher:
    """Watches one interface for one site until `stop()` (SIGTERM/SIGINT); see the module."""

    def __init__(
        self,
        store: Store,
        request: WatchRequest,
        settings: Callable[[], Settings],
        *,
        report: Report,
        warn: Warn,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.request = request
        self._read_settings = settings
        self.settings = settings()
        self.report = report
        self.warn = warn
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.run_id: int | None = None
        self.aborted_before: list[int] = []
        self.judge = self._new_judge()
        self._stopping = threading.Event()
        self._reload = False
        self._pending: list[tuple[float, Any]] = []
        self._backlog: list[tuple[datetime, Verdicts, Path | None]] = []
        self._link = Link(request.interface, self.warn, self.counts)
        self._ledger_version: tuple[int, str] | None = None
        self._ledger_down = False
        self._write_wait: float | None = None  # the store's own wait, but in the loop
        self._retry_at = 0.0
        self._digests = Digests(store, request.site)

    def _new_judge(self) -> Judge:
        return Judge(
            site=self.request.site,
            subnets=self.request.subnets,
            policy=self.settings.policy,
            duplicate_window=self.settings.watch.duplicate_window,
        )

    # -- lifetime --------------------------------------------------------------------------------

    def run(self) -> None:
        """Watch until stopped; raises IpguardError only for what stops it at the start."""
        self._link.open()
        try:
            self._start()
            with process.signals(self.stop, self.reload):
                self._loop()
        finally:
            self._link.close()
        systemd.notify("STOPPING=1")
        self._digests.stop(self.warn)
        self._finish()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stopping.set()

    def reload(self) -> None:
        """Ask the loop to read the configuration and the ledger again (SIGHUP)."""
        self._reload = True

    def _start(self) -> None:
        with self.store.session(write=False) as session:
            # On a shared PostgreSQL ledger, as for a scan: a clock hours off would date every
            # sighting and finding of this sensor wrongly in everyone's history.
            skew.refuse_skewed(session, WATCHING)
        now = self.clock()
        with self.store.session() as session:
            run, self.aborted_before = watching.start(
                session,
                site=self.request.site,
                interface=self.request.interface,
                subnets=self.request.subnets,
                settings={
                    "kind": "watch",  # shown by `runs show`, whose JSON shape has no kind key
                    "duplicate_window": self.settings.watch.duplicate_window,
                    "alert_interval": self.settings.watch.alert_interval,
                    "pid": os.getpid(),
                },
                actor=self.request.actor,
                sensor=socket.gethostname(),
                version=__version__,
                now=now,
                dead=process.gone,
            )
            self.run_id = run.id
        self._load_ledger()
        # Batches an earlier watcher could not store (the ledger was down, then it was killed).
        for path, at, verdicts in spooling.pending(self.store.url, self.request.site):
            self._store(at, verdicts)
            path.unlink(missing_ok=True)
        systemd.notify(f"READY=1\nSTATUS=watching {self.request.interface}")

    def _finish(self) -> None:
        """Store what is pending and close the run; a ledger still down loses only the backlog."""
        assert self.run_id is not None
        # Stopping: worth waiting for a lock, but not systemd's whole stop timeout (90 s) for
        # three writes of 30 s; what is not stored stays spooled for the next watcher.
        self._write_wait = STOP_WAIT
        self._flush()
        now = self.clock()
        try:
            self._retry_at = 0.0  # what the flush could not store: one more try
            self._drain_backlog()
            with self.store.session(wait=STOP_WAIT) as session:
                watching.stop(session, self.run_id, self.summary(), now)
        except LedgerUnavailable as error:
            self.warn(f"watch run {self.run_id} could not be closed: {error}")

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        last_flush = last_tick = time.monotonic()
        self._write_wait = WRITE_WAIT
        watchdog = systemd.watchdog_interval()
        last_dog = last_flush
        while not self._stopping.is_set():
            self._read()
            moment = time.monotonic()
            if self._pending and moment - last_flush >= FLUSH_SECONDS:
                self._flush()
                last_flush = moment
            if self._reload:
                self._reload = False
                self._do_reload()
            if moment - last_tick >= TICK_SECONDS:
                last_tick = moment
                self._tick()
            self._digests.tick(self.settings, run_id=self.run_id, clock=self.clock)
            self._digests.warnings(self.warn)
            if watchdog is not None and moment - last_dog >= watchdog:
                last_dog = moment
                systemd.notify("WATCHDOG=1")

    def _read(self) -> None:
        capture = self._link.capture
        if capture is None:
            self._stopping.wait(1.0)
            self._link.reopen()
            return
        try:
            frames = capture.read(0.1)
        except InterfaceError as error:
            self._link.lost(str(error))
            return
        moment = time.monotonic()
        self.counts["frames_read"] += len(frames)
        pending = self._pending
        room = MAX_PENDING - len(pending)
        for frame in frames:
            parsed = parse_frame(frame)
            if parsed is None:
                self.counts["ignored_unparsed"] += 1
            elif room <= 0:
                self.counts["ignored_backlog"] += 1
            else:
                pending.append((moment, parsed))
                room -= 1

    def _flush(self) -> None:
        """Judge the pending frames and store what they came to."""
        if not self._pending:
            return
        items, self._pending = self._pending, []
        now = self.clock()
        verdicts = self.judge.judge(items, now)
        self.counts["frames_judged"] += verdicts.judged
        self.counts["frames_evaluated"] += verdicts.evaluated
        if not self._backlog:
            try:
                self._store(now, verdicts)
                return
            except LedgerUnavailable as error:
                self._ledger_unavailable(error)
        self._queue(now, verdicts)
        self._drain_backlog()

    def _queue(self, now: datetime, verdicts: Verdicts) -> None:
        """Keep a batch the ledger did not take: on disk (a kill loses nothing) and in memory."""
        assert self.run_id is not None
        path = None
        if verdicts.findings or verdicts.sightings or verdicts.offers or verdicts.clients:
            try:
                path = spooling.keep(self.store.url, self.request.site, self.run_id, now, verdicts)
            except spool.SpoolError as error:
                self.counts["spool_failures"] += 1
                if self.counts["spool_failures"] == 1:
                    self.warn(f"sightings could not be spooled either ({error}); kept in memory")
        if len(self._backlog) >= MAX_BACKLOG:
            if path is None:
                self.counts["ignored_ledger_down"] += len(verdicts.sightings) + len(verdicts.offers)
            return  # a spooled batch is stored at the next start
        self._backlog.append((now, verdicts, path))

    def _drain_backlog(self) -> None:
        if self._write_wait is not None and time.monotonic() < self._retry_at:
            return
        while self._backlog:
            now, verdicts, path = self._backlog[0]
            try:
                self._store(now, verdicts)
            except LedgerUnavailable as error:
                self._ledger_unavailable(error)
                return
            self._backlog.pop(0)
            if path is not None:
                path.unlink(missing_ok=True)

    def _store(self, now: datetime, verdicts: Verdicts) -> None:
        assert self.run_id is not None
        site = self.request.site
        with self.store.session(wait=self._write_wait) as session:
            watching.store_sightings(session, self.run_id, verdicts.sightings, verdicts.offers)
            watching.store_fingerprints(session, site, verdicts.clients.values(), now)
            synced = None
            if verdicts.findings:
                synced = findings.sync(
                    session,
                    site=site,
                    run_id=self.run_id,
                    now=now,
                    findings=verdicts.findings,
                    subnets=(),
                    phases=frozenset(),  # no phase: a watcher never resolves a finding
                    evidence=verdicts.evidence,
                )
                self.judge.note_first_seen(
                    {(row.kind, row.subject): findings.started(row) for row in synced.new}
                )
        if self._ledger_down:
            self._ledger_down = False
            self.warn(f"the ledger answers again; watch run {self.run_id} stored what it held")
        self.counts["sightings_stored"] += len(verdicts.sightings)
        if synced is not None:
            self.counts["findings_new"] += len(synced.new)
            self.counts["findings_escalated"] += len(synced.escalated)
            for row in synced.new:
                self.report("new", row)
            for row in synced.escalated:
                self.report("escalated", row)

    def _ledger_unavailable(self, error: LedgerUnavailable) -> None:
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not self._ledger_down:
            self._ledger_down = True
            self.warn(f"{error}; watching on, sightings kept until the ledger answers")

    # -- every few seconds -----------------------------------------------------------------------

    def _tick(self) -> None:
        self._link.check()
        if self._ledger_down and time.monotonic() < self._retry_at:
            return  # tried a moment ago: the next try is the retry's, not every tick's
        if self._backlog:
            self._drain_backlog()
        try:
            with self.store.session(wait=self._write_wait) as session:
                assert self.run_id is not None
                watching.beat(session, self.run_id, self.summary(), self.clock())
                version = watching.ledger_version(session)
            if version != self._ledger_version:
                self._load_ledger()
        except LedgerUnavailable as error:
            self._ledger_unavailable(error)

    def _load_ledger(self) -> None:
        with self.store.session(write=False) as session:
            version = watching.ledger_version(session)
            records = watching.snapshot(session)
            grace = timedelta(days=self.settings.policy.unregistered_grace_days)
            first = findings.first_seen(
                session, self.request.site, now=self.clock(), returning_within=grace
            )
        self.judge.load(records, first)
        self._ledger_version = version  # only once loaded: a failed load is tried again

    def _do_reload(self) -> None:
        try:
            self.settings = self._read_settings()
        except IpguardError as error:
            self.warn(f"configuration not reloaded, the old one stays in force: {error}")
        old, self.judge = self.judge, self._new_judge()
        try:
            self._load_ledger()
        except LedgerUnavailable as error:
            # A judge without the ledger would call every registered device a newcomer: the
            # snapshot it had stays in force until the ledger answers (the next tick reloads).
            self.judge.load(old.records, old.first_seen)
            self._ledger_version = None  # read it again as soon as it answers
            self._ledger_unavailable(error)
            self.warn(
                "configuration reloaded; the ledger is unavailable, its last snapshot stays "
                "in force until it answers"
            )

    def summary(self) -> dict[str, Any]:
        """The counts the watch run records: frames read, judged, ignored (by reason), findings."""
        ignored = {
            **{
                key.removeprefix("ignored_"): n
                for key, n in self.counts.items()
                if "ignored_" in key
            },
            **self.judge.ignored,
        }
        return {
            "frames_read": self.counts["frames_read"],
            "frames_judged": self.counts["frames_judged"],
            "frames_ignored": sum(ignored.values()),
            "frames_evaluated": self.counts["frames_evaluated"],
            "ignored": dict(ignored),
            "kernel_drops": self.counts["kernel_drops"],
            "sightings": self.counts["sightings_stored"],
            "findings_new": self.counts["findings_new"],
            "findings_escalated": self.counts["findings_escalated"],
            "interface_lost": self.counts["interface_lost"],
        }
