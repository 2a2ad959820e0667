"""Where the ledger lives: the engine for a URL, migrations on first use, transactions.

SQLite (the default) and PostgreSQL behave the same from here up: one transaction per unit of
work, committed whole or not at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from ipguard.errors import InputError, LedgerUnavailable
from ipguard.ledger import owners
from ipguard.ledger.urls import display_url

# The newest migration. A test checks it against alembic's head, so that opening a current
# ledger never needs to import alembic (half a second at every start).
SCHEMA_HEAD = "0008"
_MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 30_000


class Store:
    """An open ledger database, migrated to the current schema.

    `wait`: seconds to wait for another writer's lock (SQLite's busy timeout); `timeout`: seconds
    a silent PostgreSQL server may hold a connection attempt or a sent query (None: libpq's).
    """

    def __init__(
        self, url: str, *, wait: float | None = None, timeout: float | None = None
    ) -> None:
        self.url = url
        self.shown_url = display_url(url)
        try:
            parsed = make_url(url)
        except Exception:
            raise InputError(f"database URL {self.shown_url} is not valid") from None
        self.dialect = parsed.get_backend_name()
        if url.partition("://")[2].partition("/")[0].count("@") > 1:
            raise InputError(
                f"database URL {self.shown_url}: the user name or password holds a raw '@'; "
                "write it as %40"
            )
        if self.dialect not in ("sqlite", "postgresql"):
            raise InputError(
                f"database URL {self.shown_url}: {self.dialect!r} is not supported; "
                "use a SQLite file (sqlite:///PATH or a path) or postgresql://"
            )
        _check_query(parsed.query, self.shown_url)
        new_file: Path | None = None
        if self.dialect == "sqlite":
            self._prepare_sqlite_path(parsed.database)
            new_file = None if Path(str(parsed.database)).exists() else Path(str(parsed.database))
            busy = SQLITE_BUSY_MS / 1000 if wait is None else wait
            self.engine = sa.create_engine(
                parsed, connect_args={"timeout": busy}, poolclass=sa.NullPool
            )
            _tune_sqlite(self.engine, busy)
        else:
            try:
                self.engine = sa.create_engine(
                    parsed, pool_pre_ping=True, connect_args=_network_bounds(timeout)
                )
            except Exception as error:
                raise LedgerUnavailable(
                    f"cannot use database {self.shown_url}: {type(error).__name__}"
                ) from None
        self._migrate()
        if new_file is not None:
            owners.give_to_directory_owner(new_file)

    def _prepare_sqlite_path(self, database: str | None) -> None:
        if not database or database == ":memory:":
            raise InputError("the ledger must be a file: give --db PATH or a sqlite:/// URL")
        if Path(database).is_dir():
            raise InputError(f"the ledger {database} is a directory; give a file inside it")
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LedgerUnavailable(
                f"cannot create the ledger directory for {database}: {error.strerror}"
            ) from None

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_HEAD; a no-op (without alembic) when it already is."""
        with self.unavailable_as_error():
            try:
                connection = self.engine.connect()
            except (sa.exc.ProgrammingError, sa.exc.InterfaceError) as error:
                # The driver refused what the URL asks for (an unknown option, say): bad input.
                reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
                raise InputError(
                    f"database URL {self.shown_url} is not valid: "
                    f"{_without_secrets(reason, self.url)}"
                ) from None
            with connection:
                if _current_revision(connection) == SCHEMA_HEAD:
                    return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            with self.engine.connect().execution_options(sqlite_immediate=True) as connection:
                if self.dialect == "postgresql":
                    # Two sensors starting at once on a fresh database: one migrates, one waits.
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(7262737)"))
                self._refuse_foreign(connection, config)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()

    def _refuse_foreign(self, connection: sa.Connection, config: Any) -> None:
        """Migrate only an empty database or an ipguard ledger whose revision this ipguard knows.

        Another program's database (a mistyped --db) must not get ipguard's tables added to it,
        and a ledger that a newer ipguard migrated cannot be read by this one.
        """
        from alembic.script import ScriptDirectory

        revision = _current_revision(connection)
        if revision is None:
            tables = sorted(set(sa.inspect(connection).get_table_names()) - {"alembic_version"})
            if tables:
                more = ", …" if len(tables) > 5 else ""
                raise InputError(
                    f"{self.shown_url} is not an ipguard ledger: it holds other tables "
                    f"({', '.join(tables[:5])}{more}) and ipguard will not add its own; "
                    "give the ledger's path, or a new file or an empty database"
                )
            return
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        if revision not in known:
            from ipguard import __version__

            raise LedgerUnavailable(
                f"ledger {self.shown_url} has schema revision {revision!r}, which ipguard "
                f"{__version__} does not know (its newest is {SCHEMA_HEAD}): a newer ipguard "
                "made it; upgrade ipguard to use it"
            )

    @contextmanager
    def unavailable_as_error(self) -> Iterator[None]:
        """Turn driver-level failures into LedgerUnavailable naming the (masked) URL."""
        try:
            yield
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.DataError) as error:
            if getattr(error.orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
                reason = str(error.orig).splitlines()[0]
                raise LedgerUnavailable(
                    f"ledger {self.shown_url} refuses its user: {reason}; connect as the "
                    "database's owner, or grant the user its rights (CREATE and USAGE on the "
                    "schema, all on ipguard's tables and sequences)"
                ) from None
            raise  # the statement was wrong, not the database: a bug or a rule, shown as such
        except sa.exc.DBAPIError as error:
            reason = str(error.orig).splitlines()[0] if error.orig else "cannot connect"
            raise LedgerUnavailable(
                f"ledger {self.shown_url} is unavailable: {_without_secrets(reason, self.url)}; "
                f"{_hint(reason)}"
            ) from None

    @contextmanager
    def session(self, *, write: bool = True, wait: float | None = None) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on any error.

        Writers take SQLite's write lock up front so that concurrent writers queue on the busy
        timeout instead of failing half-way. `wait`: at most this many seconds for another
        writer's lock, instead of the store's (LedgerUnavailable after), for a caller that has
        better to do than wait (the watcher, which must go on listening).
        """
        with self.unavailable_as_error():
            connection = self.engine.connect().execution_options(
                sqlite_immediate=write, lock_wait=wait
            )
            try:
                with Session(bind=connection, expire_on_commit=False) as session:
                    if wait is not None and self.dialect == "postgresql":
                        milliseconds = max(1, int(wait * 1000))
                        session.execute(sa.text(f"SET LOCAL lock_timeout = {milliseconds}"))
                    try:
                        yield session
                        session.commit()
                    except BaseException:
                        session.rollback()
                        raise
            finally:
                connection.close()

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()


def _network_bounds(timeout: float | None) -> dict[str, int]:
    """libpq options bounding how long a silent PostgreSQL server (its host off, a partition) can
    hold a call: connecting, data left unacknowledged, an idle connection. None: libpq's own
    (no connect timeout; minutes of TCP retransmissions)."""
    if timeout is None:
        return {}
    seconds = max(2, math.ceil(timeout))  # libpq takes whole seconds, at least 2
    return {
        "connect_timeout": seconds,
        "tcp_user_timeout": int(timeout * 1000),
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 2,
    }


def _hint(reason: str) -> str:
    """What to do about a driver's complaint."""
    lowered = reason.lower()
    if "full" in lowered or "disk i/o" in lowered or "no space" in lowered:
        return "free space on the ledger's file system, then scan again"
    if "locked" in lowered:
        return (
            "another process (an import, a scan) holds the ledger's write lock; "
            "retry when it is done, or wait longer with --wait SECONDS"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return "make the ledger file, its directory and file system writable"
    return "check the path or server and its permissions"


def _without_secrets(text: str, url: str) -> str:
    """A driver message with the URL's password (and the URL itself) masked, should it hold them."""
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text.replace(url, display_url(url))


# PostgreSQL's SQLSTATE for "permission denied": a role without rights on the schema or tables
# (since PostgreSQL 15 only the owner may create tables in `public`) is the server's setup.
_INSUFFICIENT_PRIVILEGE = "42501"

# libpq's sslmode values: another is a typo in the URL (bad input), not an unreachable server.
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def _check_query(query: Any, shown: str) -> None:
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        raise InputError(
            f"database URL {shown}: sslmode={sslmode!r} is not one of "
            + ", ".join(sorted(_SSLMODES))
        )


def _current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _switch_to_wal(cursor: Any, busy: float) -> None:
    """`PRAGMA journal_mode=WAL`, waiting (as the busy timeout would) while another opens the file.

    Switching a new ledger file to WAL needs it alone for a moment, and SQLite refuses at once,
    without its busy handler, when another process is doing the same: several sensors or cron jobs
    opening a fresh ledger together would fail with "database is locked".
    """
    import sqlite3

    deadline = time.monotonic() + busy
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _tune_sqlite(engine: sa.Engine, busy: float) -> None:
    """WAL for concurrent readers, a busy timeout for concurrent writers, real transactions."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (transactional DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        _switch_to_wal(cursor, busy)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        wait = options.get("lock_wait")
        # Set on each connection (NullPool: a connection serves one session).
        milliseconds = int((busy if wait is None else wait) * 1000)
        connection.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}")
        connection.exec_driver_sql(
            "BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN"
        )
