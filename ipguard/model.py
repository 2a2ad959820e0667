"""The plain types every part of ipguard shares: what a device is, what a scan saw, what it found.

Standard library only, so that scanners, policies and the ledger can all depend on it.
Addresses are canonical text: IPs as `ipaddress` prints them, MACs lowercase with colons.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class Severity(enum.StrEnum):
    """How urgently a finding needs a human, in increasing order."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in increasing order of urgency (info = 0)."""
        return _SEVERITY_ORDER.index(self)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_ORDER = list(Severity)


class FindingKind(enum.StrEnum):
    """The stable names of everything ipguard reports (DESIGN.md, "Finding kinds")."""

    UNREGISTERED_HOST = "unregistered-host"
    IP_MAC_MISMATCH = "ip-mac-mismatch"
    MAC_MOVED = "mac-moved"
    DUPLICATE_IP = "duplicate-ip"
    UNEXPECTED_SERVICE = "unexpected-service"
    OPEN_PROXY = "open-proxy"
    ROGUE_DHCP = "rogue-dhcp"
    ROGUE_ROUTER = "rogue-router"
    ROGUE_AP = "rogue-ap"
    OUT_OF_POOL = "out-of-pool"
    HOSTNAME_POLICY = "hostname-policy"
    STALE_REGISTRATION = "stale-registration"
    GUEST_EXPIRED = "guest-expired"
    SUSPENDED_DEVICE_ONLINE = "suspended-device-online"
    ISOLATED_DEVICE_ONLINE = "isolated-device-online"
    WRONG_PORT = "wrong-port"
    UNMANAGED_SWITCH = "unmanaged-switch"
    ROGUE_RA = "rogue-ra"


class Role(enum.StrEnum):
    """What a registered device is allowed to be on the network."""

    HOST = "host"
    SERVER = "server"
    ROUTER = "router"
    GATEWAY = "gateway"
    ACCESS_POINT = "access-point"
    SWITCH = "switch"
    PROXY = "proxy"
    DHCP_SERVER = "dhcp-server"
    PRINTER = "printer"


class DeviceStatus(enum.StrEnum):
    """Life stage of a registration: only active records may be online."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class FindingState(enum.StrEnum):
    """Where a finding is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class RunStatus(enum.StrEnum):
    """How a scan run ended (or that it has not yet)."""

    RUNNING = "running"
    COMPLETE = "complete"
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass(frozen=True, order=True)
class Service:
    """A transport port, written `tcp/22` in the ledger and the configuration."""

    proto: str
    port: int

    def __str__(self) -> str:
        return f"{self.proto}/{self.port}"


# The ledger's columns, in file order (DESIGN.md, "Ledger file format"); `site` came later, so it
# is near the end and optional in files, as `alt_macs` (the device's other MACs, later still);
# `ipv6` (static IPv6 addresses) stands after `ip`, also optional.
LEDGER_FIELDS: tuple[str, ...] = (
    "ip",
    "ipv6",
    "mac",
    "hostname",
    "owner",
    "department",
    "location",
    "switch_port",
    "asset_tag",
    "roles",
    "allowed_services",
    "status",
    "isolated",
    "guest_until",
    "approval_ref",
    "notes",
    "site",
    "alt_macs",
)


@dataclass(frozen=True)
class Binding:
    """One registered device: an IP bound to a MAC, with who owns it and what it may do."""

    ip: str
    mac: str
    hostname: str = ""
    owner: str = ""
    department: str = ""
    location: str = ""
    switch_port: str = ""
    asset_tag: str = ""
    roles: frozenset[Role] = frozenset({Role.HOST})
    allowed_services: frozenset[Service] = frozenset()
    status: DeviceStatus = DeviceStatus.ACTIVE
    isolated: bool = False
    guest_until: date | None = None
    approval_ref: str = ""
    notes: str = ""
    # The site (sensor) whose scans this registration is for; empty: valid at every site.
    site: str = ""
    # Static IPv6 addresses registered to the device (canonical `ipaddress` text, in ledger
    # order). Empty: the device may use any IPv6 address its MAC is given (SLAAC, privacy, DHCPv6).
    ipv6: tuple[str, ...] = ()
    # Other MACs the device answers from at its addresses, canonical, in ledger order: a bond's
    # other NICs (balance-alb), the twin of a failover pair without a virtual MAC (keepalived's
    # default). Empty for almost every device.
    alt_macs: tuple[str, ...] = ()

    def has_role(self, *roles: Role) -> bool:
        """True when the device holds any of the given roles."""
        return any(role in self.roles for role in roles)

    @property
    def macs(self) -> tuple[str, ...]:
        """Every MAC the device may answer from: its own first, then its other ones."""
        return (self.mac, *self.alt_macs) if self.alt_macs else (self.mac,)


class ObservationSource(enum.StrEnum):
    """How a host proved it is present: it answered an ARP request, or an ICMP echo request
    (ttl then set, mac None), or a TCP probe after ignoring the echo ("tcp", like "icmp"), or a
    router's ARP table holds it (device and interface then set), or an IPv6 address answered a
    multicast echo or a Neighbor Solicitation ("ndp")."""

    ARP = "arp"
    ICMP = "icmp"
    TCP = "tcp"  # a SYN-ACK or RST to TCP ping, from a routed host that ignored the echo request
    SNMP_ARP = "snmp-arp"  # an entry of a router's ARP table, read over SNMP
    NDP = "ndp"  # an IPv6 echo reply or Neighbor Advertisement on the link (phase ipv6)


@dataclass(frozen=True)
class Observation:
    """One reply that proved a host is present: an IP answering from a MAC."""

    ip: str
    mac: str | None
    seen_at: datetime
    source: ObservationSource
    ttl: int | None = None
    rtt_ms: float | None = None
    vendor: str | None = None
    # For "snmp-arp": the configured device whose table held the entry, and its interface.
    device: str | None = None
    interface: str | None = None


@dataclass(frozen=True)
class ServiceObservation:
    """An open port found on a live host, with what answers there."""

    ip: str
    proto: str
    port: int
    service: str = ""
    product: str = ""
    version: str = ""
    banner: str = ""

    @property
    def as_service(self) -> Service:
        """The port as a ledger `Service`."""
        return Service(self.proto, self.port)


@dataclass(frozen=True)
class DhcpOffer:
    """A DHCP OFFER some server sent in answer to our DISCOVER (a watcher also hears ACKs and
    NAKs: `message`; a NAK, or an ACK to a DHCPINFORM, offers no address, "0.0.0.0")."""

    server_ip: str
    server_mac: str
    offered_ip: str
    router: str | None = None
    dns: tuple[str, ...] = ()
    seen_at: datetime | None = None
    # Seconds from our first DISCOVER to this offer: servers that ping-check first take ~3 s.
    latency: float | None = None
    message: str = "offer"  # "offer", "ack", "nak"; the ledger keeps offers without it


@dataclass(frozen=True)
class RouterAdvert:
    """An IPv6 router advertisement heard on the scan's link (phase ipv6)."""

    source_ip: str  # the router's link-local address
    source_mac: str  # the source link-layer option, else the frame's source
    router_lifetime: int  # seconds; 0: not a default router
    managed: bool  # M flag: addresses from DHCPv6
    other: bool  # O flag: other configuration from DHCPv6
    prefixes: tuple[str, ...] = ()  # prefix information options, canonical CIDR text
    frame_mac: str = ""  # the Ethernet source, when it differs from source_mac
    seen_at: datetime | None = None
    # IPv6 extension headers the RA came behind ("hop-by-hop", "fragment", …): RA Guard evasion.
    evasion: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()  # recursive DNS server options (RFC 8106)
    routes: tuple[str, ...] = ()  # route information options (RFC 4191), canonical CIDR text
    withdrawn: tuple[str, ...] = ()  # prefix options with valid lifetime 0: hosts drop them


@dataclass(frozen=True)
class Dhcp6Advert:
    """A DHCPv6 ADVERTISE some server sent in answer to our SOLICIT (phase ipv6)."""

    server_ip: str  # the server's (link-local) address
    server_mac: str
    addresses: tuple[str, ...] = ()  # IA_NA addresses offered
    server_duid: str = ""  # hex
    seen_at: datetime | None = None


class ProxyMethod(enum.StrEnum):
    """The ways the proxy probe asks a suspect to relay to the canary."""

    HTTP_CONNECT = "http-connect"
    HTTP_GET = "http-get"
    SOCKS4 = "socks4"
    SOCKS5 = "socks5"


@dataclass(frozen=True)
class ProxyVerdict:
    """Whether a host relayed a connection to our canary, and how."""

    ip: str
    port: int
    method: ProxyMethod
    relays: bool
    detail: str = ""


class NameSource(enum.StrEnum):
    """Where a hostname was learnt."""

    DNS = "dns"
    NETBIOS = "netbios"
    MDNS = "mdns"
    DHCP = "dhcp"  # a DHCP client's own hostname (option 12), heard by `ipguard watch`


@dataclass(frozen=True)
class NameObservation:
    """A hostname a host goes by, and where we learnt it."""

    ip: str
    name: str
    source: NameSource


class EvidenceKind(enum.StrEnum):
    """Kinds of router / access-point evidence (scanners.evidence lists where each comes from)."""

    FORWARDING = "forwarding"
    ICMP_REDIRECT = "icmp-redirect"
    TTL = "ttl"
    UPNP_IGD = "upnp-igd"
    SSDP_AP = "ssdp-ap"
    HTTP_TITLE = "http-title"
    VENDOR = "vendor"
    MAC_ADJACENCY = "mac-adjacency"


class PointsTo(enum.StrEnum):
    """What a piece of evidence suggests a host is; policies compare it with the host's roles."""

    ROUTER = "router"
    ACCESS_POINT = "access-point"


@dataclass(frozen=True)
class Evidence:
    """A sign that a host routes traffic or is a wireless access point."""

    ip: str
    mac: str | None
    kind: EvidenceKind
    points_to: PointsTo
    detail: str = ""


@dataclass(frozen=True)
class Finding:
    """Something the ledger forbids that a scan saw, before it is stored."""

    kind: FindingKind
    severity: Severity
    ip: str | None
    mac: str | None
    port: str | None
    summary: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """The key that identifies this finding across runs, together with its kind."""
        return "|".join(part or "" for part in (self.ip, self.mac, self.port))


class Phase(enum.StrEnum):
    """The parts of a scan; a finding is only resolved by a run whose phases could see it."""

    SWEEP = "sweep"
    SERVICES = "services"
    DHCP = "dhcp"
    PROXY = "proxy"
    NAMES = "names"
    EVIDENCE = "evidence"
    SNMP = "snmp"
    IPV6 = "ipv6"


class ServiceMode(enum.StrEnum):
    """How the services phase ran: version probes on every live host, or on those that changed."""

    FULL = "full"
    INCREMENTAL = "incremental"


class IgnoredReply(enum.StrEnum):
    """Why replies were read and not kept: somebody on the link flooding or spoofing."""

    ARP_UNSOLICITED = "arp_unsolicited"
    ARP_OVER_LIMIT = "arp_over_limit"
    ICMP_UNSOLICITED = "icmp_unsolicited"
    ICMP_OVER_LIMIT = "icmp_over_limit"
    TCP_UNSOLICITED = "tcp_unsolicited"
    TCP_OVER_LIMIT = "tcp_over_limit"
    DHCP_IGNORED = "dhcp_ignored"
    SSDP_IGNORED = "ssdp_ignored"
    IPV6_IGNORED = "ipv6_ignored"
    NDP_UNSOLICITED = "ndp_unsolicited"
    NDP_OVER_LIMIT = "ndp_over_limit"


@dataclass(frozen=True)
class ScanResult:
    """Everything one run saw, phase by phase."""

    observations: tuple[Observation, ...] = ()
    services: tuple[ServiceObservation, ...] = ()
    dhcp_offers: tuple[DhcpOffer, ...] = ()
    proxies: tuple[ProxyVerdict, ...] = ()
    names: tuple[NameObservation, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    phases: frozenset[Phase] = frozenset({Phase.SWEEP})
    # When each phase ran, as {"start": s, "end": s} offsets in seconds from the run's start
    # (phases overlap: a run's wall time is its critical path, not the sum of its phases).
    timings: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    service_mode: ServiceMode | None = None  # None: the services phase did not run
    services_rescanned: int = 0  # hosts that got nmap's version probes this run
    # Hosts whose service scan did not finish (nmap's host timeout): their port lists are partial,
    # so the absence of a port there proves nothing.
    partial_hosts: frozenset[str] = frozenset()
    # The hosts the per-host phases (services, names, proxy, evidence) looked at: those that
    # answered the sweep. Only there does the absence of a port, name or sign prove anything (a
    # PC switched off for the night still runs its web server in the morning).
    live_hosts: frozenset[str] = frozenset()
    # Replies read but not kept, by reason: somebody on the link flooding or spoofing
    # (scanners.sweep.ReplyBudget).
    ignored: Mapping[IgnoredReply, int] = field(default_factory=dict)
    # Replies the kernel dropped before ipguard could read them (a receive buffer overrun), by
    # sweep ("arp", "icmp", "tcp"); only the nonzero ones.
    replies_dropped: Mapping[str, int] = field(default_factory=dict)
    # What each configured switch and router said (phase snmp), answered or not.
    snmp: tuple[SnmpPoll, ...] = ()
    # Router advertisements and DHCPv6 ADVERTISEs heard on the link (phase ipv6).
    router_adverts: tuple[RouterAdvert, ...] = ()
    dhcp6_adverts: tuple[Dhcp6Advert, ...] = ()
    # Parts of the subnets the scan could not reach, with why (e.g. no route): nothing there was
    # swept, so nothing there may be resolved.
    uncovered: tuple[Uncovered, ...] = ()


@dataclass(frozen=True)
class Uncovered:
    """A range of the requested subnets that a scan could not sweep, and why."""

    range: str
    reason: str


@dataclass(frozen=True)
class KnownHost:
    """What the last service scan knew about a host: its MAC then and its open services."""

    mac: str | None
    services: tuple[ServiceObservation, ...]


@dataclass(frozen=True)
class ScanRequest:
    """What one run is asked to do: where, how fast, and which phases."""

    site: str
    interface: str
    subnets: tuple[str, ...]
    rate: int = 2000
    retries: int = 2
    timeout: float = 1.0
    tcp_ping: bool = True  # routed addresses silent to echo get TCP SYN 443 / ACK 80 ([scan])
    services: bool = True
    ports: str = ""
    dns_servers: tuple[str, ...] = ()
    name_timeout: float = 1.0
    dhcp_wait: float = 6.0  # seconds the DHCP probe listens at least ([scan] dhcp_wait)
    # How long the slowest rogue DHCP server heard lately took to offer (its finding's
    # seconds_to_offer): the probe listens long enough for it. Handed over once the ledger is open.
    dhcp_slowest: float | None = None
    ra_wait: float = 3.0  # seconds the ipv6 phase collects RAs and ADVERTISEs ([scan] ra_wait)
    full: bool = False
    full_rescan_hours: int = 24
    # The phases to run (Phase values); services run only when `services` is true as well.
    phases: tuple[str, ...] = tuple(phase.value for phase in Phase)
    # Services of the last service scan by IP; None asks for a full service scan.
    known_services: Mapping[str, KnownHost] | None = None
    # Switches and routers the snmp phase polls ([[snmp.devices]]; no secrets, only where they are)
    snmp_devices: tuple[SnmpDevice, ...] = ()
    snmp_timeout: float = 2.0
    snmp_retries: int = 2
    # Every registered static IPv6 address (Binding.ipv6): the ipv6 phase solicits those inside
    # the scan's IPv6 prefixes. Handed over with the service baseline, once the ledger is open.
    static_ipv6: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnmpDevice:
    """A switch or router listed in `[[snmp.devices]]`: where it is and where its secrets are.

    Holds no secret itself, only the environment variable or file (mode 600) that has it, so a
    device can be recorded in a run's settings and printed in errors.
    """

    host: str
    name: str
    port: int = 161
    version: str = "2c"  # "1", "2c" or "3"
    community_env: str = ""
    community_file: str = ""
    user: str = ""
    auth_proto: str = ""  # md5, sha, sha224, sha256, sha384, sha512
    auth_key_env: str = ""
    auth_key_file: str = ""
    priv_proto: str = ""  # aes
    priv_key_env: str = ""
    priv_key_file: str = ""
    roles: tuple[str, ...] = ("switch",)


@dataclass(frozen=True)
class SnmpSystem:
    """SNMPv2-MIB system group of a device."""

    sys_name: str = ""
    sys_descr: str = ""
    sys_object_id: str = ""
    uptime: int = 0  # hundredths of a second (TimeTicks)


@dataclass(frozen=True)
class ArpEntry:
    """One row of a router's ARP table (IP-MIB ipNetToPhysicalTable or ipNetToMediaTable)."""

    ip: str
    mac: str
    if_index: int
    if_name: str


@dataclass(frozen=True)
class FdbEntry:
    """One MAC a switch learnt on a port (Q-BRIDGE-MIB or BRIDGE-MIB forwarding table)."""

    mac: str
    vlan: int | None
    port: int  # the bridge port number
    if_index: int | None
    if_name: str


@dataclass(frozen=True)
class LldpNeighbour:
    """A device an LLDP-speaking neighbour announced on one of our ports (LLDP-MIB lldpRemTable)."""

    local_if_name: str
    remote_chassis_id: str
    remote_port_id: str
    remote_sys_name: str


@dataclass(frozen=True)
class SnmpPoll:
    """What one poll of one configured device returned; `warning` says why it is incomplete.

    `unread_vlans` are the VLANs whose forwarding table the agent would not serve (a Catalyst's
    per-VLAN instance, community@VLAN or context vlan-N): the poll still answered and what it
    read is judged, but a finding it does not raise again may sit on such a VLAN, so a poll with
    unread VLANs resolves none.
    """

    device: str
    host: str
    answered: bool
    warning: str = ""
    unread_vlans: tuple[int, ...] = ()
    system: SnmpSystem = SnmpSystem()
    arp: tuple[ArpEntry, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    lldp: tuple[LldpNeighbour, ...] = ()
    roles: tuple[str, ...] = ()
