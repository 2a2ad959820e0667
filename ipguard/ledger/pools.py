"""Department address pools: the ranges each unit applied for, and handing out the next address."""

from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlmodel import Session, col, select

from ipguard.addresses import AddressError, check_network
from ipguard.errors import Conflict, InvalidValue, NotFound
from ipguard.fields import FieldError, parse_text
from ipguard.ledger import audit
from ipguard.ledger.scan_tables import FindingRow, SightingRow
from ipguard.ledger.tables import Device, Pool, utcnow
from ipguard.model import DeviceStatus, FindingKind, FindingState, Role


def parse_cidr(text: str) -> str:
    """Canonical network text; host bits must be zero (say which network was meant)."""
    from netaddr import AddrFormatError, IPNetwork

    try:
        network = IPNetwork(text.strip())
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidValue(
            f"{text!r} is not a network in CIDR notation (e.g. 10.20.1.0/24)"
        ) from None
    if "/" not in text:
        raise InvalidValue(f"{text!r} has no prefix length; write it as CIDR (e.g. {text}/24)")
    if network.ip != network.network:
        raise InvalidValue(f"{text!r} has host bits set; did you mean {network.cidr}?")
    try:
        check_network(ipaddress.ip_network(str(network.cidr)))
    except AddressError as error:
        raise InvalidValue(f"{text!r}: {error}") from None
    return str(network.cidr)


def list_pools(session: Session, department: str | None = None) -> list[Pool]:
    """Pools ordered by department, then address."""
    from netaddr import IPNetwork

    pools = list(session.exec(select(Pool)))
    if department:  # named in any case, as the out-of-pool rule compares departments
        wanted = department.strip().casefold()
        pools = [pool for pool in pools if pool.department.strip().casefold() == wanted]
    return sorted(pools, key=lambda pool: (pool.department, IPNetwork(pool.cidr).sort_key()))


def add(session: Session, department: str, cidr: str, description: str, *, actor: str) -> Pool:
    """Register a pool; it must not overlap any other pool."""
    from netaddr import IPNetwork, IPSet

    try:
        department = parse_text(department, "department")
        description = parse_text(description, "description")
    except FieldError as error:
        raise InvalidValue(f"{error.field} {error.value!r}: {error.reason}") from None
    if not department:
        raise InvalidValue("a pool needs a department")
    canonical = parse_cidr(cidr)
    wanted = IPSet([canonical])
    for other in session.exec(select(Pool)):
        if wanted & IPSet([other.cidr]):
            raise Conflict(
                f"pool {canonical} overlaps pool {other.cidr} of {other.department}; "
                "pools may not share addresses"
            )
    now = utcnow()
    pool = Pool(
        department=department,
        cidr=str(IPNetwork(canonical).cidr),
        description=description,
        created_at=now,
    )
    session.add(pool)
    audit.record(
        session,
        actor=actor,
        action="pool.add",
        entity="pool",
        key=pool.cidr,
        alt_key=department,
        after={"department": department, "cidr": pool.cidr, "description": description},
        at=now,
    )
    session.flush()
    return pool


def remove(session: Session, cidr: str, *, actor: str) -> Pool:
    """Delete a pool (the audit keeps it)."""
    canonical = parse_cidr(cidr)
    pool = session.exec(select(Pool).where(Pool.cidr == canonical)).first()
    if pool is None:
        raise NotFound(f"no pool {canonical}")
    before = {"department": pool.department, "cidr": pool.cidr, "description": pool.description}
    session.delete(pool)
    audit.record(
        session,
        actor=actor,
        action="pool.remove",
        entity="pool",
        key=pool.cidr,
        alt_key=pool.department,
        before=before,
    )
    return pool


def next_free(session: Session, department: str, *, seen_since: datetime | None = None) -> str:
    """The lowest address of the department's pools that no active device holds.

    Network and broadcast addresses are skipped, and so is every address registered to a
    gateway, whatever the record's status (gateways are configured, not handed out), every
    address a live finding says somebody answers at (`in_use`), and every address some device
    answered at since `seen_since` (the sightings): an unregistered laptop gone home for the
    night has its finding resolved by the night's scan, and comes back at nine to the address
    handed out at eight.
    """
    from netaddr import IPAddress, IPNetwork

    pools = list_pools(session, department)
    if not pools:
        raise NotFound(f"department {department!r} has no pool; add one with `ipguard pools add`")
    taken: set[int] = set()
    for device in session.exec(select(Device).where(col(Device.status) == DeviceStatus.ACTIVE)):
        taken.add(int(IPAddress(device.ip)))
        # Its static IPv6 addresses are its own as much as its `ip` (active in one record only).
        taken.update(int(IPAddress(ip)) for ip in device.ipv6.split(";") if ip)
    for device in session.exec(
        select(Device).where(col(Device.roles).contains(Role.GATEWAY.value))
    ):
        taken.add(int(IPAddress(device.ip)))
    taken.update(int(IPAddress(ip)) for ip in in_use(session))
    if seen_since is not None:
        recent = select(SightingRow.ip).where(col(SightingRow.seen_at) >= seen_since)
        taken.update(int(IPAddress(ip)) for ip in session.exec(recent))
    for pool in pools:
        network = IPNetwork(pool.cidr)
        first, last = network.first, network.last
        if network.version == 4 and network.prefixlen < 31:
            first, last = first + 1, last - 1
        elif network.version == 6 and network.prefixlen < 127:
            first += 1  # the subnet-router anycast address
        # Each step past `first` skips one taken address, so this ends within len(taken) + 1.
        candidate = first
        while candidate <= last and candidate in taken:
            candidate += 1
        if candidate <= last:
            return str(IPAddress(candidate, network.version))
    cidrs = ", ".join(pool.cidr for pool in pools)
    raise Conflict(f"no free address left in the pools of {department} ({cidrs})")


# Findings that say a device answers at an address no active record gives it.
_SQUATTING = (
    FindingKind.UNREGISTERED_HOST,
    FindingKind.DUPLICATE_IP,
    FindingKind.MAC_MOVED,
    FindingKind.SUSPENDED_DEVICE_ONLINE,
    FindingKind.ISOLATED_DEVICE_ONLINE,
)


def in_use(session: Session) -> set[str]:
    """The addresses live findings say somebody answers at without an active record there: an
    unregistered host, a moved or retired device still plugged in. Handed out, such an address
    would collide at once; once a run sees it gone (the finding resolved) it is free."""
    query = select(FindingRow).where(
        col(FindingRow.kind).in_([kind.value for kind in _SQUATTING]),
        FindingRow.state != FindingState.RESOLVED.value,
    )
    used: set[str] = set()
    for row in session.exec(query):
        seen_at = (row.detail or {}).get("seen_at")
        for ip in [row.ip, *(seen_at if isinstance(seen_at, list) else [])]:
            try:
                used.add(str(ipaddress.ip_address(ip)))
            except (TypeError, ValueError):
                continue
    return used
