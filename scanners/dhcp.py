"""DHCP probe: who offers addresses on the local link (a rogue DHCP server is a critical finding).

One DHCPDISCOVER is broadcast from a random locally administered client MAC (and repeated once
halfway through the wait, as real clients do), asking for a broadcast answer. A receiver started
before the first send keeps every OFFER for our transaction until the timeout: one per server.
Nothing is ever sent to a server, so a server outside the scope is recorded but never touched.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import time
from datetime import UTC, datetime, timedelta

from ipguard.addresses import AddressError, parse_mac
from ipguard.errors import InterfaceError, InvalidValue, ScanError, ScopeError
from ipguard.model import DhcpOffer
from ipguard.scanners import rawsock
from ipguard.scanners.scope import Scope

WHAT = "DHCP probe"
SNAPLEN = 1500
BOOTP_CLIENT_PORT = 68
BOOTP_SERVER_PORT = 67
DHCP_OFFER = 2
BROADCAST_FLAG = 0x8000
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
# Options a client asks for: netmask, router, DNS, domain name, lease time, server identifier.
PARAMETERS = [1, 3, 6, 15, 51, 54]
# A flood of answers to our DISCOVER is counted, not kept: frames read, then distinct offers.
MAX_FRAMES = 4096
MAX_OFFERS = 256


class DhcpProbe:
    """Broadcasts one DHCPDISCOVER on an interface and collects every offer until the timeout.

    Example (needs CAP_NET_RAW)::

        offers = DhcpProbe("eth0", Scope(["198.18.0.0/24"]), timeout=2.0).probe()
        {(o.server_ip, o.server_mac) for o in offers}
        # {('198.18.0.3', '02:18:00:00:00:03'), ('198.18.0.36', '02:18:00:00:00:36')}

    The interface's own IPv4 subnet must lie inside the scope (an interface without an address is
    allowed): a DISCOVER reaches every DHCP server of that link.
    """

    def __init__(
        self, interface: str, scope: Scope, *, timeout: float, client_mac: str | None = None
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 (got {timeout})")
        self.interface = interface
        self.scope = scope
        self.timeout = timeout
        self.client_mac = _client_mac(client_mac) if client_mac else random_client_mac()
        self.ignored = 0  # answers to our DISCOVER that were malformed or beyond the limits

    def probe(self) -> list[DhcpOffer]:
        """Broadcast a DISCOVER and return every distinct offer, in arrival order."""
        iface = rawsock.interface_info(self.interface)
        if not iface.up or not iface.running:
            state = "down" if not iface.up else "without link"
            raise InterfaceError(
                f"interface {iface.name} is {state}: bring it up (`ip link set {iface.name} up`) "
                "or pick another"
            )
        if iface.ipv4 is not None and iface.ipv4 not in self.scope:
            raise ScopeError(
                f"{WHAT}: interface {iface.name} ({iface.ipv4}) is on a network outside the "
                f"subnets ipguard may scan ({', '.join(self.scope.subnets) or 'none'}): "
                "add its subnet to [scan] subnets in ipguard.toml or pick another interface"
            )
        xid = secrets.randbits(32)
        frame = _discover(self.client_mac, xid)

        receiver_sock = rawsock.receiving_socket(iface, rawsock.ETH_P_IP, _offer_filter(xid), WHAT)
        try:
            _promiscuous(receiver_sock, iface.index)
            sender_sock = rawsock.sending_socket(iface, WHAT)
        except BaseException:
            receiver_sock.close()
            raise
        receiver = rawsock.Receiver(
            receiver_sock, SNAPLEN, name="ipguard-dhcp-receiver", limit=MAX_FRAMES
        )
        started_at = datetime.now(UTC)
        started = time.monotonic()
        receiver.start()
        try:
            _send(sender_sock, frame)
            time.sleep(self.timeout / 2)
            _send(sender_sock, frame)  # a lost DISCOVER or OFFER gets a second chance
            time.sleep(self.timeout / 2)
        finally:
            receiver.stop()
            sender_sock.close()
            receiver_sock.close()
        if receiver.error is not None:
            raise ScanError(
                f"{WHAT} lost its socket on {self.interface}: {receiver.error.strerror}"
            )
        offers: dict[tuple[str, str, str], DhcpOffer] = {}
        self.ignored = receiver.ignored
        for when, data in receiver.records:
            offer = parse_offer(data, xid, started_at + timedelta(seconds=when - started))
            if offer is None:
                self.ignored += 1
                continue
            key = (offer.server_mac, offer.server_ip, offer.offered_ip)
            if key not in offers and len(offers) >= MAX_OFFERS:
                self.ignored += 1
                continue
            offers.setdefault(key, offer)
        return list(offers.values())


def random_client_mac() -> str:
    """A random unicast, locally administered MAC (02:…), owned by no real device."""
    return "02:" + secrets.token_bytes(5).hex(":")


def parse_offer(frame: bytes, xid: int, seen_at: datetime | None = None) -> DhcpOffer | None:
    """The DHCPOFFER in an Ethernet frame for transaction `xid`, or None for anything else."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    try:
        packet = Ether(frame)
    except Exception:  # scapy raises many types on garbage; a broken frame is simply not an offer
        return None
    bootp = packet.getlayer(BOOTP)
    dhcp = packet.getlayer(DHCP)
    if bootp is None or dhcp is None or bootp.op != 2 or bootp.xid != xid:
        return None
    options: dict[str, tuple[object, ...]] = {}
    for option in dhcp.options:
        if isinstance(option, tuple) and option and isinstance(option[0], str):
            options.setdefault(option[0], tuple(option[1:]))
    if options.get("message-type", ())[:1] != (DHCP_OFFER,):
        return None
    server_id = _ipv4(options.get("server_id", ())[:1])
    routers = [ip for ip in (_ipv4((value,)) for value in options.get("router", ())) if ip]
    dns = tuple(ip for ip in (_ipv4((value,)) for value in options.get("name_server", ())) if ip)
    return DhcpOffer(
        server_ip=server_id or str(packet[IP].src),
        server_mac=str(packet.src).lower(),
        offered_ip=str(bootp.yiaddr),
        router=routers[0] if routers else None,
        dns=dns,
        seen_at=seen_at,
    )


def _ipv4(values: tuple[object, ...]) -> str | None:
    if not values or not isinstance(values[0], str):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(values[0]))
    except OSError:
        return None


def _discover(client_mac: str, xid: int) -> bytes:
    """A broadcast DHCPDISCOVER from `client_mac` asking for a broadcast reply."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    chaddr = bytes.fromhex(client_mac.replace(":", ""))
    return bytes(
        Ether(src=client_mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=BOOTP_CLIENT_PORT, dport=BOOTP_SERVER_PORT)
        / BOOTP(op=1, chaddr=chaddr, xid=xid, flags=BROADCAST_FLAG)
        / DHCP(
            options=[
                ("message-type", "discover"),
                ("client_id", b"\x01" + chaddr),
                ("param_req_list", PARAMETERS),
                "end",
            ]
        )
    )


def _offer_filter(xid: int) -> list[rawsock.Insn]:
    """Kernel filter: IPv4 UDP to the BOOTP client port for transaction `xid`, nothing else."""
    return [
        rawsock.Insn(rawsock.LDX_MSH, k=14),  # X = IP header length
        *rawsock.match_all(
            [
                (rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.ETH_P_IP),
                (rawsock.Insn(rawsock.LDB_ABS, k=23), socket.IPPROTO_UDP),
                (rawsock.Insn(rawsock.LDH_IND, k=16), BOOTP_CLIENT_PORT),  # UDP destination port
                (rawsock.Insn(rawsock.LDW_IND, k=26), xid),  # BOOTP xid: 14 + X + 8 + 4
            ],
            SNAPLEN,
        ),
    ]


def _promiscuous(sock: socket.socket, ifindex: int) -> None:
    """Also receive offers unicast to our made-up client MAC (servers ignoring the broadcast flag).

    The kernel drops the membership, and the promiscuous mode with it, when the socket closes.
    """
    mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    with contextlib.suppress(OSError):  # without it, offers sent as broadcasts still arrive
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)


def _send(sock: socket.socket, frame: bytes) -> None:
    try:
        sock.send(frame)
    except OSError as exc:
        rawsock.send_when_room(lambda: sock.send(frame), exc, WHAT)


def _client_mac(text: str) -> str:
    try:
        return parse_mac(text)
    except AddressError as error:
        raise InvalidValue(f"client MAC {text!r}: {error}") from None
