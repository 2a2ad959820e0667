"""Importing a ledger file: validate every row, plan the change, apply it whole or not at all.

A row matches the ledger record with the same IP *and* MAC. In `merge` mode unmatched rows are
added and matched ones updated; a row that would give an active IP to a second MAC is refused, since
silently rebinding an address is exactly what IP theft looks like. In `replace` mode the file is the
truth: records it does not hold are retired, never deleted. A file without the `site`, `ipv6` or
`alt_macs` column (older exports) leaves the site, static IPv6 addresses or other MACs of the
records it matches as they are.

A static IPv6 address is claimed like the IP: by one active record only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ipguard.errors import Conflict, InvalidValue, LedgerFileError, LineProblem
from ipguard.fields import FieldError, binding_from_fields, binding_to_fields
from ipguard.ledger import audit, bulk, devices
from ipguard.ledger.files import FileRow
from ipguard.ledger.tables import Device, device_values, utcnow
from ipguard.model import Binding, DeviceStatus

MODES = ("merge", "replace")


@dataclass(frozen=True)
class Update:
    """A matched record whose fields change."""

    device_id: int
    line: int
    before: dict[str, str]
    after: Binding


@dataclass(frozen=True)
class Retirement:
    """A record the file no longer holds (replace mode)."""

    device_id: int
    before: dict[str, str]


@dataclass
class ImportPlan:
    """What an import would change; `apply` carries it out."""

    source: str
    mode: str
    adds: list[tuple[int, Binding]] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    retirements: list[Retirement] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changes(self) -> int:
        """How many records would change."""
        return len(self.adds) + len(self.updates) + len(self.retirements)

    def counts(self) -> dict[str, int]:
        """The plan's size by kind of change."""
        return {
            "added": len(self.adds),
            "updated": len(self.updates),
            "retired": len(self.retirements),
            "unchanged": self.unchanged,
        }


def validate_rows(path: str, rows: Sequence[FileRow]) -> list[tuple[int, Binding]]:
    """Every row as a binding, or LedgerFileError listing every bad row."""
    problems: list[LineProblem] = []
    bindings: list[tuple[int, Binding]] = []
    first_active: dict[str, int] = {}
    for row in rows:
        if row.problems:  # the row could not be read as it stands: its fields are not judged
            problems.extend(row.problems)
            continue
        try:
            binding = binding_from_fields(row.values)
        except FieldError as error:
            reason = error.reason
            if error.field == "ip" and error.value.strip().lower() == "ip":
                reason = f"the column names again (files pasted together?); delete this {row.unit}"
            problems.append(
                LineProblem(
                    row.line, error.field, error.value, reason, row.unit, row.cell(error.field)
                )
            )
            continue
        if binding.status == DeviceStatus.ACTIVE:
            clashes = [
                LineProblem(
                    row.line,
                    name,
                    address,
                    _taken(name, address, f"active on {row.unit} {earlier}"),
                    row.unit,
                )
                for name, address in _claims(binding.ip, binding.ipv6)
                if (earlier := first_active.setdefault(address, row.line)) != row.line
            ]
            if clashes:
                problems.extend(clashes)
                continue
        bindings.append((row.line, binding))
    if problems:
        raise LedgerFileError(path, sorted(problems, key=lambda problem: problem.line))
    return bindings


def _claims(ip: str, ipv6: Sequence[str]) -> list[tuple[str, str]]:
    """The addresses an active record holds alone, each with the field that names it."""
    return [("ip", ip), *(("ipv6", address) for address in ipv6)]


def _taken(name: str, address: str, where: str) -> str:
    """The reason an address cannot be claimed: it is already `where`."""
    return f"IP is already {where}" if name == "ip" else f"IPv6 {address} is already {where}"


def check_retirements(
    session: Session, plan: ImportPlan, *, max_retire: int | None, force: bool
) -> None:
    """Refuse a replace that would retire more than `max_retire` records, unless forced.

    The default limit is a tenth of the active records (at least one): a header-only file or
    `[]` is far more often a mistake than the wish to empty the ledger.
    """
    if force or not plan.retirements:
        return
    table = Device.__table__  # type: ignore[attr-defined]
    active = session.execute(
        sa.select(sa.func.count())
        .select_from(table)
        .where(table.c.status == DeviceStatus.ACTIVE.value)
    ).scalar_one()
    limit = max(1, active // 10) if max_retire is None else max_retire
    if len(plan.retirements) > limit:
        raise Conflict(
            f"{plan.source}: --mode replace would retire {len(plan.retirements)} of the "
            f"ledger's {active} active records, more than --max-retire {limit}; nothing was "
            "imported. Check the file, then raise --max-retire or pass --force"
        )


def plan_import(session: Session, path: str, rows: Sequence[FileRow], mode: str) -> ImportPlan:
    """Validate the rows and work out the change against the ledger; changes nothing."""
    if mode not in MODES:
        raise InvalidValue(f"--mode {mode!r}: use merge or replace")
    bindings = validate_rows(path, rows)
    plan = ImportPlan(source=path, mode=mode)
    # Files written before records had a site lack the column: they keep a record's site rather
    # than moving every record to "any site".
    siteless = {row.line for row in rows if "site" not in row.values}
    ipv6less = {row.line for row in rows if "ipv6" not in row.values}
    altless = {row.line for row in rows if "alt_macs" not in row.values}

    if any(binding.ipv6 for _, binding in bindings):
        devices.claim_ipv6_lock(session)  # before the ledger is read: see claim_ipv6_lock
    table = Device.__table__  # type: ignore[attr-defined]
    records: dict[tuple[str, str], list[sa.Row[Any]]] = defaultdict(list)
    # Plain rows rather than ORM objects: a 100,000-record ledger loads in a fraction of the time
    # and memory, and nothing here changes a record in place.
    for device in session.execute(sa.select(table).order_by(table.c.id)):
        records[(device.ip, device.mac)].append(device)
    for held in records.values():
        held.sort(key=lambda device: device.status != DeviceStatus.ACTIVE)

    # Rows pair with records of the same IP and MAC, active first, then in order.
    rows_by_pair: dict[tuple[str, str], list[tuple[int, Binding]]] = defaultdict(list)
    for line, binding in bindings:
        rows_by_pair[(binding.ip, binding.mac)].append((line, binding))
    matched: set[int] = set()
    for pair, incoming in rows_by_pair.items():
        if len(incoming) > 1:
            incoming.sort(key=lambda item: item[1].status != DeviceStatus.ACTIVE)
        existing = records.get(pair, [])
        for index, (line, binding) in enumerate(incoming):
            if index >= len(existing):
                plan.adds.append((line, binding))
                continue
            device = existing[index]
            assert device.id is not None
            matched.add(device.id)
            current = devices.stored_binding(device)
            if line in siteless and binding.site != current.site:
                binding = replace(binding, site=current.site)
            if line in ipv6less and binding.ipv6 != current.ipv6:
                binding = replace(binding, ipv6=current.ipv6)
            if line in altless and binding.alt_macs != current.alt_macs:
                binding = replace(binding, alt_macs=current.alt_macs)
            if binding == current:  # every field equal, exactly as their file forms would be
                plan.unchanged += 1
            else:
                plan.updates.append(Update(device.id, line, binding_to_fields(current), binding))

    if mode == "replace":
        for group in records.values():
            for device in group:
                assert device.id is not None
                if device.id not in matched and device.status != DeviceStatus.RETIRED:
                    before = binding_to_fields(devices.stored_binding(device))
                    plan.retirements.append(Retirement(device.id, before))

    _refuse_rebinding(path, plan, records)
    plan.adds.sort()
    plan.updates.sort(key=lambda update: update.line)
    return plan


def _refuse_rebinding(
    path: str, plan: ImportPlan, records: dict[tuple[str, str], list[sa.Row[Any]]]
) -> None:
    """After the plan, each IP and static IPv6 may still be active in one record only."""
    final_active: dict[str, str] = {}  # address -> who holds it, for the message
    changed = {update.device_id for update in plan.updates}
    changed |= {retirement.device_id for retirement in plan.retirements}
    for group in records.values():
        for device in group:
            if device.id not in changed and device.status == DeviceStatus.ACTIVE:
                who = f" ({device.owner})" if device.owner else ""
                held = device.ipv6.split(";") if device.ipv6 else ()
                for _, address in _claims(device.ip, held):
                    final_active[address] = f"{device.mac}{who} in the ledger"
    problems = []
    incoming = [(update.line, update.after) for update in plan.updates] + plan.adds
    for line, binding in sorted(incoming, key=lambda item: item[0]):
        if binding.status != DeviceStatus.ACTIVE:
            continue
        for name, address in _claims(binding.ip, binding.ipv6):
            holder = final_active.get(address)
            if holder is None:
                final_active[address] = f"{binding.mac} on line {line}"
            else:
                problems.append(
                    LineProblem(
                        line,
                        name,
                        address,
                        _taken(name, address, f"registered to {holder}")
                        + "; retire that record first or import with --mode replace",
                    )
                )
    if problems:
        raise LedgerFileError(path, problems)


def apply(session: Session, plan: ImportPlan, *, actor: str) -> None:
    """Carry out the plan in the caller's transaction, with an audit row per change."""
    now = utcnow()
    audit_rows: list[dict[str, Any]] = []

    def entry(
        action: str, before: dict[str, str] | None, after: dict[str, str] | None
    ) -> dict[str, Any]:
        current = after or before or {}
        return {
            "at": now,
            "actor": actor,
            "action": action,
            "entity": "device",
            "key": current.get("ip", ""),
            "alt_key": current.get("mac", ""),
            "before": before,
            "after": after,
        }

    def note(action: str, before: dict[str, str] | None, after: dict[str, str] | None) -> None:
        audit_rows.append(entry(action, before, after))

    table = Device.__table__  # type: ignore[attr-defined]
    # Deactivations first, so that an IP moving between records never looks active twice.
    if plan.retirements:
        session.execute(
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values(status=DeviceStatus.RETIRED.value, updated_at=sa.bindparam("_at")),
            [{"_id": item.device_id, "_at": now} for item in plan.retirements],
        )
        for item in plan.retirements:
            note("device.import.retire", item.before, {**item.before, "status": "retired"})
    if plan.updates:
        columns = [*device_values(plan.updates[0].after), "updated_at"]
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({name: sa.bindparam(f"_{name}") for name in columns})
        )
        deactivating = [u for u in plan.updates if u.after.status != DeviceStatus.ACTIVE]
        activating = [u for u in plan.updates if u.after.status == DeviceStatus.ACTIVE]
        for batch in (deactivating, activating):
            if batch:
                session.execute(statement, [_update_params(update, now) for update in batch])
        for update in plan.updates:
            note("device.import.update", update.before, binding_to_fields(update.after))
    # Additions, and their audit rows, are made a chunk at a time (ipguard.ledger.bulk): a large
    # import never holds every row's parameters at once.
    bulk.insert_many(
        session,
        table,
        (
            {**device_values(binding), "created_at": now, "updated_at": now}
            for _, binding in plan.adds
        ),
    )
    added = (
        entry("device.import.add", None, binding_to_fields(binding)) for _, binding in plan.adds
    )
    summary = {
        "at": now,
        "actor": actor,
        "action": "ledger.import",
        "entity": "ledger",
        "key": plan.source,
        "alt_key": "",
        "before": None,
        "after": {"mode": plan.mode, **plan.counts()},
    }
    audit.record_many(session, chain(audit_rows, added, [summary]))


def _update_params(update: Update, now: datetime) -> dict[str, Any]:
    params = {f"_{name}": value for name, value in device_values(update.after).items()}
    return {**params, "_updated_at": now, "_id": update.device_id}
