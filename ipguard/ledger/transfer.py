"""Moving a whole ledger to another database: `ipguard ledger migrate --to URL`.

A network that outgrows one machine moves its SQLite ledger to PostgreSQL with its whole history:
devices, pools, the audit trail, every scan run with what it saw, and the findings. Ids and
timestamps are kept, so finding evidence that names run ids and `runs show ID` still agree.

    source read in one snapshot          (SQLite: one read transaction; PostgreSQL: repeatable read)
    target written in one transaction:
        lock every table, refuse if any holds a row
        copy table by table, parents before children, in batches
        move PostgreSQL's id sequences past the copied ids
        compare row counts and highest ids with the source
    commit: all of it, or (on any error) nothing

The target's schema is created by the same alembic migrations as any ledger, when `Store` opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import SQLModel

from ipguard.errors import Conflict, InvalidValue, LedgerUnavailable
from ipguard.ledger import scan_tables, tables
from ipguard.ledger.store import Store

BATCH = 5_000
# table, rows copied so far, rows to copy
Progress = Callable[[str, int, int], None]

# Importing the table modules registers every table with SQLModel's metadata.
_MODULES = (tables, scan_tables)


@dataclass(frozen=True)
class TableCopy:
    """One table as copied: how many rows, and the highest id among them."""

    name: str
    rows: int
    max_id: int | None


@dataclass(frozen=True)
class Transfer:
    """What a migration copied, table by table (URLs with the password masked)."""

    source: str
    target: str
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        """Rows copied in all."""
        return sum(table.rows for table in self.tables)


def ledger_tables() -> list[sa.Table]:
    """Every ledger table, parents before the tables whose rows point at them."""
    return list(SQLModel.metadata.sorted_tables)


def copy_ledger(source: Store, target: Store, *, progress: Progress | None = None) -> Transfer:
    """Copy every row of `source` into the empty `target`, in one transaction on the target."""
    if source.url == target.url:
        raise InvalidValue(f"--to {target.shown_url} is the ledger itself; give another database")
    order = ledger_tables()
    with source.unavailable_as_error(), _snapshot(source) as reading:
        _check_schema(reading, order, source.shown_url)
        expected = [_measure(reading, table) for table in order]
        with target.unavailable_as_error(), _writer(target) as writing:
            _check_schema(writing, order, target.shown_url)
            _lock_and_refuse_data(writing, order, target)
            for table, wanted in zip(order, expected, strict=True):
                try:
                    _copy_table(reading, writing, table, wanted.rows, progress)
                except sa.exc.DBAPIError as error:
                    # e.g. text with a NUL byte: SQLite keeps it, PostgreSQL refuses it.
                    reason = str(error.orig).splitlines()[0] if error.orig else type(error).__name__
                    raise LedgerUnavailable(
                        f"cannot copy table {table.name} into {target.shown_url}: {reason}; "
                        "nothing was committed"
                    ) from None
            if writing.dialect.name == "postgresql":
                _advance_sequences(writing, order)
            copied = [_measure(writing, table) for table in order]
            if copied != expected:
                wrong = [
                    f"{got.name}: {got.rows} rows, highest id {got.max_id}"
                    for got, want in zip(copied, expected, strict=True)
                    if got != want
                ]
                raise LedgerUnavailable(
                    f"the copy into {target.shown_url} does not match the source "
                    f"({', '.join(wrong)}); nothing was committed"
                )
    return Transfer(source.shown_url, target.shown_url, tuple(expected))


@contextmanager
def _snapshot(store: Store) -> Iterator[sa.Connection]:
    """A read-only connection that sees the source as of one moment, whatever scans write."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        # SQLite: the deferred BEGIN's first read fixes the WAL snapshot for the transaction.
        with connection.begin() as transaction:
            yield connection
            transaction.rollback()


@contextmanager
def _writer(store: Store) -> Iterator[sa.Connection]:
    """The target's one transaction: committed when the block ends, rolled back on any error."""
    # BEGIN IMMEDIATE on SQLite: nobody else writes to the target until the copy is done.
    connection = store.engine.connect().execution_options(sqlite_immediate=True)
    with connection, connection.begin():
        yield connection


def _check_schema(connection: sa.Connection, order: Sequence[sa.Table], shown: str) -> None:
    """Both ledgers are at this version's schema: no table or column the copy would miss."""
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names()) - {"alembic_version"}
    known = {table.name for table in order}
    unknown = ", ".join(sorted(present - known))
    if unknown:
        raise InvalidValue(
            f"{shown} holds tables this ipguard does not know ({unknown}); "
            "upgrade ipguard before migrating"
        )
    for table in order:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        if columns != set(table.columns.keys()):
            raise InvalidValue(
                f"{shown}: table {table.name} does not have this ipguard's columns; "
                "upgrade ipguard before migrating"
            )


def _measure(connection: sa.Connection, table: sa.Table) -> TableCopy:
    rows, max_id = connection.execute(
        sa.select(sa.func.count(), sa.func.max(table.c.id)).select_from(table)
    ).one()
    return TableCopy(table.name, int(rows), None if max_id is None else int(max_id))


def _lock_and_refuse_data(
    connection: sa.Connection, order: Sequence[sa.Table], target: Store
) -> None:
    """Keep writers out of the target until the copy commits, and refuse one that holds data."""
    if connection.dialect.name == "postgresql":
        names = ", ".join(connection.dialect.identifier_preparer.quote(t.name) for t in order)
        connection.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    held = [_measure(connection, table) for table in order]
    filled = [f"{table.name}: {table.rows} rows" for table in held if table.rows]
    if filled:
        raise Conflict(
            f"{target.shown_url} already holds data ({', '.join(filled)}); "
            "migrate only into an empty database"
        )


def _copy_table(
    reading: sa.Connection,
    writing: sa.Connection,
    table: sa.Table,
    total: int,
    progress: Progress | None,
) -> None:
    """Rows in id order, in batches: memory stays flat however long the history is."""
    done = 0
    if progress is not None:
        progress(table.name, done, total)
    result = reading.execution_options(yield_per=BATCH).execute(
        sa.select(table).order_by(table.c.id)
    )
    for batch in result.mappings().partitions(BATCH):
        writing.execute(table.insert(), [dict(row) for row in batch])
        done += len(batch)
        if progress is not None:
            progress(table.name, done, total)


def _advance_sequences(connection: sa.Connection, order: Sequence[sa.Table]) -> None:
    """Rows came with their ids, so the id sequences never moved: set them past the highest."""
    for table in order:
        highest = sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)).scalar_subquery()
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        connection.execute(sa.select(sa.func.setval(sequence, highest + 1, sa.false())))
