"""Who answered where: every reply of a run set against the ledger once, for every family to share.

Each MAC that answered at an IP (or the IP alone, for an ICMP reply without a MAC) gets exactly one
`Verdict`, decided in this order:

1. A MAC of a record flagged isolated (any status) is `ISOLATED` wherever it answers, and so is a
   MAC-less reply at an isolated record's IP. Nothing else is said about it.
2. A registered router or gateway MAC answering for an address not its own is `PROXY_ARP`: proxy
   ARP is documented router behaviour, so such replies raise nothing, even for addresses registered
   to other devices. The exception is an address registered to another router or gateway: nobody
   answers for a gateway but the gateway, so there the reply is judged like any other.
3. Two or more remaining MACs at one IP make it a duplicate: the registered MAC among them is still
   `AUTHORISED`, each other one is `DUPLICATE` (the duplicate-ip finding covers them all). MACs
   that are all the IP's record's own (its `mac` and `alt_macs`: a bond, a failover pair) are no
   duplicate: the IP is `AUTHORISED`.
4. A single MAC is `AUTHORISED` when an active record binds the IP to it (its `mac` or one of its
   `alt_macs`; "a record's MAC" below means any of them); `MISMATCH` when an active
   record binds the IP to another MAC (this wins over everything that follows: the IP's owner is
   the one harmed, whoever the offender is); `SUSPENDED` when a suspended or retired record binds
   this very pair; `MOVED` when the MAC holds active records at other IPs, or active records of
   another site (at any IP, its own included); `SUSPENDED` when the MAC only holds suspended or
   retired records; otherwise `UNREGISTERED`.
5. A MAC-less reply (ICMP from another segment) cannot be checked against a MAC: it is `AUTHORISED`
   at an active record's IP, `SUSPENDED` at an inactive record's IP, and `UNREGISTERED` elsewhere.
   When the same IP also answered with a MAC, the MAC-less reply adds nothing.

Only active records authorise. The roles of a device are those of every active record of its MAC.

IPv6 (observations of the ipv6 phase): a record's static IPv6 addresses (`Binding.ipv6`) are its
IPs as well, so the same order applies: the registered MAC is `AUTHORISED`, another MAC is
`MISMATCH`, two MACs a duplicate. At an IPv6 address no record holds, an active MAC of this site
is `AUTHORISED` by its record: a device may use any address the network gives it (SLAAC, EUI-64,
privacy, DHCPv6, its link-local one), so that is no move. Isolated, suspended, other-site and
unregistered MACs are judged as at an IPv4 address.

Sites: a record scoped to a site (`Binding.site`) is valid in that site's runs only; an unscoped
record is valid everywhere. In another site's run, an active scoped record authorises nothing: it
holds no address there, grants no roles and no services. It still identifies its device, so that a
device that moved from one site to another is `MOVED` (one mac-moved, at the site where it turned
up), not an unregistered host. Isolation and suspended or retired registrations follow a device to
every site. `RunFacts.site` empty means no scoping at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ipguard.model import (
    Binding,
    DeviceStatus,
    NameObservation,
    Observation,
    Role,
    ServiceObservation,
)
from ipguard.policies.base import ROUTING_ROLES, RunFacts, is_gateway, iso, who

_NO_ROLES: frozenset[Role] = frozenset()
_STATUS_RANK = {DeviceStatus.ACTIVE: 0, DeviceStatus.SUSPENDED: 1, DeviceStatus.RETIRED: 2}


class Verdict(enum.StrEnum):
    """How one answer at one IP stands against the ledger."""

    AUTHORISED = "authorised"  # the registered pair, or a MAC-less reply at a registered IP
    PROXY_ARP = "proxy-arp"  # a registered router/gateway answering for another address
    ISOLATED = "isolated"  # a device flagged isolated
    DUPLICATE = "duplicate"  # one of several MACs answering one IP
    MISMATCH = "mismatch"  # a registered IP answering from another MAC
    SUSPENDED = "suspended"  # a suspended or retired registration answering
    MOVED = "moved"  # a registered MAC answering at an IP not registered to it
    UNREGISTERED = "unregistered"  # matches no record


def replies_detail(observations: Iterable[Observation]) -> list[dict[str, Any]]:
    """Each MAC (None: ICMP without one) that answered, with its replies, for a detail."""
    tally: dict[str | None, dict[str, Any]] = {}
    for observation in observations:
        mac = observation.mac or None
        entry = tally.get(mac)
        if entry is None:
            tally[mac] = {
                "mac": mac,
                "replies": 1,
                "sources": [observation.source],
                "first_seen_at": observation.seen_at,
                "ttl": observation.ttl,
                "vendor": observation.vendor,
            }
            continue
        entry["replies"] += 1
        if observation.source not in entry["sources"]:
            entry["sources"].append(observation.source)
        entry["first_seen_at"] = min(entry["first_seen_at"], observation.seen_at)
        entry["ttl"] = observation.ttl if observation.ttl is not None else entry["ttl"]
        entry["vendor"] = entry["vendor"] or observation.vendor
    for entry in tally.values():
        entry["sources"].sort()
        entry["first_seen_at"] = iso(entry["first_seen_at"])
    return list(tally.values())


class Sighting(NamedTuple):
    """One answer at one IP, with its verdict and the record that explains it.

    `record` is the authorising record (AUTHORISED), the IP's registered owner (MISMATCH, and
    DUPLICATE when the IP is registered), the isolated or inactive record (ISOLATED, SUSPENDED), one
    of the MAC's own records (MOVED), or None.
    """

    ip: str
    mac: str | None
    verdict: Verdict
    record: Binding | None = None


@dataclass(frozen=True)
class Host:
    """Whatever answers at an IP, as far as facts that carry only an IP (ports, names) can tell."""

    ip: str
    mac: str | None  # the MAC to name in a finding's subject
    record: Binding | None  # the active record authorising what answers here
    roles: frozenset[Role]  # what the device may be (empty when unregistered or unknown)
    verdict: Verdict | None  # None when nothing answered the sweep at this IP


class LedgerIndex:
    """The ledger snapshot indexed once by IP and MAC, split by status and by site.

    `active_by_*` and `router_macs` hold the active records valid at `site`; active records of
    other sites are only in `elsewhere_by_mac`.
    """

    def __init__(self, ledger: Iterable[Binding], site: str = "") -> None:
        self.records: tuple[Binding, ...] = tuple(ledger)
        self.site = site
        self.active_by_ip: dict[str, Binding] = {}
        self.active_by_mac: dict[str, list[Binding]] = {}
        self.elsewhere_by_mac: dict[str, list[Binding]] = {}
        self.inactive_by_ip: dict[str, list[Binding]] = {}
        self.inactive_by_mac: dict[str, list[Binding]] = {}
        self.isolated_by_ip: dict[str, list[Binding]] = {}
        self.isolated_by_mac: dict[str, list[Binding]] = {}
        self.router_macs: set[str] = set()
        active, by_ip, by_mac = DeviceStatus.ACTIVE, self.active_by_ip, self.active_by_mac
        for record in self.records:
            macs = record.macs  # its own MAC, then its other ones (a bond, a failover twin)
            if record.status is active and site and record.site and record.site != site:
                for mac in macs:
                    self.elsewhere_by_mac.setdefault(mac, []).append(record)
            elif record.status is active:
                # An active IP is unique in the ledger; should it not be, the first record wins.
                if record.ip not in by_ip:
                    by_ip[record.ip] = record
                for ip in record.ipv6:  # its static IPv6 addresses (few records have any)
                    by_ip.setdefault(ip, record)
                for mac in macs:
                    same_mac = by_mac.get(mac)
                    if same_mac is None:
                        by_mac[mac] = [record]
                    else:
                        same_mac.append(record)
                if not record.roles.isdisjoint(ROUTING_ROLES):
                    self.router_macs.update(macs)
            else:
                for ip in (record.ip, *record.ipv6) if record.ipv6 else (record.ip,):
                    self.inactive_by_ip.setdefault(ip, []).append(record)
                for mac in macs:
                    self.inactive_by_mac.setdefault(mac, []).append(record)
            if record.isolated:
                for ip in (record.ip, *record.ipv6):
                    self.isolated_by_ip.setdefault(ip, []).append(record)
                for mac in macs:
                    self.isolated_by_mac.setdefault(mac, []).append(record)
        self._roles: dict[str, frozenset[Role]] = {}

    def applies(self, record: Binding) -> bool:
        """True when the record is valid in this run's site (unscoped, or scoped to it)."""
        return not self.site or not record.site or record.site == self.site

    def records_of(self, mac: str) -> list[Binding]:
        """Every record of a MAC, any site and status: active here, active elsewhere, inactive."""
        return [
            *self.active_by_mac.get(mac, ()),
            *self.elsewhere_by_mac.get(mac, ()),
            *self.inactive_by_mac.get(mac, ()),
        ]

    def roles_of(self, mac: str | None) -> frozenset[Role]:
        """The roles a device may take: those of every active record of its MAC."""
        if mac is None:
            return _NO_ROLES
        roles = self._roles.get(mac)
        if roles is None:
            records = self.active_by_mac.get(mac, ())
            roles = frozenset().union(*(record.roles for record in records))
            self._roles[mac] = roles
        return roles


def pick(records: Iterable[Binding], ip: str) -> Binding:
    """The record of several that best explains an answer at `ip`: same IP, then the most alive."""
    return min(records, key=lambda record: (record.ip != ip, _STATUS_RANK.get(record.status, 9)))


class Sightings:
    """A run's replies grouped by IP, each with its verdict; built once per evaluation.

    The common case, a registered pair answering, is kept apart in `authorised` (IP -> record);
    every other answer is a `Sighting` in `by_ip`.
    """

    def __init__(self, facts: RunFacts, ledger: LedgerIndex | None = None) -> None:
        self.ledger = ledger if ledger is not None else LedgerIndex(facts.ledger, facts.site)
        self.observations: dict[str, list[Observation]] = {}
        for observation in facts.observations:
            group = self.observations.get(observation.ip)
            if group is None:
                self.observations[observation.ip] = [observation]
            else:
                group.append(observation)
        self.authorised: dict[str, Binding] = {}
        self.by_ip: dict[str, list[Sighting]] = {}
        self.duplicates: dict[str, tuple[str, ...]] = {}  # IP -> every MAC that answered it
        # MAC -> the IPv6 addresses no record holds where its record authorised it (see above)
        self.ipv6_by_mac: dict[str, list[str]] = {}
        owners, isolated = self.ledger.active_by_ip, self.ledger.isolated_by_mac
        for ip, group in self.observations.items():
            if len(group) == 1:
                macs = [group[0].mac] if group[0].mac else []
            else:
                macs = list(dict.fromkeys(o.mac for o in group if o.mac))
            if len(macs) == 1:
                owner = owners.get(ip)
                if owner is not None and macs[0] in owner.macs and macs[0] not in isolated:
                    self.authorised[ip] = owner
                    continue
            if macs:
                self._classify(ip, macs)
            else:
                self._classify_mac_less(ip)
        self.services: dict[str, list[ServiceObservation]] = {}
        for service in facts.services:
            self.services.setdefault(service.ip, []).append(service)
        self.names: dict[str, list[NameObservation]] = {}
        for name in facts.names:
            self.names.setdefault(name.ip, []).append(name)

    def __iter__(self) -> Iterator[Sighting]:
        """Every answer but the authorised ones, in the order the IPs first answered."""
        for sightings in self.by_ip.values():
            yield from sightings

    def with_verdict(self, verdict: Verdict) -> Iterator[Sighting]:
        """Every sighting with this verdict (AUTHORISED ones are in `authorised`)."""
        return (sighting for sighting in self if sighting.verdict is verdict)

    def host(self, ip: str) -> Host:
        """Who answers at `ip`: the authorised record if there is one, else the lone answerer."""
        owner = self.authorised.get(ip)
        if owner is not None:
            return Host(ip, owner.mac, owner, self.ledger.roles_of(owner.mac), Verdict.AUTHORISED)
        answers = [s for s in self.by_ip.get(ip, ()) if s.verdict is not Verdict.PROXY_ARP]
        if len(answers) == 1:
            (sighting,) = answers
            mac = sighting.mac
            if mac is None and sighting.verdict in (Verdict.ISOLATED, Verdict.SUSPENDED):
                mac = None if sighting.record is None else sighting.record.mac
            roles = self.ledger.roles_of(mac) if sighting.verdict is Verdict.MOVED else _NO_ROLES
            return Host(ip, mac, None, roles, sighting.verdict)
        if answers:
            return Host(ip, None, None, _NO_ROLES, Verdict.DUPLICATE)
        record = self.ledger.active_by_ip.get(ip)
        if record is None:
            return Host(ip, None, None, _NO_ROLES, None)
        return Host(ip, record.mac, record, self.ledger.roles_of(record.mac), None)

    def label(self, host: Host) -> str:
        """Who a host is, for a summary: "Li Wei, math", "aa:bb:…, unregistered"."""
        if host.record is not None:
            return who(host.record)
        if host.mac is None:
            return "several MACs" if host.verdict is Verdict.DUPLICATE else "unregistered"
        if host.mac in self.ledger.active_by_mac:
            record = self.ledger.active_by_mac[host.mac][0]
            return f"{host.mac}, registered to {who(record)} at {record.ip}"
        if host.mac in self.ledger.elsewhere_by_mac:
            record = self.ledger.elsewhere_by_mac[host.mac][0]
            return f"{host.mac}, registered to {who(record)} at {record.ip}, site {record.site}"
        if host.mac in self.ledger.inactive_by_mac:
            record = self.ledger.inactive_by_mac[host.mac][0]
            return f"{host.mac}, {record.status.value} registration of {who(record)}"
        return f"{host.mac}, unregistered"

    def observed(self, ip: str, mac: str | None = None) -> list[dict[str, Any]]:
        """Every MAC (or just `mac`) that answered at `ip`, with its replies, for a detail."""
        observations = self.observations.get(ip, ())
        if mac is not None:
            observations = [o for o in observations if o.mac == mac]
        return replies_detail(observations)

    def open_ports(self, ip: str) -> list[dict[str, Any]]:
        """The open ports found at `ip`, for the detail of a finding about the host."""
        seen: dict[str, dict[str, Any]] = {}
        for service in self.services.get(ip, ()):
            port = f"{service.proto}/{service.port}"
            seen.setdefault(
                port,
                {
                    "port": port,
                    "service": service.service,
                    "product": service.product,
                    "version": service.version,
                },
            )
        return [seen[port] for port in sorted(seen, key=_port_key)]

    def names_at(self, ip: str) -> list[dict[str, str]]:
        """The names `ip` goes by, for the detail of a finding about the host."""
        return [{"name": name.name, "source": name.source} for name in self.names.get(ip, ())]

    def _add(self, ip: str, mac: str | None, verdict: Verdict, record: Binding | None) -> None:
        self.by_ip.setdefault(ip, []).append(Sighting(ip, mac, verdict, record))

    def _classify(self, ip: str, macs: list[str]) -> None:
        ledger = self.ledger
        owner = ledger.active_by_ip.get(ip)
        remaining = []
        for mac in macs:
            isolated = ledger.isolated_by_mac.get(mac)
            if isolated:
                self._add(ip, mac, Verdict.ISOLATED, pick(isolated, ip))
            elif mac in ledger.router_macs and not (
                owner is not None and (mac in owner.macs or is_gateway(owner))
            ):
                self._add(ip, mac, Verdict.PROXY_ARP, pick(ledger.active_by_mac[mac], ip))
            else:
                remaining.append(mac)
        if len(remaining) > 1 and owner is not None and set(remaining) <= set(owner.macs):
            self.authorised[ip] = owner  # MACs of one device (a bond, a failover pair): its own
        elif len(remaining) > 1:
            self.duplicates[ip] = tuple(remaining)
            for mac in remaining:
                if owner is not None and mac in owner.macs:
                    self.authorised[ip] = owner
                else:
                    self._add(ip, mac, Verdict.DUPLICATE, owner)
        elif remaining:
            self._classify_pair(ip, remaining[0], owner)

    def _classify_pair(self, ip: str, mac: str, owner: Binding | None) -> None:
        ledger = self.ledger
        if owner is not None:
            if mac in owner.macs:
                self.authorised[ip] = owner
            else:
                self._add(ip, mac, Verdict.MISMATCH, owner)
            return
        same_pair = [r for r in ledger.inactive_by_ip.get(ip, ()) if mac in r.macs]
        if same_pair:
            self._add(ip, mac, Verdict.SUSPENDED, pick(same_pair, ip))
        elif mac in ledger.active_by_mac and ":" in ip:  # any IPv6 address the link gave it
            self.authorised[ip] = ledger.active_by_mac[mac][0]
            self.ipv6_by_mac.setdefault(mac, []).append(ip)
        elif mac in ledger.active_by_mac:
            self._add(ip, mac, Verdict.MOVED, ledger.active_by_mac[mac][0])
        elif mac in ledger.elsewhere_by_mac:
            self._add(ip, mac, Verdict.MOVED, pick(ledger.elsewhere_by_mac[mac], ip))
        elif mac in ledger.inactive_by_mac:
            self._add(ip, mac, Verdict.SUSPENDED, pick(ledger.inactive_by_mac[mac], ip))
        else:
            self._add(ip, mac, Verdict.UNREGISTERED, None)

    def _classify_mac_less(self, ip: str) -> None:
        ledger = self.ledger
        owner = ledger.active_by_ip.get(ip)
        if owner is not None and not owner.isolated:
            self.authorised[ip] = owner
        elif owner is not None:
            self._add(ip, None, Verdict.ISOLATED, owner)
        elif ip in ledger.isolated_by_ip:
            self._add(ip, None, Verdict.ISOLATED, pick(ledger.isolated_by_ip[ip], ip))
        elif ip in ledger.inactive_by_ip:
            self._add(ip, None, Verdict.SUSPENDED, pick(ledger.inactive_by_ip[ip], ip))
        else:
            self._add(ip, None, Verdict.UNREGISTERED, None)


def _port_key(port: str) -> tuple[str, int]:
    proto, _, number = port.partition("/")
    return (proto, int(number) if number.isdigit() else 0)
