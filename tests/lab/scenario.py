"""What a lab network looks like: segments, the scanner, hosts, their behaviours and the ledger.

A :class:`Scenario` is a plain frozen description; :mod:`tests.lab.builder` turns it into namespaces
and processes. Each :class:`Host` carries ``expect``, the ipguard findings it should raise, as
``(kind, port or None)`` pairs with DESIGN.md's finding-kind names. Conventions of the annotation:

- ``unexpected-service`` is expected only on registered hosts; an unregistered host's open ports are
  part of its ``unregistered-host`` finding.
- ``unregistered-host`` is expected only when neither the host's IP nor its MAC is registered; a
  registered IP answering from a foreign MAC is ``ip-mac-mismatch`` alone.
- ``duplicate-ip`` has the IP as its subject: :meth:`Scenario.expected_findings` reports it with
  ``mac=None``, once per IP.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

SCAN_PORTS = "tcp/1-1024;tcp/1080;tcp/3128;tcp/8080;tcp/8118"
LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")
ROLES = (
    "host",
    "server",
    "router",
    "gateway",
    "access-point",
    "switch",
    "proxy",
    "dhcp-server",
    "printer",
)
FINDING_KINDS = frozenset({
    "unregistered-host", "ip-mac-mismatch", "mac-moved", "duplicate-ip", "unexpected-service",
    "open-proxy", "rogue-dhcp", "rogue-router", "rogue-ap", "out-of-pool", "hostname-policy",
    "stale-registration", "guest-expired", "suspended-device-online", "isolated-device-online",
    "wrong-port", "unmanaged-switch", "rogue-ra",
})  # fmt: skip
IP_SUBJECT_KINDS = frozenset({"duplicate-ip"})
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
RESERVED_NAMES = frozenset({"sw", "scan"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")

Expect = tuple[str, int | None]
"""One annotated finding: (finding kind, TCP port or None)."""

ExpectedFinding = tuple[str, str, str | None, int | None]
"""(kind, ip, mac or None, port or None) as ipguard should report it."""

ServiceKind = Literal["banner", "http", "socat", "http-proxy", "socks"]
DhcpKind = Literal["dnsmasq", "kea", "isc", "unicast"]


@dataclass(frozen=True)
class Segment:
    """One layer-2 segment: a bridge in the switch namespace and the IPv4 subnet on it."""

    name: str
    cidr: str

    @property
    def prefixlen(self) -> int:
        """Prefix length of the segment's subnet."""
        return ipaddress.ip_network(self.cidr).prefixlen


@dataclass(frozen=True)
class Registration:
    """One ledger row: a registered IP ↔ MAC binding with its owner, roles and allowed services."""

    ip: str
    mac: str
    hostname: str = ""
    owner: str = ""
    department: str = ""
    location: str = ""
    switch_port: str = ""
    asset_tag: str = ""
    roles: tuple[str, ...] = ("host",)
    allowed_services: tuple[str, ...] = ()
    status: str = "active"
    isolated: bool = False
    guest_until: str = ""
    approval_ref: str = ""
    notes: str = ""
    site: str = ""
    ipv6: tuple[str, ...] = ()  # static IPv6 addresses (the ledger's ipv6 column)


@dataclass(frozen=True)
class Service:
    """A TCP service a host runs on ``port``.

    ``banner`` and ``http`` are small Python listeners (``text`` is the banner line or page title),
    ``socat`` is socat sending ``text``, ``http-proxy`` is tinyproxy, ``socks`` a SOCKS4/5 proxy.
    """

    port: int
    kind: ServiceKind
    text: str = ""


@dataclass(frozen=True)
class DhcpServer:
    """A DHCP server handing out ``first``–``last`` of its host's segment, at its defaults.

    ``kind``: ``dnsmasq`` (pings an address before offering it, so it answers ~3 s late), ``kea``
    (ISC Kea from Debian, answers at once), ``isc`` (ISC dhcpd from Debian, which pings an address
    for a second before offering it, ``ping-check`` being on by default) or ``unicast``
    (:mod:`tests.lab.dhcp_unicast`, a small server that unicasts its OFFER to the client's MAC
    whatever the broadcast flag says, as some embedded servers do). ``router``: the router option it
    hands out; None leaves the server's default (dnsmasq names itself, Kea and the unicast server
    give none). ``reply_delay``: dnsmasq's ``--dhcp-reply-delay`` seconds, for a server that answers
    only after that long.
    """

    first: str
    last: str
    router: str | None = None
    kind: DhcpKind = "dnsmasq"
    reply_delay: int = 0


@dataclass(frozen=True)
class Ssdp:
    """A UPnP device: SSDP answers on UDP 1900 and a description XML served by its HTTP service."""

    http_port: int
    device_types: tuple[str, ...]
    server: str
    manufacturer: str
    model: str
    friendly_name: str
    uuid: str


@dataclass(frozen=True)
class Router:
    """A second interface ``eth1`` on ``segment``; the host forwards between it and ``eth0``.

    ``nat`` hides the segment behind the host's LAN address (nftables masquerade).
    """

    segment: str
    ip: str
    mac: str
    nat: bool = False
    registration: Registration | None = None
    dns_name: str | None = None


@dataclass(frozen=True)
class Host:
    """One device: its own namespace with ``eth0`` on ``segment``, and what it runs."""

    name: str
    ip: str
    mac: str
    segment: str = "lan"
    gateway: str | None = None
    registration: Registration | None = None
    dns_name: str | None = None
    services: tuple[Service, ...] = ()
    dns: bool = False
    dhcp: DhcpServer | None = None
    ssdp: Ssdp | None = None
    router: Router | None = None
    moves_to: str | None = None
    expect: tuple[Expect, ...] = ()

    def open_ports(self) -> set[int]:
        """TCP ports open on this host (its services, plus 53 when it serves DNS)."""
        return {s.port for s in self.services} | ({53} if self.dns else set())


@dataclass(frozen=True)
class Scanner:
    """A namespace ipguard scans from: ``eth0`` on ``segment`` (empty: the first segment)."""

    ip: str
    mac: str
    registration: Registration | None = None
    dns_name: str | None = None
    segment: str = ""


@dataclass(frozen=True)
class Scenario:
    """A whole lab: segments (the first is the scanned LAN), the scanner, hosts, absent devices.

    ``sensors`` are further scanners, one per other segment, for labs where each segment is a site
    with a sensor of its own (its namespace is ``Lab.sensor_ns(segment)``).
    """

    name: str
    segments: tuple[Segment, ...]
    scanner: Scanner
    hosts: tuple[Host, ...]
    absent: tuple[Registration, ...] = ()
    ports: str = SCAN_PORTS
    sensors: tuple[Scanner, ...] = ()
    # [scan] rate of the lab's ipguard.toml: ipguard's default unless the scenario says why not.
    rate: int = 2000

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def subnet(self) -> str:
        """The scanned local subnet (the first segment)."""
        return self.segments[0].cidr

    @property
    def routed_subnets(self) -> list[str]:
        """Subnets reachable from the LAN through a routing (non-NAT) host."""
        return [
            self.segment(h.router.segment).cidr for h in self.hosts if h.router and not h.router.nat
        ]

    @property
    def dns_server(self) -> str | None:
        """IP of the host that serves the lab's DNS names, if any."""
        return next((h.ip for h in self.hosts if h.dns), None)

    def segment(self, name: str) -> Segment:
        """The segment called ``name``."""
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise KeyError(f"scenario {self.name!r} has no segment {name!r}")

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"scenario {self.name!r} has no host {name!r} (removed or never there)")

    def with_host(self, host: Host) -> Scenario:
        """A copy with the host of the same name replaced by ``host``."""
        return dataclasses.replace(
            self, hosts=tuple(host if h.name == host.name else h for h in self.hosts)
        )

    def without_host(self, name: str) -> Scenario:
        """A copy where host ``name`` is gone from the network; its registrations become absent."""
        gone = self.host(name)
        regs = tuple(r for r in (gone.registration, gone.router and gone.router.registration) if r)
        return dataclasses.replace(
            self, hosts=tuple(h for h in self.hosts if h.name != name), absent=self.absent + regs
        )

    def registrations(self) -> list[Registration]:
        """Every ledger row of the scenario (present and absent devices), ordered by IP."""
        rows = [r for r in self._all_registrations() if r is not None]
        return sorted(rows, key=lambda r: ipaddress.ip_address(r.ip))

    def _all_registrations(self) -> Iterator[Registration | None]:
        yield self.scanner.registration
        for sensor in self.sensors:
            yield sensor.registration
        for host in self.hosts:
            yield host.registration
            yield host.router.registration if host.router else None
        yield from self.absent

    def dns_records(self) -> list[tuple[str, str]]:
        """(name, ip) pairs the lab DNS serves: planted names plus the ledger's absent devices."""
        records = [(self.scanner.dns_name, self.scanner.ip)] if self.scanner.dns_name else []
        for host in self.hosts:
            if host.dns_name:
                records.append(
                    (host.dns_name, (host.registration.ip if host.registration else host.ip))
                )
            if host.router and host.router.dns_name:
                records.append((host.router.dns_name, host.router.ip))
        records += [(r.hostname, r.ip) for r in self.absent if r.hostname]
        return records

    def expected_findings(self, segment: str | None = None) -> set[ExpectedFinding]:
        """The findings ipguard should report on this lab as it stands: (kind, ip, mac, port).

        With ``segment``, only those about hosts on that segment (what its sensor should report).
        """
        found: set[ExpectedFinding] = set()
        for host in self.hosts:
            if segment is not None and host.segment != segment:
                continue
            for kind, port in host.expect:
                mac = None if kind in IP_SUBJECT_KINDS else host.mac
                found.add((kind, host.ip, mac, port))
        return found


def _validate(scenario: Scenario) -> None:
    """Reject scenarios that would break the lab's safety rules or its own conventions."""
    names = [h.name for h in scenario.hosts]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario {scenario.name!r}: host names repeat")
    segments = {s.name: ipaddress.ip_network(s.cidr) for s in scenario.segments}
    for seg_name, net in segments.items():
        if not net.subnet_of(LAB_NETWORK):  # type: ignore[arg-type]
            raise ValueError(f"segment {seg_name} {net} is outside the lab range {LAB_NETWORK}")
    for host in scenario.hosts:
        if not _NAME.match(host.name) or host.name in RESERVED_NAMES:
            raise ValueError(
                f"host name {host.name!r}: use 1-20 of [a-z0-9-], not {sorted(RESERVED_NAMES)}"
            )
        _check_address(host.name, host.ip, segments[host.segment])
        if host.router:
            _check_address(host.name, host.router.ip, segments[host.router.segment])
        for service in host.services:
            if not _port_scanned(service.port, scenario.ports):
                raise ValueError(
                    f"{host.name}: tcp/{service.port} is outside the scanned ports {scenario.ports}"
                )
        for kind, _port in host.expect:
            if kind not in FINDING_KINDS:
                raise ValueError(f"{host.name}: {kind!r} is not a finding kind of DESIGN.md")
        for mac in (host.mac, host.router.mac if host.router else host.mac):
            if not _MAC.match(mac):
                raise ValueError(f"{host.name}: MAC {mac!r} is not lowercase aa:bb:cc:dd:ee:ff")
    for reg in scenario.registrations():
        if not set(reg.roles) <= set(ROLES):
            raise ValueError(f"{reg.ip}: unknown roles {sorted(set(reg.roles) - set(ROLES))}")
    _check_address("scanner", scenario.scanner.ip, segments[scenario.segments[0].name])
    _validate_sensors(scenario, segments)


def _validate_sensors(
    scenario: Scenario,
    segments: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> None:
    """One scanner per segment, each on a segment that exists, named safely for its namespace."""
    first = scenario.segments[0].name
    if scenario.scanner.segment not in ("", first):
        raise ValueError(f"the scanner belongs on the first segment {first}")
    taken = {first}
    for sensor in scenario.sensors:
        where = sensor.segment
        if where not in segments or not _NAME.match(where):
            raise ValueError(f"sensor {sensor.ip}: segment {where!r} is not a lab segment")
        if where in taken:
            raise ValueError(f"segment {where} has two scanners")
        taken.add(where)
        _check_address(f"sensor of {where}", sensor.ip, segments[where])
        if not _MAC.match(sensor.mac):
            raise ValueError(f"sensor of {where}: MAC {sensor.mac!r} is not lowercase")
        if any(host.name == f"scan-{where}" for host in scenario.hosts):
            raise ValueError(f"host name scan-{where} is the namespace of the sensor of {where}")


def _check_address(who: str, ip: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    if ipaddress.ip_address(ip) not in net:
        raise ValueError(f"{who}: {ip} is not in its segment {net}")


def _port_scanned(port: int, ports: str) -> bool:
    for item in ports.split(";"):
        low, _, high = item.removeprefix("tcp/").partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False
