"""Inserting many rows at once (imports, their audit rows): the driver's executemany, chunked.

SQLAlchemy's Core executemany spends longer per row preparing its parameters (a compiled-parameter
dictionary per row, every column's bind processor looked up and called through it) than SQLite
takes to store the row. `insert_many` compiles the INSERT once, looks each column's bind processor
up once, and hands the driver ready parameter sets a chunk at a time: the same SQL and the same
stored values as `connection.execute(table.insert(), rows)`, in the caller's transaction, with the
memory of one chunk instead of every row's parameters at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import chain, islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

CHUNK = 5_000  # rows per executemany


def insert_many(session: Session, table: sa.Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """INSERT every row (each with the keys of the first) into `table`; returns how many."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    keys = list(first)
    compiled = table.insert().compile(dialect=dialect, column_keys=keys)
    names = list(compiled.positiontup or ()) if compiled.positional else keys
    processors: list[tuple[str, Callable[[Any], Any] | None]] = []
    for name in names:
        column_type = table.c[name].type
        process: Callable[[Any], Any] | None
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and _holds_times(column_type):
            process = _once_per_time(process)
        processors.append((name, process))

    def prepared(row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = [row[key] if process is None else process(row[key]) for key, process in processors]
        return tuple(values) if compiled.positional else dict(zip(names, values, strict=True))

    count = 0
    remaining = chain([first], iterator)
    while chunk := [prepared(row) for row in islice(remaining, CHUNK)]:
        connection.exec_driver_sql(compiled.string, chunk)
        count += len(chunk)
    return count


def _holds_times(column_type: sa.types.TypeEngine[Any]) -> bool:
    stored = column_type.impl_instance if isinstance(column_type, sa.TypeDecorator) else column_type
    return isinstance(stored, sa.DateTime)


def _once_per_time(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, run once for a run of equal times: the rows of one import share its timestamp."""
    last: list[Any] = [None, None]

    def cached(value: Any) -> Any:
        if value.__class__ is datetime and value == last[0]:
            return last[1]
        processed = process(value)
        last[:] = value, processed
        return processed

    return cached
