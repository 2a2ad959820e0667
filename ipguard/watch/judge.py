"""What the frames of the link come to: claims set against the ledger by the scan's own policies.

A scan judges one run's replies at once; a watcher judges a stream. The `Judge` keeps what the
stream needs, bounded, and hands each new fact to `ipguard.policies.evaluate`, so that a frame is
judged by exactly the rules (and severities) a scan applies:

- each (IP, MAC) claim is judged alone when first heard and again every REJUDGE_SECONDS (so that
  `last_seen` moves): unregistered-host, ip-mac-mismatch, mac-moved and the lifecycle kinds;
- the MACs that claimed one IP within `[watch] duplicate_window` seconds are judged together:
  duplicate-ip (arpwatch's "flip flop");
- DHCP OFFERs, ACKs and NAKs, and DHCPv6 ADVERTISEs and REPLYs, are a server's answers:
  rogue-dhcp; a client's hostname at the address it asks for: hostname-policy;
- an IPv6 Neighbor Advertisement (Solicitation) is a claim of its target (source) address,
  judged as an ARP claim is (a registered static IPv6 claimed by another MAC: ip-mac-mismatch);
  a Router Advertisement is judged as the ipv6 phase's are: rogue-ra (from a MAC without role
  router or gateway, or announcing a prefix outside the subnets).

IPv6 neighbours (`ipguard.watch.neighbours`): the claims of a MAC that is no active record here
are folded into its stable address, one finding per MAC, as a scan folds them; a registered
router's link-local address, learned from its RAs, is judged as one of its addresses (another MAC
claiming it: ip-mac-mismatch, the gateway spoofed).

Memory is bounded: at most MAX_MACS_PER_ADDRESS MACs per IP and MAX_ADDRESSES IPs in the window,
MAX_JUDGED remembered judgements. So are the work and the findings a flood of made-up stations
causes: claims of which neither the IP nor the MAC is in the ledger (each would be one more
unregistered-host), and DHCP offers and router advertisements from servers and routers it does
not know (one more rogue-dhcp or rogue-ra each: flood_router26) are judged at most
NEW_HOSTS_PER_SECOND (with a burst of NEW_HOSTS_BURST); a claim on a registered address or by a
registered MAC (a spoof, a move) is always judged. DHCP clients with a MAC not in
the ledger (a starvation flood's) are kept within a budget of their own, and a client's same
message only once every REJUDGE_SECONDS: each kept one is a fingerprint written to the ledger.
What does not fit is counted in `ignored`, never kept; a station refused once is judged when it
speaks again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ipguard.config import PolicySettings
from ipguard.model import (
    Binding,
    Dhcp6Advert,
    DhcpOffer,
    Finding,
    FindingKind,
    NameObservation,
    NameSource,
    Observation,
    ObservationSource,
    RouterAdvert,
)
from ipguard.policies import LedgerIndex, RunFacts, evaluate
from ipguard.policies.base import AddressRanges
from ipguard.scanners.passive import ArpClaim, DhcpClient, Parsed
from ipguard.watch.budget import Budget
from ipguard.watch.neighbours import Neighbours, is_link_local
from ipguard.watch.verdicts import MAX_MACS_PER_ADDRESS, Verdicts

ARP = ObservationSource.ARP
NDP = ObservationSource.NDP
REJUDGE_SECONDS = 60.0
MAX_ADDRESSES = 65_536
MAX_JUDGED = 262_144
MAX_OPS = 4  # kinds of ARP frame remembered per pair in a batch, for the evidence

# What a single claim can show, as the scan's policies name it.
PAIR_KINDS = frozenset({
    FindingKind.UNREGISTERED_HOST, FindingKind.IP_MAC_MISMATCH, FindingKind.MAC_MOVED,
    FindingKind.SUSPENDED_DEVICE_ONLINE, FindingKind.ISOLATED_DEVICE_ONLINE,
    FindingKind.GUEST_EXPIRED,
})  # fmt: skip
WATCH_KINDS = PAIR_KINDS | {
    FindingKind.DUPLICATE_IP,
    FindingKind.ROGUE_DHCP,
    FindingKind.HOSTNAME_POLICY,
    FindingKind.ROGUE_RA,
}


class Judge:
    """Judges the frames of one site's link against a ledger snapshot (see the module docstring)."""

    def __init__(
        self,
        *,
        site: str,
        subnets: Sequence[str],
        policy: PolicySettings,
        duplicate_window: float,
    ) -> None:
        self.site = site
        self.subnets = tuple(subnets)
        self.scope = AddressRanges(subnets)
        # Watching the link's IPv6 (a prefix in the subnets): its link-local addresses count too,
        # as in the scan's ipv6 phase (a host may use no other; a router is reached at one).
        self._link_local_too = any(":" in subnet for subnet in self.subnets)
        self.policy = policy
        self.duplicate_window = duplicate_window
        self.ignored: Counter[str] = Counter()
        self._records: tuple[Binding, ...] = ()
        self._index = LedgerIndex((), site)
        self._first_seen: dict[tuple[str, str], datetime] = {}
        self._new_hosts, self._new_clients = Budget(), Budget()
        self._scoped: dict[str, bool] = {}
        self._window: dict[str, dict[str, float]] = {}  # IP -> MAC -> when last claimed
        self._judged: dict[tuple[str, str], float] = {}  # a pair, or (kind, key) -> when
        self._pruned = 0.0
        self._ledger: tuple[Binding, ...] = ()  # as loaded (`_records`: with routers' addresses)
        self._neighbours = Neighbours()

    def load(
        self, ledger: Iterable[Binding], first_seen: Mapping[tuple[str, str], datetime]
    ) -> None:
        """Take a new ledger snapshot; everything is judged afresh against it."""
        self._ledger = tuple(ledger)
        self._index = LedgerIndex(self._ledger, self.site)
        self._with_routers()
        self._first_seen = dict(first_seen)
        self._judged.clear()
        self._neighbours.reported(first_seen, afresh=True)

    def _with_routers(self) -> None:
        """The snapshot judged against: the ledger, routers' learned link-local addresses in it."""
        self._records = self._neighbours.with_routers(self._ledger, self.site)
        if self._records != self._ledger:
            self._index = LedgerIndex(self._records, self.site)

    @property
    def records(self) -> tuple[Binding, ...]:
        """The ledger snapshot, as loaded."""
        return self._ledger

    @property
    def first_seen(self) -> Mapping[tuple[str, str], datetime]:
        """When each open finding (kind, subject) was first seen, as far as this judge knows."""
        return self._first_seen

    def note_first_seen(self, first_seen: Mapping[tuple[str, str], datetime]) -> None:
        """When findings just opened were first seen (for the unregistered grace period)."""
        self._first_seen.update(first_seen)
        self._neighbours.reported(first_seen)

    def judge(self, items: Sequence[tuple[float, Parsed]], now: datetime) -> Verdicts:
        """Judge a batch of parsed frames, stamped with their arrival (monotonic seconds)."""
        verdicts = Verdicts()
        pairs: dict[str, list[str]] = {}
        touched: set[str] = set()
        for moment, item in items:
            if isinstance(item, ArpClaim):
                if not self._claim(item, moment, verdicts, pairs):
                    continue
                touched.add(item.ip)
            elif isinstance(item, DhcpOffer):
                # A NAK after an OFFER (or the reverse) is news: the finding says both.
                said = f"{item.server_ip}|{item.server_mac}|{item.message}"
                if self._news(("offer", said), moment, item.server_ip, item.server_mac, verdicts):
                    verdicts.offers.append(item)
            elif isinstance(item, Dhcp6Advert):
                said = f"{item.server_ip}|{item.server_mac}"
                if self._news(("dhcp6", said), moment, item.server_ip, item.server_mac, verdicts):
                    verdicts.dhcp6.append(item)
            elif isinstance(item, RouterAdvert):
                if self._neighbours.learn_router(item, self._index):
                    self._with_routers()  # its address is the router's from now on
                said = f"{item.source_ip}|{item.source_mac}|{item.frame_mac}|"
                said += ",".join(item.prefixes)
                said += f"|{','.join(item.evasion)}"  # an RA Guard evasion is news of its own
                if self._news(("advert", said), moment, item.source_ip, item.source_mac, verdicts):
                    verdicts.adverts.append(item)
            else:
                self._client(item, moment, verdicts)
            verdicts.judged += 1
        latest = max((moment for moment, _item in items), default=0.0)
        self._prune(latest)
        verdicts.findings += self._pairs(pairs, now, verdicts)
        verdicts.findings += self._duplicates(touched, latest, now)
        if verdicts.offers or verdicts.dhcp6:
            found = self._evaluate(
                now, dhcp_offers=tuple(verdicts.offers), dhcp6_adverts=tuple(verdicts.dhcp6)
            )
            verdicts.findings += [f for f in found if f.kind is FindingKind.ROGUE_DHCP]
        if verdicts.adverts:
            # The subnets, for once: a registered router's prefix outside them is rogue-ra too.
            found = self._evaluate(
                now, router_adverts=tuple(verdicts.adverts), subnets=self.subnets
            )
            verdicts.findings += [f for f in found if f.kind is FindingKind.ROGUE_RA]
        verdicts.findings += self._hostnames(verdicts.clients.values(), latest, now)
        return verdicts

    def _claim(
        self, claim: ArpClaim, moment: float, verdicts: Verdicts, pairs: dict[str, list[str]]
    ) -> bool:
        """Remember one claim; True when it is in scope and kept."""
        if not self._in_scope(claim.ip) and claim.ip not in self._neighbours.routers:
            self._neighbours.heard(claim.ip, claim.mac)
            self.ignored["out_of_scope"] += 1
            return False
        macs = self._window.get(claim.ip)
        if macs is None:
            if len(self._window) >= MAX_ADDRESSES:
                self._prune(moment, force=True)
            if len(self._window) >= MAX_ADDRESSES:
                self.ignored["over_address_limit"] += 1
                return False
            macs = self._window[claim.ip] = {}
        key = (claim.ip, claim.mac)
        if claim.mac not in macs and len(macs) >= MAX_MACS_PER_ADDRESS:
            # The window is full (a flood, or made-up MACs kept claiming an address to hide the
            # real spoofer behind them): no more MACs are remembered for duplicate-ip, but the
            # claim is still judged alone, within the made-up stations' budget.
            if not self._due(key, moment):
                return False
            if not self._new_hosts.take(moment):
                del self._judged[key]
                self.ignored["over_mac_limit"] += 1
                return False
        else:
            macs[claim.mac] = moment
            if not self._due(key, moment):
                self._note(claim, key, verdicts)
                return True
            if not self._known(claim) and not self._new_hosts.take(moment):
                del self._judged[key]
                self.ignored["over_new_host_budget"] += 1
                return True
        self._note(claim, key, verdicts)
        pairs.setdefault(claim.ip, []).append(claim.mac)
        verdicts.evaluated += 1
        return True

    @staticmethod
    def _note(claim: ArpClaim, key: tuple[str, str], verdicts: Verdicts) -> None:
        """The claim's ARP kind and sender, for the evidence of what it is judged to be."""
        ops = verdicts.ops.setdefault(key, [])
        if claim.op not in ops and len(ops) < MAX_OPS:
            ops.append(claim.op)
        if claim.frame_mac:
            senders = verdicts.senders.setdefault(key, [])
            if claim.frame_mac not in senders and len(senders) < MAX_OPS:
                senders.append(claim.frame_mac)

    def _in_scope(self, ip: str) -> bool:
        """`ip in self.scope`, remembered: a flood repeats the same few hundred addresses."""
        inside = self._scoped.get(ip)
        if inside is None:
            if len(self._scoped) >= MAX_ADDRESSES:
                self._scoped.clear()
            inside = ip in self.scope or (self._link_local_too and is_link_local(ip))
            self._scoped[ip] = inside
        return inside

    def _known(self, claim: ArpClaim) -> bool:
        """True when the ledger knows the claim's IP or MAC, whatever its status or site."""
        index = self._index
        return (
            claim.ip in index.active_by_ip
            or claim.ip in index.inactive_by_ip
            or claim.ip in index.isolated_by_ip
            or bool(index.records_of(claim.mac))
        )

    def _news(
        self, key: tuple[str, str], moment: float, ip: str, mac: str, verdicts: Verdicts
    ) -> bool:
        """True (and counted as evaluated) when a server's answer or a router's advertisement is
        to be judged now: not judged within REJUDGE_SECONDS, and within the budget."""
        if self._due(key, moment) and self._afford(key, moment, ip, mac):
            verdicts.evaluated += 1
            return True
        return False

    def _afford(self, key: tuple[str, str], moment: float, ip: str, mac: str) -> bool:
        """A DHCP server or router the ledger knows (its address or MAC) is always judged; a
        made-up one (flood_router26's random routers, an OFFER flood) within the budget of
        made-up stations: each would be one more finding in the ledger."""
        index = self._index
        if ip in index.active_by_ip or index.records_of(mac) or self._new_hosts.take(moment):
            return True
        del self._judged[key]
        self.ignored["over_new_host_budget"] += 1
        return False

    def _client(self, client: DhcpClient, moment: float, verdicts: Verdicts) -> None:
        """Keep what a DHCP client says when it is news (its fingerprint is then stored): a
        starvation flood's made-up MACs (dhcpstarv, yersinia) within a budget of their own."""
        said = f"{client.mac}|{client.ip}|{client.hostname}|{client.parameters}"
        key = ("client", f"{said}|{client.vendor_class}")
        if not self._due(key, moment):
            return
        if not self._index.records_of(client.mac) and not self._new_clients.take(moment):
            del self._judged[key]
            self.ignored["over_new_client_budget"] += 1
            return
        verdicts.clients[client.mac] = client

    def _due(self, key: tuple[str, str], moment: float) -> bool:
        """True when `key` was not judged within REJUDGE_SECONDS (and marks it judged now)."""
        last = self._judged.get(key)
        if last is not None and moment - last < REJUDGE_SECONDS:
            return False
        if len(self._judged) >= MAX_JUDGED:
            self._judged.clear()  # judging again costs little; remembering without bound, memory
        self._judged[key] = moment
        return True

    def _prune(self, moment: float, *, force: bool = False) -> None:
        """Forget claims older than the duplicate window (at most once a second)."""
        if not force and moment - self._pruned < 1.0:
            return
        self._pruned = moment
        oldest = moment - self.duplicate_window
        for ip in list(self._window):
            macs = self._window[ip]
            for mac in [mac for mac, when in macs.items() if when < oldest]:
                del macs[mac]
            if not macs:
                del self._window[ip]

    def _evaluate(self, now: datetime, **extra: Any) -> list[Finding]:
        # No subnets: a watcher covers nothing the way a sweep does, so nothing is found stale.
        facts = RunFacts(
            now=now,
            subnets=(),
            observations=(),
            ledger=self._records,
            first_seen=self._first_seen,
            site=self.site,
        )
        return evaluate(replace(facts, **extra), self.policy, self._index)

    def _pairs(
        self, pairs: dict[str, list[str]], now: datetime, verdicts: Verdicts
    ) -> list[Finding]:
        """Each new claim judged alone: in rounds, one MAC per IP per round."""
        found: list[Finding] = []
        pending = {ip: list(macs) for ip, macs in pairs.items()}
        while pending:
            round_ = tuple(
                Observation(ip, macs.pop(0), now, NDP if ":" in ip else ARP)
                for ip, macs in pending.items()
            )
            pending = {ip: macs for ip, macs in pending.items() if macs}
            verdicts.sightings.extend(round_)
            found += [
                finding
                for finding in self._evaluate(
                    now, observations=self._neighbours.anchored(round_, self._index) + round_
                )
                if finding.kind in PAIR_KINDS
            ]
        return found

    def _duplicates(self, touched: set[str], latest: float, now: datetime) -> list[Finding]:
        """IPs claimed by two or more MACs within the duplicate window."""
        oldest = latest - self.duplicate_window
        together = []
        for ip in touched:
            macs = sorted(mac for mac, when in self._window.get(ip, {}).items() if when >= oldest)
            if len(macs) > 1 and self._due(("duplicate", f"{ip}|{','.join(macs)}"), latest):
                source = NDP if ":" in ip else ARP
                together += [Observation(ip, mac, now, source) for mac in macs]
        if not together:
            return []
        found = self._evaluate(now, observations=tuple(together))
        return [finding for finding in found if finding.kind is FindingKind.DUPLICATE_IP]

    def _hostnames(
        self, clients: Iterable[DhcpClient], latest: float, now: datetime
    ) -> list[Finding]:
        """A client's hostname, judged at the address it asks for, as that address's name."""
        seen, names = [], []
        for client in clients:
            if not client.hostname or client.ip is None or not self._in_scope(client.ip):
                continue
            if self._due(("hostname", f"{client.mac}|{client.ip}|{client.hostname}"), latest):
                # The pair the request stands for, so that only a registered pair is held to the
                # rule (not stored: the client's own ARP is what proves it is there).
                seen.append(Observation(client.ip, client.mac, now, ARP))
                names.append(NameObservation(client.ip, client.hostname, NameSource.DHCP))
        if not names:
            return []
        found = self._evaluate(now, observations=tuple(seen), names=tuple(names))
        return [finding for finding in found if finding.kind is FindingKind.HOSTNAME_POLICY]
