"""The spool: scan results the ledger could not take, kept on disk until a later run stores them.

A scan that has swept the network but cannot write to the ledger (disk full, file system gone
read-only, PostgreSQL down) keeps what it saw here, one JSON file per run, instead of losing it.
The next scan of the same site on the same ledger stores every pending file first, each as the
complete run it was, then removes it (ipguard.runner).

Where: `spool/<ledger key>/` under the user state directory (platformdirs, e.g.
~/.local/state/ipguard/spool/…), which usually lives on another file system than a full or
read-only ledger; if that cannot be written, `<ledger file>.spool/` beside a SQLite ledger. The
ledger key is a hash of the database URL without its password, so two ledgers never share files.

Standard library only (plus platformdirs for the directory): it must work when nothing else does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ipguard.model import (
    ArpEntry,
    DhcpOffer,
    Evidence,
    FdbEntry,
    LldpNeighbour,
    NameObservation,
    Observation,
    Phase,
    ProxyVerdict,
    ScanResult,
    ServiceObservation,
    SnmpPoll,
    SnmpSystem,
    Uncovered,
)

FORMAT = 1
_GROUPS: Mapping[str, type] = {
    "observations": Observation,
    "services": ServiceObservation,
    "dhcp_offers": DhcpOffer,
    "proxies": ProxyVerdict,
    "names": NameObservation,
    "evidence": Evidence,
    "uncovered": Uncovered,
}


@dataclass(frozen=True)
class SpooledRun:
    """One run's results waiting to be stored, with what is needed to record the run again."""

    run_id: int | None  # the run as the ledger started it (None: start a new one)
    site: str
    interface: str
    subnets: tuple[str, ...]
    settings: Mapping[str, Any]  # as the run recorded them (the request, fail_on)
    actor: str
    sensor: str
    version: str
    started_at: datetime
    finished_at: datetime
    failure: str  # why the ledger could not take it
    result: ScanResult
    path: Path | None = field(default=None, compare=False)

    def remove(self) -> None:
        """Forget the file once its run is stored."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class SpoolError(OSError):
    """No spool directory could be written."""


def directories(url: str) -> list[Path]:
    """Where a ledger's spool files go, in order of preference."""
    from platformdirs import user_state_dir

    found = [Path(user_state_dir("ipguard")) / "spool" / ledger_key(url)]
    ledger = sqlite_file(url)
    if ledger is not None:
        found.append(ledger.with_name(ledger.name + ".spool"))
    return found


def sqlite_file(url: str) -> Path | None:
    """The file a sqlite:/// URL names, as SQLAlchemy reads it (no query, %XX decoded), else None.

    `urls.resolve_url` writes a path's `%` and `?` as %25 and %3F, so that the URL names the file.
    """
    if not url.startswith("sqlite:///"):
        return None
    return Path(unquote(url.removeprefix("sqlite:///").partition("?")[0]))


def ledger_key(url: str) -> str:
    """A name for a ledger that never contains its password."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0] if "@" in parts.netloc else ""
    bare = urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, ""))
    return hashlib.sha256(bare.encode()).hexdigest()[:16]


def keep(url: str, run: SpooledRun) -> Path:
    """Write `run` to the first spool directory that takes it (atomically); SpoolError if none."""
    stamp = run.started_at.strftime("%Y%m%dT%H%M%S")
    name = f"run-{stamp}-{run.run_id or 0}-{secrets.token_hex(4)}.json"
    return write(url, name, _run_json(run))


def write(url: str, name: str, document: Mapping[str, Any]) -> Path:
    """Write a JSON document as `name` in the first spool directory of the ledger that takes it.

    Atomic (a reader never sees half a file) and synced; SpoolError when no directory takes it.
    `run-*.json` are scans' (see `pending`); other names belong to whoever wrote them.
    """
    data = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    problems = []
    for directory in directories(url):
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".spool-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, directory / name)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            return directory / name
        except OSError as error:
            problems.append(f"{directory}: {error.strerror or error}")
    raise SpoolError("; ".join(problems))


# What reading a spool file that is not one of ours (damaged, edited, another version's) raises.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError)


def pending(url: str, site: str) -> list[SpooledRun]:
    """The runs of `site` waiting in this ledger's spool, oldest first.

    A file that cannot be read is left where it is for a person to look at, never deleted (and
    never stops a scan: `unreadable` names it).
    """
    found = []
    for directory in directories(url):
        for path in _files(directory):
            try:
                run = _read(path)
            except UNREADABLE:
                continue
            if run.site == site:
                found.append(run)
    return sorted(found, key=lambda run: (run.started_at, run.run_id or 0))


def unreadable(url: str) -> list[tuple[Path, str]]:
    """The scans' spool files of this ledger that cannot be read, with why: a run nobody stores."""
    found = []
    for directory in directories(url):
        for path in _files(directory):
            try:
                _read(path)
            except UNREADABLE as error:
                reason = str(error) if isinstance(error, OSError | ValueError) else "not a run"
                found.append((path, reason))
    return found


def _read(path: Path) -> SpooledRun:
    data = json.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return _run_from_json(data, path)


def _files(directory: Path) -> Iterator[Path]:
    try:
        yield from sorted(directory.glob("run-*.json"))
    except OSError:
        return


# --- JSON ----------------------------------------------------------------------------------------


def _run_json(run: SpooledRun) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "run_id": run.run_id,
        "site": run.site,
        "interface": run.interface,
        "subnets": list(run.subnets),
        "settings": dict(run.settings),
        "actor": run.actor,
        "sensor": run.sensor,
        "version": run.version,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
        "failure": run.failure,
        "result": result_json(run.result),
    }


def _run_from_json(data: dict[str, Any], path: Path) -> SpooledRun:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown spool format {data.get('format')!r}")
    return SpooledRun(
        run_id=data["run_id"],
        site=data["site"],
        interface=data["interface"],
        subnets=tuple(data["subnets"]),
        settings=data["settings"],
        actor=data["actor"],
        sensor=data["sensor"],
        version=data["version"],
        started_at=datetime.fromisoformat(data["started_at"]),
        finished_at=datetime.fromisoformat(data["finished_at"]),
        failure=data["failure"],
        result=result_from_json(data["result"]),
        path=path,
    )


def result_json(result: ScanResult) -> dict[str, Any]:
    """A ScanResult as plain JSON values (datetimes ISO 8601, sets and tuples as lists)."""
    return {item.name: _plain(getattr(result, item.name)) for item in dataclasses.fields(result)}


def result_from_json(data: Mapping[str, Any]) -> ScanResult:
    """The inverse of `result_json`; keys it does not know (a newer ipguard's) are left out."""
    hints = typing.get_type_hints(ScanResult)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(ScanResult):
        if item.name not in data:
            continue
        value = data[item.name]
        if item.name in _GROUPS:
            values[item.name] = tuple(_item(_GROUPS[item.name], one) for one in value)
        elif item.name == "snmp":
            values[item.name] = tuple(_snmp_poll(one) for one in value)
        elif item.name == "phases":
            values[item.name] = frozenset(Phase(name) for name in value)
        elif typing.get_origin(hints[item.name]) is frozenset:
            values[item.name] = frozenset(value)
        else:
            values[item.name] = value
    return ScanResult(**values)


def _snmp_poll(data: Mapping[str, Any]) -> SnmpPoll:
    values = dict(data)
    values["system"] = SnmpSystem(**data.get("system", {}))
    for name, kind in (("arp", ArpEntry), ("fdb", FdbEntry), ("lldp", LldpNeighbour)):
        values[name] = tuple(kind(**one) for one in data.get(name, ()))
    values["roles"] = tuple(data.get("roles", ()))
    values["unread_vlans"] = tuple(data.get("unread_vlans", ()))
    return SnmpPoll(**values)


def _item(kind: type, data: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(kind):
        if item.name not in data:
            continue
        value = data[item.name]
        hint = str(hints[item.name])
        if isinstance(value, str) and "datetime" in hint:
            value = datetime.fromisoformat(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[item.name] = value
    return kind(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(_plain(part) for part in value)
    if isinstance(value, tuple | list):
        return [_plain(part) for part in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(part) for key, part in value.items()}
    return value
