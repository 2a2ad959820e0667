"""`ipguard ledger …`: manage bindings, import and export the ledger, read its history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from ipguard.cli.context import site_option, state
from ipguard.cli.output import Format, emit, info
from ipguard.model import LEDGER_FIELDS

app = typer.Typer(
    help="Manage registered devices (IP ↔ MAC bindings) and their history.", no_args_is_help=True
)

LIST_COLUMNS = (
    "ip",
    "ipv6",
    "mac",
    "alt_macs",
    "owner",
    "department",
    "location",
    "hostname",
    "roles",
    "status",
    "site",
)
SPARSE = frozenset({"ipv6", "alt_macs", "site"})  # in `ledger list` only when some record has one
HISTORY_COLUMNS = ("at", "actor", "action", "key", "alt_key", "changes")

# Options shared by `add` and `edit`: every ledger field but ip and mac.
Ipv6 = Annotated[
    str | None,
    typer.Option(
        "--ipv6",
        help="';'-separated static IPv6 addresses (global or unique-local); '' for none.",
    ),
]
AltMacs = Annotated[
    str | None,
    typer.Option(
        "--alt-macs",
        help="';'-separated other MACs the device answers from at its addresses (a bond's "
        "other NICs, a failover twin without a virtual MAC); '' for none.",
    ),
]
Hostname = Annotated[str | None, typer.Option(help="Hostname the device should have.")]
Owner = Annotated[str | None, typer.Option(help="Real name of the user.")]
Department = Annotated[str | None, typer.Option(help="Department or unit.")]
Location = Annotated[str | None, typer.Option(help="Building, room, lab.")]
SwitchPort = Annotated[str | None, typer.Option(help="Switch port or cable label.")]
AssetTag = Annotated[str | None, typer.Option(help="Asset or lab machine number.")]
Roles = Annotated[
    str | None,
    typer.Option(
        help="';'-separated: host, server, router, gateway, access-point, switch, proxy, "
        "dhcp-server, printer (ledger add: host when not given)."
    ),
]
Services = Annotated[
    str | None,
    typer.Option(
        "--services",
        help="Allowed services, ';'-separated proto/port: tcp/22;tcp/80 (beside [policy] "
        "default_allowed_services).",
    ),
]
Status = Annotated[
    str | None, typer.Option(help="active, suspended or retired (ledger add: active).")
]
Isolated = Annotated[
    bool | None,
    typer.Option("--isolated/--not-isolated", help="Classified machine that must never be online."),
]
GuestUntil = Annotated[
    str | None, typer.Option(help="Guest access expires on this date (YYYY-MM-DD).")
]
ApprovalRef = Annotated[str | None, typer.Option(help="Reference of the signed application.")]
Notes = Annotated[str | None, typer.Option(help="Free notes.")]
Site = Annotated[
    str | None,
    typer.Option(
        help="Site whose scans the record is for (as `scan --site`); '' for every site "
        "(ledger add's default).",
        callback=site_option,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]


# `add` and `edit` take every ledger field as an option of the same name, but for this one.
OPTION_OF = {"allowed_services": "services"}


def _fields(arguments: dict[str, Any]) -> dict[str, str]:
    """The ledger fields the user gave to `add` or `edit` (their `locals()`), as text.

    A parameter that is None was not given.
    """
    values = {}
    for name in LEDGER_FIELDS:
        value = arguments[OPTION_OF.get(name, name)]
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        values[name] = str(value)
    return values


def _device_row(device: Any) -> dict[str, Any]:
    from ipguard.fields import binding_to_fields

    row: dict[str, Any] = binding_to_fields(device.to_binding())
    row["updated_at"] = device.updated_at.isoformat().replace("+00:00", "Z")
    return row


@app.command()
def add(
    ctx: typer.Context,
    ip: Annotated[str, typer.Argument(help="IP address.")],
    mac: Annotated[str, typer.Argument(help="MAC address (any common notation).")],
    ipv6: Ipv6 = None,
    alt_macs: AltMacs = None,
    hostname: Hostname = None,
    owner: Owner = None,
    department: Department = None,
    location: Location = None,
    switch_port: SwitchPort = None,
    asset_tag: AssetTag = None,
    roles: Roles = None,
    services: Services = None,
    status: Status = None,
    isolated: Isolated = None,
    guest_until: GuestUntil = None,
    approval_ref: ApprovalRef = None,
    notes: Notes = None,
    site: Site = None,
) -> None:
    """Register a device: bind IP to MAC."""
    from ipguard.errors import InvalidValue
    from ipguard.fields import FieldError, binding_from_fields
    from ipguard.ledger import devices

    shared = state(ctx)
    values = _fields(locals())
    try:
        binding = binding_from_fields(values)
    except FieldError as error:
        raise InvalidValue(f"{error.field} {error.value!r}: {error.reason}") from None
    with shared.store().session() as session:
        devices.add(session, binding, actor=shared.actor)
    info(f"registered {binding.ip} → {binding.mac}")


@app.command()
def edit(
    ctx: typer.Context,
    key: Annotated[
        str, typer.Argument(help="IP, static IPv6, or MAC of one active (or suspended) record.")
    ],
    ip: Annotated[str | None, typer.Option(help="New IP address.")] = None,
    mac: Annotated[str | None, typer.Option(help="New MAC address.")] = None,
    ipv6: Ipv6 = None,
    alt_macs: AltMacs = None,
    hostname: Hostname = None,
    owner: Owner = None,
    department: Department = None,
    location: Location = None,
    switch_port: SwitchPort = None,
    asset_tag: AssetTag = None,
    roles: Roles = None,
    services: Services = None,
    status: Status = None,
    isolated: Isolated = None,
    guest_until: GuestUntil = None,
    approval_ref: ApprovalRef = None,
    notes: Notes = None,
    site: Site = None,
) -> None:
    """Change fields of an active (or suspended) record; only the options given change."""
    from ipguard.ledger import devices

    shared = state(ctx)
    changes = _fields(locals())
    if not changes:
        from ipguard.errors import InvalidValue

        raise InvalidValue("nothing to change: give at least one option, e.g. --owner")
    with shared.store().session() as session:
        device = devices.edit(session, key, changes, actor=shared.actor)
        info(f"updated {device.ip} → {device.mac}")


@app.command()
def remove(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="IP, or MAC of one active (or suspended) record.")],
    purge: Annotated[
        bool, typer.Option(help="Delete the record instead of retiring it (the audit keeps it).")
    ] = False,
) -> None:
    """Deregister a device: its record becomes retired (or is deleted with --purge)."""
    from ipguard.ledger import devices

    shared = state(ctx)
    with shared.store().session() as session:
        device = devices.remove(session, key, actor=shared.actor, purge=purge)
        info(f"{'deleted' if purge else 'retired'} {device.ip} → {device.mac}")


@app.command()
def show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="IP, static IPv6 or MAC.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Every record (any status) with that IP, static IPv6 address or MAC."""
    from ipguard.errors import NotFound
    from ipguard.ledger import devices

    with state(ctx).store().session(write=False) as session:
        found = devices.find(session, key)
        if not found:
            raise NotFound(f"no ledger record for {key}")
        rows = [_device_row(device) for device in found]
    if fmt == Format.table:
        _local_times(ctx, rows, "updated_at")
        for row in rows:
            emit(fmt, ("field", "value"), [{"field": k, "value": v} for k, v in row.items()])
    else:
        emit(fmt, (*LEDGER_FIELDS, "updated_at"), rows)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only records with this status (default: every status).")
    ] = None,
    department: Annotated[
        str | None,
        typer.Option(help="Only this department, in any case (default: every department)."),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            help="Only records valid at this site: scoped to it or to every site.",
            callback=site_option,
        ),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List registered devices."""
    from ipguard.ledger import devices

    with state(ctx).store().session(write=False) as session:
        found = devices.list_devices(session, status=status, department=department, site=site)
        rows = [_device_row(device) for device in found]
    if fmt == Format.table:
        # Columns few records fill are shown only when one does: a terminal is 80 wide.
        columns = tuple(
            name for name in LIST_COLUMNS if name not in SPARSE or any(row[name] for row in rows)
        )
    else:
        columns = (*LEDGER_FIELDS, "updated_at")
    emit(fmt, columns, rows, title=f"{len(rows)} registered devices")


@app.command()
def history(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="IP, static IPv6 or MAC (or a pool's CIDR).")],
    fmt: FormatOption = Format.table,
) -> None:
    """Every recorded change to the records with that IP, static IPv6 or MAC, oldest first."""
    from ipguard.errors import InvalidValue
    from ipguard.ledger import audit, devices
    from ipguard.ledger.pools import parse_cidr

    try:
        kind, value = devices.parse_key(key)
    except InvalidValue:
        kind, value = "cidr", parse_cidr(key)
    with state(ctx).store().session(write=False) as session:
        keys = {value}
        if kind == "ip" and ":" in value:
            # A static IPv6 address is no audit key: the records holding it carry its history.
            keys |= {device.ip for device in devices.find(session, value)}
        found = {entry.id: entry for name in keys for entry in audit.history(session, name)}
        entries = sorted(found.values(), key=lambda entry: entry.id or 0)
    rows = []
    for entry in entries:
        rows.append(
            {
                "at": entry.at.isoformat().replace("+00:00", "Z"),
                "actor": entry.actor,
                "action": entry.action,
                "key": entry.key,
                "alt_key": entry.alt_key,
                "before": entry.before,
                "after": entry.after,
                "changes": _changes(entry.before, entry.after),
            }
        )
    if fmt == Format.json:
        emit(fmt, (), rows)
    else:
        if fmt == Format.table:
            _local_times(ctx, rows, "at")
        emit(fmt, HISTORY_COLUMNS, rows, title=f"history of {value}")


def _local_times(ctx: typer.Context, rows: list[dict[str, Any]], key: str) -> None:
    """A table's UTC ISO 8601 times (`rows[…][key]`) in the administrators' zone, offset shown;
    JSON and CSV keep UTC."""
    from ipguard.localtime import iso_local

    zone = state(ctx).zone()
    for row in rows:
        row[key] = iso_local(datetime.fromisoformat(row[key].replace("Z", "+00:00")), zone)


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None and after is not None:
        return "created"
    if after is None:
        return "deleted"
    assert before is not None
    return "; ".join(
        f"{name}: {before.get(name)!r} → {after.get(name)!r}"
        for name in after
        if before.get(name) != after.get(name)
    )
