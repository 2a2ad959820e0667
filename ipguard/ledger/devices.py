"""Registered devices: look up, add, edit and retire bindings, each change audited.

Changes read a record and write it back. So that concurrent changes (many sensors and
administrators on one PostgreSQL ledger) never lose one another's updates, the record being changed
is read with `SELECT … FOR UPDATE`: a second change of it waits, then reads what the first wrote.
SQLite needs no row lock: `Store.session` takes the database's write lock before the first read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ipguard.addresses import ip_sort_key
from ipguard.errors import Conflict, InvalidValue, NotFound
from ipguard.fields import (
    FieldError,
    binding_from_fields,
    binding_to_fields,
    parse_ip,
    parse_mac,
    parse_status,
)
from ipguard.ledger import audit
from ipguard.ledger.tables import Device, binding_of, device_values, utcnow
from ipguard.model import Binding, DeviceStatus


def parse_key(key: str) -> tuple[str, str]:
    """('ip', canonical) or ('mac', canonical) for a record key given on the command line.

    A link-local address may carry its zone (`fe80::1%eth0`, as `ping` and `ip -6 neigh` give
    it): a lookup drops it. An address that is no device's (`::`, `::ffff:10.0.0.1`, a zone on a
    global address) is refused with its reason, not as "neither an IP nor a MAC".
    """
    try:
        return "ip", parse_ip(_unzoned(key))
    except FieldError as error:
        refused = error.reason
    try:
        return "mac", parse_mac(key)
    except FieldError:
        pass
    try:
        ipaddress.ip_address(key.strip())  # an address, only not a device's: say why
    except ValueError:
        raise InvalidValue(f"{key!r} is neither an IP nor a MAC address") from None
    raise InvalidValue(f"{key!r}: {refused}")


def _unzoned(key: str) -> str:
    """A link-local IPv6 address without its zone index; anything else as it is."""
    address, _, zone = key.strip().partition("%")
    try:
        bare = ipaddress.IPv6Address(address)
    except ValueError:
        return key
    return address if zone and bare.is_link_local else key


def find(session: Session, key: str, *, lock: bool = False) -> list[Device]:
    """Every record (any status) with that IP, static IPv6 or MAC (its own or one of its
    `alt_macs`), active ones first.

    `lock` holds the records until the transaction ends (PostgreSQL; SQLite ignores it).
    """
    kind, value = parse_key(key)
    if kind == "ip":
        return _holding(session, value, lock=lock)
    # The list column is searched as text, then each match checked exactly.
    where = sa.or_(col(Device.mac) == value, col(Device.alt_macs).contains(value, autoescape=True))
    query = select(Device).where(where).order_by(col(Device.id))
    if lock:
        query = query.with_for_update()
    found = [device for device in session.exec(query) if value in device.to_binding().macs]
    return sorted(found, key=lambda device: device.status != DeviceStatus.ACTIVE)


def _holding(
    session: Session, ip: str, *, lock: bool = False, active: bool = False
) -> list[Device]:
    """The records whose IP, or one of whose static IPv6 addresses, is `ip` (canonical)."""
    where = col(Device.ip) == ip
    if ":" in ip:  # the list column is searched as text, then each match checked exactly
        where = sa.or_(where, col(Device.ipv6).contains(ip, autoescape=True))
    query = select(Device).where(where).order_by(col(Device.id))
    if active:
        query = query.where(Device.status == DeviceStatus.ACTIVE.value)
    if lock:
        query = query.with_for_update()
    found = [
        device for device in session.exec(query) if device.ip == ip or ip in device.ipv6.split(";")
    ]
    return sorted(found, key=lambda device: device.status != DeviceStatus.ACTIVE)


def get_active(session: Session, key: str, *, lock: bool = False) -> Device:
    """The one active record for an IP, or for a MAC that holds exactly one active IP."""
    kind, value = parse_key(key)
    found = find(session, value, lock=lock)
    active = [device for device in found if device.status == DeviceStatus.ACTIVE]
    if not active:
        raise NotFound(f"no active ledger record for {kind.upper()} {value}")
    if len(active) > 1:
        ips = ", ".join(device.ip for device in active)
        raise Conflict(f"MAC {value} holds {len(active)} active records ({ips}); name the IP")
    return active[0]


def active_at(session: Session, ip: str) -> Device | None:
    """The active record holding an IP, if any."""
    query = select(Device).where(Device.ip == ip, Device.status == DeviceStatus.ACTIVE.value)
    return session.exec(query).first()


def list_devices(
    session: Session,
    *,
    status: str | None = None,
    department: str | None = None,
    site: str | None = None,
) -> list[Device]:
    """Records ordered by IP (numerically within each family), optionally filtered.

    `site` keeps the records valid at that site: those scoped to it and those for every site.
    """
    query = select(Device)
    if status is not None:
        try:
            wanted = parse_status(status)
        except FieldError as error:
            raise InvalidValue(f"--status {status!r}: {error.reason}") from None
        query = query.where(Device.status == wanted.value)
    if site is not None:
        query = query.where(col(Device.site).in_(("", site)))
    found: Iterable[Device] = session.exec(query)
    if department and department.strip():
        # "math" finds the records typed "Math" or "math " too: one department, however written
        # (compared here, as SQLite's lower() knows no letters beyond ASCII).
        wanted_department = department.strip().casefold()
        found = [device for device in found if device.department.casefold() == wanted_department]
    return sorted(found, key=lambda device: ip_sort_key(device.ip))


class Stored(NamedTuple):
    """A record as a plain binding, with when it was registered and last changed."""

    binding: Binding
    created_at: datetime
    updated_at: datetime


def stored_binding(row: sa.Row[Any]) -> Binding:
    """The binding a plain device row holds (its columns read through the row's mapping)."""
    return binding_of(row._mapping)


def stored(session: Session) -> list[Stored]:
    """Every record, ordered by IP, read as plain rows rather than ORM objects.

    For the readers of the whole ledger (a scan's policies, exports): 100,000 records load in a
    fraction of the time and memory ORM objects take, and none of them changes a record.
    """
    table = Device.__table__  # type: ignore[attr-defined]
    records = [
        Stored(stored_binding(row), row.created_at, row.updated_at)
        for row in session.execute(sa.select(table))
    ]
    records.sort(key=lambda record: ip_sort_key(record.binding.ip))
    return records


def snapshot(session: Session) -> list[Binding]:
    """Every record as plain bindings, ordered by IP, for policies and exports."""
    return [record.binding for record in stored(session)]


def add(session: Session, binding: Binding, *, actor: str) -> Device:
    """Register a new binding; an active IP may be registered only once."""
    if binding.status == DeviceStatus.ACTIVE:
        _refuse_taken_ip(session, binding.ip, keep=None)
        _refuse_taken_ipv6(session, binding, keep=None)
    now = utcnow()
    device = Device(**device_values(binding), created_at=now, updated_at=now)
    session.add(device)
    audit.record(
        session,
        actor=actor,
        action="device.add",
        entity="device",
        key=binding.ip,
        alt_key=binding.mac,
        after=binding_to_fields(binding),
        at=now,
    )
    _flush(session, binding.ip)
    return device


def _editable(session: Session, key: str) -> Device:
    """The active record for the key or, when none is active, its one suspended record.

    A suspended device comes back by `edit --status active`; retired records stay history.
    """
    try:
        return get_active(session, key, lock=True)
    except NotFound:
        suspended = [
            device
            for device in find(session, key, lock=True)
            if device.status == DeviceStatus.SUSPENDED
        ]
        if len(suspended) != 1:
            raise
        return suspended[0]


def edit(session: Session, key: str, changes: Mapping[str, str], *, actor: str) -> Device:
    """Change fields (given as text, validated like an import row) of the active record.

    A record with no active one beside it may be edited while it is suspended.
    """
    device = _editable(session, key)
    before = binding_to_fields(device.to_binding())
    merged = {**before, **changes}
    try:
        updated = binding_from_fields(merged)
    except FieldError as error:
        hint = ""
        if error.field == "alt_macs" and "alt_macs" not in changes and error.value != before["mac"]:
            # --mac given one of the record's other MACs (a failover twin kept for good): a swap.
            others = [
                before["mac"],
                *(m for m in before["alt_macs"].split(";") if m != error.value),
            ]
            hint = f"; to swap them, give --mac {error.value} --alt-macs '{';'.join(others)}'"
        raise InvalidValue(f"{error.field} {error.value!r}: {error.reason}{hint}") from None
    after = binding_to_fields(updated)
    if after == before:
        return device
    coming_back = device.status != DeviceStatus.ACTIVE
    if updated.status == DeviceStatus.ACTIVE and (updated.ip != device.ip or coming_back):
        _refuse_taken_ip(session, updated.ip, keep=device.id)
    if updated.status == DeviceStatus.ACTIVE:
        _refuse_taken_ipv6(session, updated, keep=device.id)
    now = utcnow()
    for name, value in device_values(updated).items():
        setattr(device, name, value)
    device.updated_at = now
    session.add(device)
    audit.record(
        session,
        actor=actor,
        action="device.edit",
        entity="device",
        key=updated.ip,
        alt_key=updated.mac,
        before=before,
        after=after,
        at=now,
    )
    if before["ip"] != after["ip"] or before["mac"] != after["mac"]:
        # So that `history OLD_IP` also finds the record's move away from it.
        audit.record(
            session,
            actor=actor,
            action="device.edit",
            entity="device",
            key=before["ip"],
            alt_key=before["mac"],
            before=before,
            after=after,
            at=now,
        )
    _flush(session, updated.ip)
    return device


def remove(session: Session, key: str, *, actor: str, purge: bool = False) -> Device:
    """Retire the active (else the suspended) record; `purge` deletes it, the audit keeps a copy."""
    device = _editable(session, key)
    before = binding_to_fields(device.to_binding())
    now = utcnow()
    if purge:
        session.delete(device)
        after = None
    else:
        device.status = DeviceStatus.RETIRED.value
        device.updated_at = now
        session.add(device)
        after = {**before, "status": DeviceStatus.RETIRED.value}
    audit.record(
        session,
        actor=actor,
        action="device.purge" if purge else "device.retire",
        entity="device",
        key=device.ip,
        alt_key=device.mac,
        before=before,
        after=after,
        at=now,
    )
    session.flush()
    return device


def _refuse_taken_ip(session: Session, ip: str, *, keep: int | None) -> None:
    holder = active_at(session, ip)
    if holder is not None and holder.id != keep:
        who = f" ({holder.owner})" if holder.owner else ""
        raise Conflict(
            f"IP {ip} is already registered to {holder.mac}{who}; edit or remove that record first"
        )


# PostgreSQL advisory lock taken by every writer of static IPv6 addresses (see claim_ipv6_lock).
_IPV6_CLAIMS_LOCK = 7262738


def claim_ipv6_lock(session: Session) -> None:
    """Serialise the writers that give records static IPv6 addresses, until the transaction ends.

    No unique index can hold a list column, so the check that an address is free and the write
    must not interleave with another's. SQLite needs nothing: `Store.session` holds the database's
    write lock already; on PostgreSQL, this advisory lock (held by `ledger add`, `ledger edit` and
    imports of addresses) makes the second writer wait, then see what the first committed.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IPV6_CLAIMS_LOCK})


def _refuse_taken_ipv6(session: Session, binding: Binding, *, keep: int | None) -> None:
    """Each static IPv6 address is active in one record only, like an IP (see claim_ipv6_lock)."""
    if binding.ipv6 or ":" in binding.ip:
        claim_ipv6_lock(session)
    for address in binding.ipv6:
        holders = [d for d in _holding(session, address, active=True) if d.id != keep]
        if holders:
            holder = holders[0]
            who = f" ({holder.owner})" if holder.owner else ""
            raise Conflict(
                f"IPv6 {address} is already registered to {holder.mac}{who} at {holder.ip}; "
                "edit or remove that record first"
            )
    if ":" in binding.ip:  # an IPv6 record IP must not be another record's static IPv6
        holders = [d for d in _holding(session, binding.ip, active=True) if d.id != keep]
        if holders and holders[0].ip != binding.ip:
            raise Conflict(
                f"IP {binding.ip} is a static IPv6 address of {holders[0].mac} at "
                f"{holders[0].ip}; edit or remove that record first"
            )


def _flush(session: Session, ip: str) -> None:
    """Write the change now, so that a rule the database enforces fails here, as a Conflict.

    `_refuse_taken_ip` catches the usual case; two concurrent changes giving one IP to two
    records both pass it, and the unique index of active IPs stops the second.
    """
    try:
        session.flush()
    except sa.exc.IntegrityError:
        raise Conflict(
            f"IP {ip} was just registered to another active record by a concurrent change; "
            "`ipguard ledger show` it and try again"
        ) from None


def count(session: Session) -> int:
    """How many records the ledger holds (any status)."""
    return int(session.execute(sa.select(sa.func.count()).select_from(Device)).scalar_one())
