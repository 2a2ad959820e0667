"""What a run saw, packed: one compressed document per run and kind of record, not a row per host.

A row per observation cost about 160 bytes on SQLite and 200 on PostgreSQL (a row header, a
surrogate id, the run id repeated, an IP and a MAC as text, a timestamp, the vendor's name again for
every host of that vendor, and an index entry); a campus of 5,000 hosts scanned every 15 minutes
filled 37 GB a year. Nothing reads history by IP or MAC inside a run: a run's records are written
at once and read back at once (`runs show`, `diff`, the service baseline, sightings), so they are
kept as one document per (run, kind): the records' fields in columns, each string column as a
table of its distinct values plus an index per record, timestamps as microseconds from the one
before, JSON, then zlib. A 5,000-host run's observations take about 15 bytes each.

Every field comes back exactly as it was stored (floats by their shortest repr, enumerations by
value, times to the microsecond, in UTC), in the order the records were given.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

FORMAT = 1  # the document's "v"; a reader refuses a format it does not know
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LEVEL = 6  # zlib's default: level 9 saved under 2 % more and took twice as long
# zlib's preset dictionary: what every document of format 1 spells, so that a watcher's batch of
# one observation takes about 60 bytes instead of 135. Part of the format: never change it.
_PRESET = (
    b'"banner":"detail":"relays":"method":"points_to":"kind":"name":"server_ip":"server_mac":'
    b'"offered_ip":"router":"dns":"proto":"port":"service":"product":"version":"replies":"ttl":'
    b'"rtt_ms":"vendor":{"x":[null,{"t":[{"s":[null,"i":[0,0,0,0,"arp","icmp","ndp","tcp","mdns",'
    b'"netbios","dns","dhcp",{"v":1,"n":1,"c":{"ip":{"s":["198.18.0.1"],"i":[0]},"mac":{"s":["02:00'
    b':00:00:00:01"],"i":[0]},"source":{"s":["arp"],"i":[0]},"seen_at":{"t":[1700000000000000]},'
)


class Unreadable(ValueError):
    """A packed document that cannot be read back: damaged, truncated, or of another format."""


def pack(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> bytes:
    """The records (each a mapping holding every one of `fields`) as one compressed document."""
    columns: dict[str, Any] = {}
    for name in fields:
        columns[name] = _column([record[name] for record in records])
    document = {"v": FORMAT, "n": len(records), "c": columns}
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    packer = zlib.compressobj(_LEVEL, zdict=_PRESET)
    return packer.compress(text.encode("utf-8", "surrogatepass")) + packer.flush()


def unpack(data: bytes, fields: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The records of a packed document, as mappings of field name to value, in stored order
    (only `fields` of each, when given)."""
    return as_records(unpack_columns(data, fields))


def as_records(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Columns (as `unpack_columns` gives them) as records, mappings of field name to value."""
    count = len(next(iter(columns.values()), []))
    return [{name: values[n] for name, values in columns.items()} for n in range(count)]


def unpack_columns(data: bytes, fields: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """The fields of a packed document (only `fields`, when given), each as the list of its
    values in stored order: what a reader of a field or two of every record wants."""
    try:
        unpacker = zlib.decompressobj(zdict=_PRESET)
        text = unpacker.decompress(bytes(data)) + unpacker.flush()
        document = json.loads(text.decode("utf-8", "surrogatepass"))
        version = document.get("v")
        if version != FORMAT:
            raise Unreadable(f"packed history of format {version!r}: this ipguard reads {FORMAT}")
        count = document["n"]
        wanted = set(document["c"] if fields is None else fields)
        columns = {
            name: _values(column) for name, column in document["c"].items() if name in wanted
        }
    except Unreadable:
        raise
    # A damaged row fails anywhere from inflating to indexing a string table: one error for all.
    except (zlib.error, ValueError, LookupError, TypeError, AttributeError) as error:
        said = error if isinstance(error, zlib.error) else f"{type(error).__name__}: {error}"
        raise Unreadable(f"damaged packed history ({said})") from None
    if any(len(values) != count for values in columns.values()) or wanted - set(columns):
        raise Unreadable("damaged packed history (a column is missing or of the wrong length)")
    return columns


def _column(values: list[Any]) -> Any:
    """One field of every record: times as deltas, repeated strings as a table and indexes.

    A field holds one type in every record, or None: its first value says which.
    """
    first = next((value for value in values if value is not None), None)
    if isinstance(first, datetime):
        previous, deltas = 0, list[int | None]()
        for value in values:
            if value is None:
                deltas.append(None)
                continue
            micros = (value - _EPOCH) // _MICROSECOND
            deltas.append(micros - previous)
            previous = micros
        return {"t": deltas}
    if isinstance(first, enum.Enum):
        values = [getattr(value, "value", value) for value in values]
    elif isinstance(first, tuple):
        values = [None if value is None else list(value) for value in values]
    if values and all(type(value) is str or value is None for value in values):
        table: dict[str | None, int] = {}
        indexes = [table.setdefault(value, len(table)) for value in values]
        if len(table) < len(values):
            return {"s": list(table), "i": indexes}
    return {"x": values}


def _values(column: Mapping[str, Any]) -> list[Any]:
    """A column back as its values."""
    if "t" in column:
        previous, values = 0, list[datetime | None]()
        for delta in column["t"]:
            if delta is None:
                values.append(None)
                continue
            previous += delta
            values.append(_EPOCH + previous * _MICROSECOND)
        return values
    if "s" in column:
        table = column["s"]
        return [table[index] for index in column["i"]]
    return list(column["x"])


def first_time(records: Iterable[Mapping[str, Any]], field: str) -> datetime | None:
    """The earliest time among the records' `field` (None when none has one)."""
    times = [record[field] for record in records if record.get(field) is not None]
    return min(times) if times else None
