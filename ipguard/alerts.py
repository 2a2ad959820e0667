"""Alerts: after a scan, one digest of the findings that need a human now, sent with apprise.

A finding is alerted when it is live, not acknowledged, at or above `[alerts] min_severity`, and
either was never alerted or has escalated since (its severity is above `alerted_severity`, which
the finding row records once a digest carrying it was delivered). So the same finding is never
sent twice unless it escalates; a digest that no target accepted is tried again after the next
scan (when one target of several accepted it, the others are not retried). A failing target never
fails the scan: the caller gets a warning per failed target, with the URL's secrets masked.

A target may also never finish answering: apprise's timeouts are per socket read, and a webhook
behind a hung proxy that sends a byte every few seconds never trips one. So the targets are sent
to side by side, each from a thread of its own, and a digest waits at most DEADLINE seconds for
them all; a target still out then is a failed one (its thread is abandoned: a daemon thread ends
with the process). A target that does accept after the deadline has its findings sent again with
the next digest: twice rather than never.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ipguard.config import AlertSettings
from ipguard.escape import one_line
from ipguard.ledger import findings
from ipguard.ledger.scan_tables import FindingRow
from ipguard.ledger.store import Store
from ipguard.model import FindingState, Severity

MAX_LINES = 50  # a digest lists at most this many findings, then says how many more
Sender = Callable[[str, str, str], bool]  # (url, title, body) → delivered
DEADLINE = 60.0  # seconds a digest waits for all its targets together (see the module docstring)


@dataclass
class AlertOutcome:
    """What one round of alerting did."""

    sent: list[int] = field(default_factory=list)  # finding ids carried by a delivered digest
    delivered: list[str] = field(default_factory=list)  # masked URLs that accepted it
    failed: list[str] = field(default_factory=list)  # one warning line per failed target


def due(rows: Sequence[FindingRow], settings: AlertSettings, now: datetime) -> list[FindingRow]:
    """The findings a digest should carry now (see the module docstring)."""
    chosen = []
    for row in rows:
        if row.state == FindingState.RESOLVED.value or findings.is_suppressed(row, now):
            continue
        severity = Severity(row.severity)
        if severity < settings.min_severity:
            continue
        if row.alerted_severity is None or severity > Severity(row.alerted_severity):
            chosen.append(row)
    return sorted(chosen, key=lambda row: (-Severity(row.severity).rank, row.id or 0))


def digest(rows: Sequence[FindingRow], *, site: str, run_id: int | None) -> tuple[str, str]:
    """Title and plain-text body of a digest."""
    worst = max((Severity(row.severity) for row in rows), default=Severity.INFO)
    count = len(rows)
    site = one_line(site)  # a title is one header line: a newline there would start another
    title = (
        f"ipguard: {count} finding{'s need' if count != 1 else ' needs'} attention at site {site} "
        f"({worst.value})"
    )
    lines = [f"Scan run {run_id} at site {site} found:" if run_id else f"Site {site}:", ""]
    for row in rows[:MAX_LINES]:
        escalated = (
            f" (escalated from {row.alerted_severity})" if row.alerted_severity is not None else ""
        )
        if row.ack_until is not None:  # a due finding's acknowledgement has ended
            escalated += f" (acknowledged until {_utc(row.ack_until)}: ended)"
        subject = one_line(" ".join(part for part in (row.ip, row.mac, row.port) if part))
        lines.append(
            f"[{row.severity.upper()}] #{row.id} {row.kind} {subject}{escalated}: "
            f"{one_line(row.summary)}"
        )
        when = f"    first seen {_utc(row.first_seen_at)}"
        if row.report_due_at is not None:
            when += f", report due {_utc(row.report_due_at)}"
        lines.append(when)
    if count > MAX_LINES:
        lines.append(f"… and {count - MAX_LINES} more: `ipguard findings list --site {site}`")
    lines += ["", "Acknowledge with `ipguard findings ack ID --note TEXT`."]
    return title, "\n".join(lines)


def _utc(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def mask_url(url: str) -> str:
    """The URL as it may be shown: apprise's privacy form, else the scheme only."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url)
        if plugin is not None:
            # Without the query: apprise's own tuning parameters only make the line unreadable.
            return str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]
    except Exception:  # masking must never be the thing that fails
        pass
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"{scheme}://***"


def exposed(source: str, urls: Sequence[str]) -> str | None:
    """A warning when the configuration file holds an alert URL with a password (or a token in
    its query) and other users may read it, else None. Mail and webhook passwords have no other
    place than the URL; the file then is a secret too."""
    import os
    import stat
    from urllib.parse import parse_qsl, urlsplit

    def secret(url: str) -> bool:
        try:
            parts = urlsplit(url)
            names = [name.lower() for name, _ in parse_qsl(parts.query)]
            return parts.password is not None or any(
                word in name for name in names for word in ("pass", "token", "secret", "key")
            )
        except ValueError:
            return True  # unparseable: it may hold anything

    try:
        mode = stat.S_IMODE(os.stat(source).st_mode)
    except (OSError, ValueError):  # the defaults, or a file gone since: nothing to say
        return None
    if not mode & 0o077 or not any(secret(url) for url in urls):
        return None
    return (
        f"{source} holds an alert URL with a password and other users may read it "
        f"(mode {mode:03o}): chmod 600 it"
    )


def apprise_send(url: str, title: str, body: str) -> bool:
    """Deliver one message to one apprise URL; False when the target refused or was unreachable."""
    import apprise

    # apprise logs delivery problems itself, sometimes with hosts or users in them; the caller
    # reports failures in its own words, with the URL masked.
    logging.getLogger("apprise").addHandler(logging.NullHandler())
    logging.getLogger("apprise").propagate = False
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False
    return bool(notifier.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT))


def send_digest(
    store: Store,
    settings: AlertSettings,
    *,
    site: str,
    run_id: int | None,
    now: datetime,
    sender: Sender = apprise_send,
) -> AlertOutcome:
    """Alert on a site's findings that are due (a no-op without [alerts] urls).

    Under the site's alert lock: a scan and a watcher of one site (the README's set-up) read the
    same findings as due, and both sent them when their digests met.
    """
    from ipguard.errors import LockHeld
    from ipguard.ledger.locks import ALERTS, scan_lock

    outcome = AlertOutcome()
    if not settings.urls:
        return outcome
    try:
        with scan_lock(store, site, wait=DEADLINE + 5, what=ALERTS):
            return _send_due(store, settings, site=site, run_id=run_id, now=now, sender=sender)
    except LockHeld as error:  # the other digest hung past its deadline: these go with the next
        outcome.failed.append(f"alerts wait for the next digest: {error}")
        return outcome


def _send_due(
    store: Store,
    settings: AlertSettings,
    *,
    site: str,
    run_id: int | None,
    now: datetime,
    sender: Sender,
) -> AlertOutcome:
    outcome = AlertOutcome()
    with store.session(write=False) as session:
        rows = due(findings.list_findings(session, site=site, live_only=True), settings, now)
    if not rows:
        return outcome
    title, body = digest(rows, site=site, run_id=run_id)
    results = _send_all(settings.urls, title, body, sender)
    for url, delivered in zip(settings.urls, results, strict=True):
        shown = mask_url(url)
        if delivered is True:
            outcome.delivered.append(shown)
        elif delivered is None:
            outcome.failed.append(
                f"alert to {shown} did not answer within {DEADLINE:g} s; the scan itself is "
                "unaffected"
            )
        else:
            reason = f" ({delivered})" if delivered else ""
            outcome.failed.append(f"alert to {shown}{reason} failed; the scan itself is unaffected")
    if outcome.delivered:
        # Sending happens outside any transaction: a slow target must not hold the ledger.
        with store.session() as session:
            findings.mark_alerted(session, rows)
        outcome.sent = [row.id for row in rows if row.id is not None]
    return outcome


def _send_all(
    urls: Sequence[str], title: str, body: str, sender: Sender
) -> list[bool | str | None]:
    """Send to every target at once; per target True (delivered), the exception's name or ""
    (failed), or None (still out after DEADLINE seconds)."""
    results: list[bool | str | None] = [None] * len(urls)

    def send(index: int, url: str) -> None:
        try:
            results[index] = True if sender(url, title, body) else ""
        except Exception as error:  # a plugin bug must not fail the scan either
            results[index] = type(error).__name__

    threads = [
        threading.Thread(target=send, args=(index, url), name="ipguard-alert", daemon=True)
        for index, url in enumerate(urls)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + DEADLINE
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    out = zip(threads, results, strict=True)
    return [None if thread.is_alive() else result for thread, result in out]
