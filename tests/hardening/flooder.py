"""A lab host that floods the scanner: malformed, unsolicited and spoofed ARP, ICMP, DHCP and SSDP.

Run inside a lab host's namespace, never anywhere else (raw AF_PACKET on that namespace's eth0;
every frame is addressed to the lab scanner)::

    python -m tests.hardening.flooder SPEC.json

SPEC.json::

    {"interface": "eth0", "mac": "02:…", "ip": "198.18.0.77",
     "victim_mac": "02:…", "victim_ip": "198.18.0.2",
     "arp": {"frames": 300000, "rate": 60000, "asked": ["198.18.0.20", …]},
     "dhcp": {"offers": 3000}, "ssdp": {"replies": 3000, "spoof": ["198.18.0.150", …]},
     "icmp": {"frames": 50000, "repeats": 40, "unsolicited": 10, "spoof": ["198.19.7.3", …]},
     "max_seconds": 40, "stats": "/path/stats.json"}

ARP: replies to the scanner for addresses it never asks (198.18.200.0/24), malformed frames
(truncated, wrong hardware/protocol lengths, IPv6 protocol type), and, for `asked` addresses,
replies from a new random MAC each time plus the same pair over and over. DHCP: once it sees the
scanner's DISCOVER, `offers` answers with its transaction id: offers of ever new addresses from
this host (a real rogue server), offers with truncated or garbage options, and offers whose
router and DNS options point outside the scanned subnets. ICMP (the lab host being the gateway
of a routed lab): for each echo request the scanner sends to a `spoof` address, `repeats` echo
replies from that address carrying the request's identifier and sequence, and `unsolicited` ones
from addresses it never asks (198.19.200.0/24), up to `frames` in all. SSDP: once it sees the
scanner's M-SEARCH, `replies` answers to its port from `spoof` addresses and from this host,
with hostile SERVER strings. Bounded by frame counts and `max_seconds`; stops on SIGTERM. Writes
what it sent to `stats` at exit and prints `ready` once its socket is open.
"""

from __future__ import annotations

import json
import random
import select
import signal
import socket
import struct
import sys
import time
from typing import Any

SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
ETH_P_ARP = b"\x08\x06"
ETH_P_IP = b"\x08\x00"
BROADCAST = b"\xff" * 6


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(
    src_mac: bytes, dst_mac: bytes, src: str, dst: str, sport: int, dport: int, payload: bytes
) -> bytes:
    """Ethernet + IPv4 + UDP (checksum 0: none) around `payload`."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        random.getrandbits(16),
        0,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return dst_mac + src_mac + ETH_P_IP + header + udp


def arp_reply(
    dst_mac: bytes,
    src_mac: bytes,
    sender_ip: bytes,
    target_ip: bytes,
    header: bytes = bytes.fromhex("000108000604"),
) -> bytes:
    return (
        dst_mac
        + src_mac
        + ETH_P_ARP
        + header
        + b"\x00\x02"
        + src_mac
        + sender_ip
        + dst_mac
        + target_ip
    )


def random_mac() -> bytes:
    return bytes([0x02]) + random.randbytes(5)


class Flooder:
    """Builds and sends the frames of SPEC, counting them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.mac = mac_bytes(spec["mac"])
        self.victim_mac = mac_bytes(spec["victim_mac"])
        self.victim_ip = socket.inet_aton(spec["victim_ip"])
        self.sent: dict[str, int] = {}
        self.deadline = time.monotonic() + float(spec.get("max_seconds", 30))
        # One socket to send (protocol 0: it queues nothing), one to watch incoming IPv4 frames.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.bind((spec["interface"], 0))
        self.sock.setblocking(False)
        self.watch = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.watch.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        self.watch.bind((spec["interface"], 0x0800))
        self.watch.setblocking(False)
        self.stopping = False

    def count(self, kind: str, frames: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + frames

    def send(self, frame: bytes, kind: str) -> None:
        for _attempt in range(100):
            try:
                self.sock.send(frame)
                self.count(kind)
                return
            except BlockingIOError:
                time.sleep(0.0005)
            except OSError:
                self.count("send_errors")
                return

    # -- ARP --------------------------------------------------------------------------------

    def arp_frames(self) -> list[tuple[str, bytes]]:
        """A mixed deck of hostile ARP frames (rebuilt for fresh MACs as it is dealt)."""
        victim, ip = self.victim_mac, self.victim_ip
        deck: list[tuple[str, bytes]] = []
        for n in range(256):
            outside = socket.inet_aton(f"198.18.200.{n}")
            deck.append(("arp_unsolicited", arp_reply(victim, random_mac(), outside, ip)))
        bad_headers = [bytes.fromhex(h) for h in ("000108000406", "000186dd0610", "000608000604")]
        for n, header in enumerate(bad_headers * 20):
            sender = socket.inet_aton(f"198.18.0.{n % 200 + 1}")
            deck.append(("arp_malformed", arp_reply(victim, random_mac(), sender, ip, header)))
        for cut in (14, 20, 28, 33, 41):
            frame = arp_reply(victim, self.mac, socket.inet_aton("198.18.0.20"), ip)
            deck.append(("arp_truncated", frame[:cut]))
        return deck

    def arp(self, budget: int, rate: float) -> None:
        asked = [socket.inet_aton(ip) for ip in self.spec.get("arp", {}).get("asked", [])]
        deck = self.arp_frames()
        pair = random_mac()
        k = 0
        started = time.monotonic()
        while k < budget and not self.stopping and time.monotonic() < self.deadline:
            for _ in range(256):
                if asked and k % 3 == 1:  # a new impostor MAC for an address the scanner asks
                    target = asked[k % len(asked)]
                    self.send(
                        arp_reply(self.victim_mac, random_mac(), target, self.victim_ip),
                        "arp_fake_macs",
                    )
                elif asked and k % 3 == 2:  # the same impostor again and again
                    target = asked[(k // 3) % len(asked)]
                    self.send(
                        arp_reply(self.victim_mac, pair, target, self.victim_ip), "arp_repeats"
                    )
                else:
                    kind, frame = deck[k % len(deck)]
                    self.send(frame, kind)
                k += 1
            self.listen()
            ahead = k / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(min(ahead, 0.05))

    # -- what the scanner sends -------------------------------------------------------------

    def listen(self) -> None:
        """Answer the scanner's DISCOVER and M-SEARCH as soon as they go by."""
        for _ in range(64):
            try:
                frame = self.watch.recv(2048)
            except BlockingIOError:
                return
            if (
                len(frame) >= 42
                and frame[12:14] == ETH_P_IP
                and frame[23] == 1
                and "icmp" in self.spec
            ):
                self.echo(frame)
            if len(frame) < 42 or frame[12:14] != ETH_P_IP or frame[23] != 17:
                continue
            ihl = (frame[14] & 0x0F) * 4
            udp = frame[14 + ihl :]
            sport, dport = struct.unpack("!HH", udp[:4])
            payload = udp[8:]
            if dport == 67 and payload[:1] == b"\x01" and "dhcp" in self.spec:
                self.dhcp(payload[4:8], frame[6:12])
            elif dport == 1900 and payload.startswith(b"M-SEARCH") and "ssdp" in self.spec:
                source = socket.inet_ntoa(frame[26:30])
                if source == self.spec["victim_ip"]:
                    self.ssdp(sport)

    def echo(self, frame: bytes) -> None:
        """Spoofed echo replies for the echo request in `frame` (see the module's ICMP)."""
        spec = self.spec["icmp"]
        ihl = (frame[14] & 0x0F) * 4
        total = struct.unpack("!H", frame[16:18])[0]  # the IP length: Ethernet pads short frames
        request = frame[14 + ihl : 14 + total]
        asked = socket.inet_ntoa(frame[30:34])
        if request[:1] != b"\x08" or asked not in spec["spoof"]:
            return
        reply = b"\x00\x00\x00\x00" + request[4:]  # same identifier, sequence and payload
        reply = reply[:2] + struct.pack("!H", checksum(reply + bytes(len(reply) % 2))) + reply[4:]
        sources = [asked] * spec["repeats"]
        sources += [f"198.19.200.{n % 250 + 1}" for n in range(spec["unsolicited"])]
        for source in sources:
            if (
                sum(self.sent.get(k, 0) for k in ("icmp_repeats", "icmp_unsolicited"))
                >= spec["frames"]
            ):
                return
            header = struct.pack(
                "!BBHHHBBH4s4s",
                *(0x45, 0, 20 + len(reply), random.getrandbits(16), 0, 61, 1, 0),
                *(socket.inet_aton(source), self.victim_ip),
            )
            header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
            kind = "icmp_repeats" if source == asked else "icmp_unsolicited"
            self.send(self.victim_mac + self.mac + ETH_P_IP + header + reply, kind)

    def dhcp(self, xid: bytes, client: bytes) -> None:
        if self.sent.get("dhcp_offers", 0) >= self.spec["dhcp"]["offers"]:
            return
        own = self.spec["ip"]

        def offer(yiaddr: str, options: bytes) -> bytes:
            # op htype hlen hops, xid, secs flags ciaddr, yiaddr, siaddr, giaddr, chaddr, sname+file
            bootp = (
                bytes([2, 1, 6, 0])
                + xid
                + bytes(8)
                + socket.inet_aton(yiaddr)
                + socket.inet_aton(own)
                + bytes(4)
                + client
                + bytes(10)
                + bytes(192)
                + b"\x63\x82\x53\x63"
                + options
            )
            return udp_frame(self.mac, BROADCAST, own, "255.255.255.255", 67, 68, bootp)

        good = b"\x35\x01\x02\x36\x04" + socket.inet_aton(own) + b"\xff"
        pointing_away = (
            b"\x35\x01\x02\x36\x04"
            + socket.inet_aton(own)
            + b"\x03\x04"
            + socket.inet_aton("198.19.200.1")
            + b"\x06\x08"
            + socket.inet_aton("198.19.200.2")
            + socket.inet_aton("198.19.200.3")
            + b"\xff"
        )
        garbage = [b"\x35\x01\x02\x36\x10", b"\x35\xff\x02", b"\x35\x01", random.randbytes(40)]
        for n in range(self.spec["dhcp"]["offers"]):
            yiaddr = f"198.18.{1 + n // 250}.{n % 250 + 1}"
            if n % 4 == 0:
                self.send(offer(yiaddr, good), "dhcp_offers")
            elif n % 4 == 1:
                self.send(offer(yiaddr, pointing_away), "dhcp_offers")
            elif n % 4 == 2:
                self.send(offer(yiaddr, garbage[n % len(garbage)]), "dhcp_malformed")
            else:
                frame = offer(yiaddr, good)
                self.send(frame[: random.randint(42, len(frame) - 1)], "dhcp_truncated")

    def ssdp(self, port: int) -> None:
        if self.sent.get("ssdp_replies", 0) >= self.spec["ssdp"]["replies"]:
            return
        sources = [*self.spec["ssdp"].get("spoof", []), self.spec["ip"]]
        for n in range(self.spec["ssdp"]["replies"]):
            server = b"\x1b[31m<script>" + random.randbytes(8) + b"=1+1\x00" * (n % 50)
            body = (
                b"HTTP/1.1 200 OK\r\nLOCATION: http://198.19.200.4/d.xml\r\nSERVER: "
                + server
                + b"\r\nST: urn:hostile:device:"
                + str(n).encode()
                + b"\r\nUSN: uuid:x\r\n\r\n"
            )
            source = sources[n % len(sources)]
            frame = udp_frame(
                self.mac, self.victim_mac, source, self.spec["victim_ip"], 1900, port, body
            )
            self.send(frame, "ssdp_replies")

    def run(self) -> None:
        arp = self.spec.get("arp", {})
        self.arp(int(arp.get("frames", 0)), float(arp.get("rate", 50_000)))
        # The ARP budget spent: keep answering DISCOVER and M-SEARCH until told to stop.
        while not self.stopping and time.monotonic() < self.deadline:
            select.select([self.watch], [], [], 0.05)
            self.listen()

    def write_stats(self) -> None:
        with open(self.spec["stats"], "w") as out:
            json.dump(self.sent, out)


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    random.seed(spec.get("seed", 1))
    flooder = Flooder(spec)

    def stop(_signum: int, _frame: object) -> None:
        flooder.stopping = True

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    try:
        flooder.run()
    finally:
        flooder.write_stats()


if __name__ == "__main__":
    main()
