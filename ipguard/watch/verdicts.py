"""What one batch of a watcher's frames came to (`Verdicts`), and the evidence a finding keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ipguard.model import Dhcp6Advert, DhcpOffer, Finding, Observation, RouterAdvert
from ipguard.scanners.passive import DhcpClient

MAX_MACS_PER_ADDRESS = 8


@dataclass
class Verdicts:
    """What one batch of frames came to."""

    findings: list[Finding] = field(default_factory=list)
    sightings: list[Observation] = field(default_factory=list)  # to store in the watch run
    offers: list[DhcpOffer] = field(default_factory=list)
    adverts: list[RouterAdvert] = field(default_factory=list)  # router advertisements
    dhcp6: list[Dhcp6Advert] = field(default_factory=list)  # DHCPv6 servers' answers
    clients: dict[str, DhcpClient] = field(default_factory=dict)  # by MAC: the latest message
    judged: int = 0  # frames kept and set against what is known (the rest were ignored)
    evaluated: int = 0  # of those, the ones that went through the policies (new or due again)
    ops: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # ARP kinds per pair
    # Ethernet sources of a pair's ARP frames that are not its MAC: who really sent them.
    senders: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def evidence(self, finding: Finding) -> dict[str, Any]:
        """The frames behind a finding, for its stored evidence."""
        frames = [
            {"mac": mac, "arp": ops} | self._sent_from(ip, mac)
            for (ip, mac), ops in self.ops.items()
            if ip == finding.ip and (finding.mac is None or mac == finding.mac)
        ]
        offers = [
            {
                "server_mac": offer.server_mac,
                "offered_ip": offer.offered_ip,
                "message": offer.message,
            }
            for offer in self.offers
            if offer.server_ip == finding.ip
        ]
        adverts = [
            {"source_mac": advert.source_mac, "prefixes": list(advert.prefixes)}
            for advert in self.adverts
            if advert.source_ip == finding.ip
        ]
        watched: dict[str, Any] = {
            "frames": frames[:MAX_MACS_PER_ADDRESS],
            "dhcp_offers": offers[:8],
        }
        if adverts:
            watched["router_adverts"] = adverts[:8]
        servers = [
            a for a in self.dhcp6 if (a.server_ip, a.server_mac) == (finding.ip, finding.mac)
        ]
        if servers:
            watched["dhcp6_adverts"] = [{"offered_ips": list(a.addresses)} for a in servers[:8]]
        return {"watch": watched}

    def _sent_from(self, ip: str, mac: str) -> dict[str, list[str]]:
        # A spoofing tool may claim an address for a MAC that is not its own (a made-up one, to
        # black-hole the traffic): the frame's source is the MAC the switch learned, the port.
        senders = self.senders.get((ip, mac))
        return {"sent_from": senders} if senders else {}
