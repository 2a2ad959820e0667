"""Reading and writing one ledger field: canonical addresses, roles, services, flags and dates.

A foundation module (standard library and the model only), so that the configuration, the ledger
and the command line share one parser per field.

Each `parse_*` turns user text into the canonical value or raises `FieldError` with a reason a
network administrator can act on; each `format_*` is its exact inverse for files and tables.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from ipguard import addresses
from ipguard.model import LEDGER_FIELDS, Binding, DeviceStatus, Role, Service

_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off", ""}
_SERVICE = re.compile(r"^(tcp|udp|sctp)/(\d{1,5})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Explicit bidirectional overrides and isolates make text display in another order than it is
# stored ("Trojan Source"); right-to-left scripts need none of them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Lone surrogates come from JSON escapes (\ud800) or undecodable command-line bytes; no database
# or file format can store them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Noncharacters: XML (and so XLSX) may not hold U+FFFE and U+FFFF at all; an export holding one
# is a workbook nothing opens.
_NONCHARACTER = re.compile("[\ufdd0-\ufdef\ufffe\uffff]")
# How Excel's General format shows a number of 12 digits or more ("1.23457E+11"); saved as CSV,
# that is all that is left of an asset tag or serial number it took for a number.
_EXCEL_SCIENTIFIC = re.compile(r"^-?[0-9](?:\.[0-9]+)?E\+[0-9]{2,3}$")
# Longest text a free field may hold: generous for notes, small enough to keep the ledger sane.
MAX_TEXT = 4096
_YEAR_FIRST = re.compile(r"^([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})$")
_YEAR_LAST = re.compile(r"^[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}$")
_MIDNIGHT = ("00:00", "00:00:00", "00:00:00Z", "00:00:00+00:00")
MAX_SITE = 64
# The audit trail's free text: who acted, and why a finding was acknowledged.
MAX_ACTOR = 200
MAX_NOTE = 4000


class FieldError(ValueError):
    """A field value that cannot be used; the message is the reason."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.value = shortened(value)
        self.reason = reason


# How much of a refused value a message shows: enough to find it, never a whole hostile cell.
SHOWN = 80


def shortened(text: str) -> str:
    """`text`, cut to SHOWN characters and an ellipsis when longer, for a message."""
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def parse_ip(text: str, field: str = "ip") -> str:
    """Canonical IP text, or FieldError for anything that is not one host address."""
    try:
        return addresses.parse_ip(text)
    except addresses.AddressError as error:
        raise FieldError(field, text, str(error)) from None


def parse_mac(text: str, field: str = "mac") -> str:
    """Canonical MAC (`aa:bb:cc:dd:ee:ff`) from `AA-BB-…`, `aabb.ccdd.eeff` or `aabbccddeeff`."""
    try:
        return addresses.parse_mac(text)
    except addresses.AddressError as error:
        raise FieldError(field, text, str(error)) from None


# More static IPv6 addresses than any one device interface carries is a pasting mistake.
MAX_IPV6 = 32
_OTHER_SEPARATOR = re.compile(r"[,\s]")


def parse_ipv6_list(text: str, field: str = "ipv6") -> tuple[str, ...]:
    """Static IPv6 addresses from `2001:db8::1;fd00::1`, canonical, in the order given.

    Empty means none (the device may use any address its MAC is given). The same address twice,
    however spelt, is refused: it is a typo, and the record would export differently.
    """
    return _parse_list(text, field, addresses.parse_static_ipv6, "addresses", MAX_IPV6)


def format_ipv6(values: Iterable[str]) -> str:
    """Static IPv6 addresses as `;`-separated text, in ledger order."""
    return ";".join(values)


# A bond or a failover group has a few NICs; more is a pasting mistake.
MAX_ALT_MACS = 8


def parse_mac_list(text: str, field: str = "alt_macs") -> tuple[str, ...]:
    """MACs from `aa:bb:cc:dd:ee:01;aa:bb:cc:dd:ee:02` (any common notation), canonical, in order.

    Empty means none. The same MAC twice, however spelt, is refused, as in `parse_ipv6_list`.
    """
    return _parse_list(text, field, addresses.parse_mac, "MACs", MAX_ALT_MACS)


def _parse_list(
    text: str, field: str, parse: Callable[[str], str], what: str, limit: int
) -> tuple[str, ...]:
    """`;`-separated values, each canonical by `parse`, in order; none twice, at most `limit`."""
    found: list[str] = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            value = parse(part)
        except addresses.AddressError as error:
            reason = str(error)
            if _OTHER_SEPARATOR.search(part.strip()):  # pasted as a list, or Alt+Enter in a cell
                reason += f"; separate {what} with ';'"
            raise FieldError(field, part.strip(), reason) from None
        if value in found:
            raise FieldError(field, part.strip(), f"{value} is listed twice")
        found.append(value)
    if len(found) > limit:
        raise FieldError(field, text[:40] + "…", f"more than {limit} {what}")
    return tuple(found)


@functools.lru_cache(maxsize=4096)  # a ledger holds few distinct values
def parse_roles(text: str) -> frozenset[Role]:
    """Roles from `host;server;…`; empty means host."""
    names = [part.strip().lower() for part in text.split(";") if part.strip()]
    roles = set()
    for name in names:
        try:
            roles.add(Role(name))
        except ValueError:
            allowed = ", ".join(role.value for role in Role)
            reason = f"unknown role {shortened(name)!r} (one of {allowed}){_list_hint(name)}"
            raise FieldError("roles", text, reason) from None
    return frozenset(roles or {Role.HOST})


def _list_hint(part: str) -> str:
    """What to say when one entry of a `;`-separated list holds several, separated otherwise."""
    return "; separate them with ';'" if _OTHER_SEPARATOR.search(part.strip()) else ""


def format_roles(roles: Iterable[Role]) -> str:
    """Roles as `;`-separated text in a stable order."""
    return ";".join(sorted(role.value for role in roles))


def parse_service(text: str, field: str = "allowed_services") -> Service:
    """One `proto/port`, e.g. `tcp/22`."""
    match = _SERVICE.match(text.strip().lower())
    if not match or not 0 < int(match.group(2)) < 65536:
        reason = f"{shortened(text.strip())!r} is not proto/port like tcp/22{_list_hint(text)}"
        raise FieldError(field, text, reason)
    return Service(match.group(1), int(match.group(2)))


@functools.lru_cache(maxsize=4096)  # a ledger holds few distinct values
def parse_services(text: str, field: str = "allowed_services") -> frozenset[Service]:
    """Services from `tcp/22;tcp/80;udp/161`."""
    return frozenset(parse_service(part, field) for part in text.split(";") if part.strip())


def format_services(services: Iterable[Service]) -> str:
    """Services as `;`-separated text, sorted by protocol and port."""
    return ";".join(str(service) for service in sorted(services))


@functools.lru_cache(maxsize=4096)  # a ledger holds few distinct values
def parse_status(text: str) -> DeviceStatus:
    """Status, default active."""
    value = text.strip().lower() or DeviceStatus.ACTIVE.value
    try:
        return DeviceStatus(value)
    except ValueError:
        raise FieldError("status", text, "status must be active, suspended or retired") from None


def parse_bool(text: str, field: str) -> bool:
    """true/false, yes/no, 1/0 (empty is false)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FieldError(field, text, "must be true or false (also yes/no, 1/0)")


def parse_date(text: str, field: str) -> date | None:
    """ISO date (YYYY-MM-DD) or empty."""
    value = text.strip()
    if not value:
        return None
    if len(value) > 10 and value[10] in "T " and value[11:] in _MIDNIGHT:
        value = value[:10]  # a spreadsheet's date cell written as a datetime
    try:
        if len(value) == 10 and value[4] == "-":
            return date.fromisoformat(value)
        # Year first, as Chinese and Japanese spreadsheets write dates (2027/1/31): one reading.
        match = _YEAR_FIRST.match(value)
        if match is None:
            raise ValueError(value)
        year, _, month, day = match.groups()
        return date(int(year), int(month), int(day))
    except ValueError:
        reason = "not a date (use YYYY-MM-DD)"
        if _YEAR_LAST.match(value):  # how a spreadsheet saves a date in its locale's order
            reason += (
                ": day and month read either way round with the year last; "
                "format the column as yyyy-mm-dd"
            )
        raise FieldError(field, text, reason) from None


def parse_text(text: str, field: str) -> str:
    """Free text: stripped, without control characters that would corrupt files and terminals.

    Text that is all a spreadsheet left of a long number (`1.23457E+11`) is refused too.
    """
    value = text.strip()
    if len(value) > MAX_TEXT:
        raise FieldError(field, text[:40] + "…", f"longer than {MAX_TEXT} characters")
    if "E+" in value and _EXCEL_SCIENTIFIC.match(value):
        raise FieldError(
            field,
            value,
            "a number in scientific notation, as a spreadsheet shows a long number it took for "
            "one (its last digits are lost); format the column as Text and retype it",
        )
    # Every character the checks below refuse (control, format, surrogate) is unprintable: text
    # that prints, Chinese included, needs none of them (an import makes a million such checks).
    if value.isprintable():
        return value
    if "\r\n" in value:  # a line break as Windows writes it (a note saved by a Windows editor)
        value = value.replace("\r\n", "\n")
    if _CONTROL.search(value):
        raise FieldError(field, text, "contains control characters")
    if _BIDI.search(value):
        raise FieldError(field, text, "contains bidirectional override characters")
    if _SURROGATE.search(value):
        raise FieldError(field, text, "is not valid Unicode text (a lone surrogate)")
    if _NONCHARACTER.search(value):
        raise FieldError(field, text, "contains a Unicode noncharacter (U+FFFE, U+FFFF, …)")
    return value


def parse_audit_text(text: str, field: str, limit: int) -> str:
    """Text for the audit trail (an actor, a note): a ledger field's rules, at most `limit` long.

    Audit rows can never be corrected, so what cannot be shown safely never gets in.
    """
    value = parse_text(text, field)
    if len(value) > limit:
        raise FieldError(field, text[:40] + "…", f"longer than {limit} characters")
    return value


def parse_site(text: str, field: str = "site") -> str:
    """A site name as `scan --site` gives it: short text, case kept; empty means every site."""
    value = parse_text(text, field)
    if len(value) > MAX_SITE:
        raise FieldError(field, text, f"site names are at most {MAX_SITE} characters")
    return value


def binding_from_fields(values: Mapping[str, Any]) -> Binding:
    """A `Binding` from text fields keyed by column name (missing keys are empty).

    Raises the first `FieldError` found, in column order.
    """

    def get(name: str) -> str:
        raw = values.get(name)
        if raw.__class__ is str:  # what CSV and XLSX give: no conversion
            return raw
        if raw is None:
            return ""
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, date):
            return raw.isoformat()
        return str(raw)

    ip = parse_ip(get("ip"))
    if ":" in ip:  # an IPv6-only device's address: the rules of a static one (no link-local …)
        try:
            addresses.parse_static_ipv6(ip)
        except addresses.AddressError as error:
            raise FieldError("ip", get("ip").strip(), str(error)) from None
    ipv6 = parse_ipv6_list(get("ipv6"))
    if ip in ipv6:
        raise FieldError("ipv6", ip, "is the record's ip already; list it once")
    mac = parse_mac(get("mac"))
    alt_macs = parse_mac_list(get("alt_macs"))
    if mac in alt_macs:
        raise FieldError("alt_macs", mac, "is the record's mac already; list it once")
    return Binding(
        ip=ip,
        ipv6=ipv6,
        mac=mac,
        alt_macs=alt_macs,
        hostname=parse_text(get("hostname"), "hostname"),
        owner=parse_text(get("owner"), "owner"),
        department=parse_text(get("department"), "department"),
        location=parse_text(get("location"), "location"),
        switch_port=parse_text(get("switch_port"), "switch_port"),
        asset_tag=parse_text(get("asset_tag"), "asset_tag"),
        roles=parse_roles(get("roles")),
        allowed_services=parse_services(get("allowed_services")),
        status=parse_status(get("status")),
        isolated=parse_bool(get("isolated"), "isolated"),
        guest_until=parse_date(get("guest_until"), "guest_until"),
        approval_ref=parse_text(get("approval_ref"), "approval_ref"),
        notes=parse_text(get("notes"), "notes"),
        site=parse_site(get("site")),
    )


def binding_to_fields(binding: Binding) -> dict[str, str]:
    """The binding as text fields in file order: the exact inverse of `binding_from_fields`."""
    values = {
        "ip": binding.ip,
        "ipv6": format_ipv6(binding.ipv6),
        "mac": binding.mac,
        "alt_macs": ";".join(binding.alt_macs),
        "hostname": binding.hostname,
        "owner": binding.owner,
        "department": binding.department,
        "location": binding.location,
        "switch_port": binding.switch_port,
        "asset_tag": binding.asset_tag,
        "roles": format_roles(binding.roles),
        "allowed_services": format_services(binding.allowed_services),
        "status": binding.status.value,
        "isolated": "true" if binding.isolated else "false",
        "guest_until": binding.guest_until.isoformat() if binding.guest_until else "",
        "approval_ref": binding.approval_ref,
        "notes": binding.notes,
        "site": binding.site,
    }
    return {name: values[name] for name in LEDGER_FIELDS}
