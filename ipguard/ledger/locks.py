"""One scan per site at a time: a lock the operating system or the server drops if we die.

SQLite ledgers lock a file beside the database (flock); PostgreSQL ledgers take a session-level
advisory lock on a connection held for the run. Either way a SIGKILLed scan never leaves a stale
lock behind, and a sensor that vanishes from the network loses its lock within half a minute.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ipguard.errors import LedgerUnavailable, LockHeld
from ipguard.ledger import owners
from ipguard.ledger.store import Store

_POLL_SECONDS = 0.2


SCAN, ALERTS = "scan", "alerts"  # what a site's lock is for


def _key(site: str, what: str = SCAN) -> int:
    digest = hashlib.sha256(f"ipguard-{what}:{site}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def scan_lock(store: Store, site: str, *, wait: float = 0.0, what: str = SCAN) -> Iterator[None]:
    """Hold the scan lock of a site; wait up to `wait` seconds for it, else raise LockHeld.

    `what` ALERTS is another lock of the site: the one its alert digests are sent under, so that
    a scan and a watcher of one site never send the same findings at once.
    """
    deadline = time.monotonic() + max(wait, 0.0)
    holder = _sqlite_lock if store.dialect == "sqlite" else _advisory_lock
    with holder(store, site, deadline, what):
        yield


def _held(site: str, wait: float, what: str) -> LockHeld:
    if what == ALERTS:
        return LockHeld(f"another alert digest of site {site!r} is being sent")
    hint = "try again later or pass --wait SECONDS" if wait <= 0 else "it did not finish in time"
    return LockHeld(f"another scan of site {site!r} is running; {hint}")


def _not_yours(path: Path, error: OSError) -> str:
    """Why the lock file cannot be opened when it is someone else's."""
    import pwd

    try:
        owner = pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return (
            f"cannot open the scan lock {path}: {error.strerror}; the ledger's directory and "
            "file system must be writable"
        )
    return (
        f"cannot open the scan lock {path}: it belongs to {owner}, not to the user scanning "
        "(an ipguard run by hand as another user made it); remove it, or give it to the "
        "ledger's owner with chown"
    )


@contextmanager
def _sqlite_lock(store: Store, site: str, deadline: float, what: str) -> Iterator[None]:
    database = make_url(store.url).database or "ledger.db"
    name = hashlib.sha256(site.encode()).hexdigest()[:16]
    path = Path(f"{database}.{what}-{name}.lock")
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except PermissionError as error:
        raise LedgerUnavailable(_not_yours(path, error)) from None
    except OSError as error:
        raise LedgerUnavailable(
            f"cannot open the scan lock {path}: {error.strerror}; the ledger's directory and "
            "file system must be writable"
        ) from None
    owners.give_handle_to_owner_of(handle, Path(database))
    try:
        waited = deadline - time.monotonic()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _held(site, waited, what) from None
                time.sleep(_POLL_SECONDS)
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(handle)  # closing drops the flock


# How the server finds out that a sensor holding a site's lock is gone without a word (power
# loss, a kernel panic, a cable pulled): the lock lives as long as its connection, and with the
# system's TCP defaults the server keeps a silent peer's connection, refusing every scan of the
# site, for over two hours when the line was idle (keepalive) and some fifteen minutes when it
# still had bytes to deliver (retransmissions). Here an idle line is probed after 10 s of silence
# every 5 s, and any line gives up after 25 s without an acknowledgement (tcp_user_timeout,
# PostgreSQL 12 on: an older server keeps what it knows). A scan's lock connection is idle
# throughout, so the probes cost nothing; over a Unix socket the server ignores them.
_KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "25000",  # milliseconds
}


def _detect_silence(connection: sa.Connection) -> None:
    """Make the server drop this session's connection soon after the sensor goes silent."""
    known = connection.execute(
        sa.text("SELECT name FROM pg_settings WHERE name IN :names").bindparams(
            sa.bindparam("names", expanding=True)
        ),
        {"names": list(_KEEPALIVE)},
    ).scalars()
    for name in known:  # this session only
        connection.execute(sa.select(sa.func.set_config(name, _KEEPALIVE[name], False)))


@contextmanager
def _advisory_lock(store: Store, site: str, deadline: float, what: str) -> Iterator[None]:
    waited = deadline - time.monotonic()
    with store.unavailable_as_error(), store.engine.connect() as connection:
        _detect_silence(connection)
        key = _key(site, what)
        while True:
            got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar()
            connection.commit()
            if got:
                break
            if time.monotonic() >= deadline:
                raise _held(site, waited, what)
            time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            # A server that went away took the lock with it: a failed unlock must not replace
            # the error that says what happened to the run (and where its results are).
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                connection.commit()
