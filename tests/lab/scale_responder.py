"""The scale responder: one process answering ARP and ICMP echo for up to 65,536 addresses.

Run inside the responder namespace by `tests.lab.scale` (never by hand on a real network):

    python -m tests.lab.scale_responder SPEC.json

SPEC.json holds the interface, the subnet, which offsets of it are live, which of those answer
twice (a second MAC: a duplicate IP; or the same MAC again: a repeated reply), loss, delay, TTL and
an optional gateway address (the routed lab). The responder prints `ready` once its socket is bound,
writes its counters to the stats file on SIGUSR1 and at exit, and stops on SIGTERM, when its parent
dies, or after `max_seconds`.

Speed: an AF_PACKET socket whose kernel filter passes only ARP requests, read through a receive
ring (requests read in place in memory shared with the kernel, no system call each), a bytearray
telling in one index whether an address is live, and replies assembled from bytes slices; no
per-packet objects beyond the reply itself. ICMP echo has its own socket and thread.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import ipaddress
import json
import mmap
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ipguard.scanners import rawsock

LIVE = 1
SECOND_MAC = 2  # a duplicate IP: a second host answers from variant-1 MAC
REPEAT = 4  # the same host answers twice
MAX_ADDRESSES = 65_536
SNAPLEN = 2048
RECV_TIMEOUT = 0.05  # how often a quiet loop looks at signals and its deadline
SEND_RETRIES = 50
PR_SET_PDEATHSIG = 1

ARP_REPLY_HEADER = bytes.fromhex("08060001080006040002")  # ethertype + ARP reply header
# The ARP requests' receive ring (PACKET_RX_RING, TPACKET_V2): about 2 µs of CPU per request
# instead of 3, which keeps a /16 swept at hundreds of thousands of probes per second from
# queueing in the responder rather than in the scanner under test.
PACKET_VERSION = 10
PACKET_RX_RING = 5
TPACKET_V2 = 1
TP_STATUS_USER = 1
RELEASE = bytes(4)  # TP_STATUS_KERNEL: the slot is the kernel's again
RING_FRAME = 128  # tpacket2 header and padding, then the first 62 bytes of the frame
RING_BLOCK = 1 << 16
RING_BLOCKS = 256  # 16 MiB: 131,072 requests waiting, more than a /16 sweep has in flight
ICMP_ECHO_REPLY_ADJUST = 0x0800  # type 8 -> 0 lowers the sum by 0x0800: the checksum rises by it


def responder_mac(ip: str | bytes, variant: int = 0) -> str:
    """The MAC the responder answers from for `ip`: 02 (locally administered), IP, variant."""
    packed = ip if isinstance(ip, bytes) else socket.inet_aton(ip)
    return _mac(packed, variant).hex(":")


def _mac(packed_ip: bytes, variant: int) -> bytes:
    return b"\x02" + packed_ip + bytes([variant])


@dataclass
class Spec:
    """What to answer: written by tests.lab.scale as JSON."""

    interface: str
    subnet: str
    live: list[int]  # offsets into the subnet
    second_mac: list[int]
    repeat: list[int]
    loss: float = 0.0
    delay: float = 0.0
    ttl: int = 64
    gateway: str | None = None
    seed: int = 1
    stats_path: str | None = None
    parent: int | None = None
    max_seconds: float = 3600.0

    @classmethod
    def load(cls, path: str) -> Spec:
        """Read a spec file."""
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return cls(**data)


def arp_request_filter() -> list[rawsock.Insn]:
    """ARP requests only."""
    return rawsock.match_all(
        [
            (rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.ETH_P_ARP),
            (rawsock.Insn(rawsock.LDH_ABS, k=20), 1),
        ],
        SNAPLEN,
    )


def echo_request_filter() -> list[rawsock.Insn]:
    """IPv4 ICMP echo requests only."""
    i = rawsock.Insn
    return [
        i(rawsock.LDH_ABS, k=12),  # 0 ethertype
        i(rawsock.JEQ_K, 0, 6, rawsock.ETH_P_IP),  # 1 IPv4, else reject
        i(rawsock.LDB_ABS, k=23),  # 2 IP protocol
        i(rawsock.JEQ_K, 0, 4, socket.IPPROTO_ICMP),  # 3 ICMP, else reject
        i(rawsock.LDX_MSH, k=14),  # 4 X = IP header length
        i(rawsock.LDB_IND, k=14),  # 5 ICMP type
        i(rawsock.JEQ_K, 0, 1, 8),  # 6 echo request → accept, else reject
        i(rawsock.RET_K, k=SNAPLEN),  # 7 accept
        i(rawsock.RET_K, k=0),  # 8 reject
    ]


class Channel:
    """One packet socket bound to one protocol, with the replies it holds back (the delay option).

    Binding per protocol rather than to all of them matters: a socket bound to ETH_P_ALL sees a
    frame before nftables' ingress hook may drop it, so link loss set up with nftables would not
    reach the responder.
    """

    def __init__(
        self,
        interface: str,
        ethertype: int,
        program: list[rawsock.Insn],
        delay: float,
        *,
        ring: bool = False,
    ) -> None:
        self.delay = delay
        self.delayed: collections.deque[tuple[float, bytes]] = collections.deque()
        self.send_errors = 0
        self.kernel_drops = 0
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        rawsock.attach_filter(self.sock, program)
        # How long a quiet loop waits before it looks at signals, its deadline and delayed
        # replies that fell due.
        self.quiet = min(RECV_TIMEOUT, delay / 4) if delay > 0 else RECV_TIMEOUT
        self.ring = _receive_ring(self.sock) if ring else None
        if self.ring is None:
            rawsock.enlarge_buffer(self.sock)
            # A kernel-level receive timeout (not Python's settimeout, which polls before every
            # read).
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, int(self.quiet * 1e6))
            )
        self.sock.bind((interface, ethertype))
        self.emit = self._emit_later if delay > 0 else self._emit

    def _emit(self, frame: bytes) -> None:
        try:
            self.sock.send(frame)
        except OSError as exc:
            self._send_when_room(frame, exc)

    def _emit_later(self, frame: bytes) -> None:
        self.delayed.append((time.monotonic() + self.delay, frame))
        self.flush()

    def flush(self) -> None:
        """Send the held-back replies that fell due."""
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self._emit(self.delayed.popleft()[1])

    def _send_when_room(self, frame: bytes, error: OSError) -> None:
        # ENOBUFS: the peer's backlog is full for a moment; the scanner would see it as loss.
        for _ in range(SEND_RETRIES):
            if error.errno not in (errno.ENOBUFS, errno.EAGAIN):
                break
            time.sleep(0.0002)
            try:
                self.sock.send(frame)
                return
            except OSError as again:
                error = again
        self.send_errors += 1


class Responder:
    """Answers for the live addresses of one subnet on one interface."""

    def __init__(self, spec: Spec) -> None:
        net = ipaddress.IPv4Network(spec.subnet)
        if net.num_addresses > MAX_ADDRESSES:
            raise SystemExit(
                f"scale responder: {spec.subnet} is larger than {MAX_ADDRESSES} addresses"
            )
        self.spec = spec
        self.base = int(net.network_address)
        self.size = net.num_addresses
        self.table = bytearray(self.size)
        for offset in spec.live:
            self.table[offset] |= LIVE
        for offset in spec.second_mac:
            self.table[offset] |= SECOND_MAC
        for offset in spec.repeat:
            self.table[offset] |= REPEAT
        self.gateway = socket.inet_aton(spec.gateway) if spec.gateway else None
        self.arp_rng = random.Random(spec.seed)
        self.echo_rng = random.Random(spec.seed + 1)  # one generator per thread
        self.counters = dict.fromkeys(("arp_requests", "arp_replies", "arp_lost"), 0)
        self.echo_counters = dict.fromkeys(("icmp_requests", "icmp_replies", "icmp_lost"), 0)
        self.running = True
        self.stats_wanted = False
        self.deadline = time.monotonic() + spec.max_seconds
        self.arp = Channel(
            spec.interface, rawsock.ETH_P_ARP, arp_request_filter(), spec.delay, ring=True
        )
        self.ip = Channel(spec.interface, rawsock.ETH_P_IP, echo_request_filter(), spec.delay)

    def serve(self) -> None:
        """Answer until stopped, the parent goes away or max_seconds pass."""
        echo = threading.Thread(target=self.serve_echo, name="echo", daemon=True)
        echo.start()
        try:
            self.serve_arp()
        finally:
            self.running = False
            echo.join(timeout=1.0)

    def serve_arp(self) -> None:
        """The ARP loop: the hot one, so everything it touches is a local."""
        if self.arp.ring is not None:
            self._serve_arp_ring(self.arp.ring)
            return
        recv, answer = self.arp.sock.recv, self._answer_arp
        table, base, size, gateway = self.table, self.base, self.size, self.gateway
        counters = self.counters
        requests = replies = lost = 0
        while self.running:
            try:
                frame = recv(SNAPLEN)
            except BlockingIOError:  # SO_RCVTIMEO expired: a quiet moment
                counters["arp_requests"] += requests
                counters["arp_replies"] += replies
                counters["arp_lost"] += lost
                requests = replies = lost = 0
                self._housekeeping()
                continue
            requests += 1
            target = frame[38:42]
            offset = int.from_bytes(target, "big") - base
            flags = table[offset] if 0 <= offset < size else 0
            if not flags:
                if target != gateway:
                    continue
                flags = LIVE
            sent, dropped = answer(frame[22:32], target, flags)
            replies += sent
            lost += dropped
            if self.stats_wanted:
                counters["arp_requests"] += requests
                counters["arp_replies"] += replies
                counters["arp_lost"] += lost
                requests = replies = lost = 0
                self.write_stats()
        counters["arp_requests"] += requests
        counters["arp_replies"] += replies
        counters["arp_lost"] += lost

    def _serve_arp_ring(self, ring: mmap.mmap) -> None:
        """The ARP loop on the receive ring: requests read in place, a poll only when none waits."""
        answer, counters = self._answer_arp, self.counters
        table, base, size, gateway = self.table, self.base, self.size, self.gateway
        frame_at = struct.Struct("=H").unpack_from  # tpacket2_hdr.tp_mac: where the frame starts
        poller = select.poll()
        poller.register(self.arp.sock, select.POLLIN)
        quiet_ms = max(1, round(self.arp.quiet * 1000))
        slot, end = 0, len(ring)
        requests = replies = lost = 0
        while self.running:
            if not ring[slot] & TP_STATUS_USER:
                counters["arp_requests"] += requests
                counters["arp_replies"] += replies
                counters["arp_lost"] += lost
                requests = replies = lost = 0
                if not poller.poll(quiet_ms):  # a quiet moment
                    self._housekeeping()
                continue
            requests += 1
            frame = slot + frame_at(ring, slot + 12)[0]
            target = ring[frame + 38 : frame + 42]
            offset = int.from_bytes(target, "big") - base
            flags = table[offset] if 0 <= offset < size else 0
            if flags or target == gateway:
                sent, dropped = answer(ring[frame + 22 : frame + 32], target, flags or LIVE)
                replies += sent
                lost += dropped
            ring[slot : slot + 4] = RELEASE
            slot = slot + RING_FRAME if slot + RING_FRAME < end else 0
            if self.stats_wanted:
                counters["arp_requests"] += requests
                counters["arp_replies"] += replies
                counters["arp_lost"] += lost
                requests = replies = lost = 0
                self.write_stats()
        counters["arp_requests"] += requests
        counters["arp_replies"] += replies
        counters["arp_lost"] += lost

    def _answer_arp(self, asker: bytes, target: bytes, flags: int) -> tuple[int, int]:
        """Answer one request for a live address: (replies sent, replies lost on purpose).

        `asker` is the requester's MAC and IP (the reply's target). A REPEAT address answers
        twice, a SECOND_MAC one from a second MAC too; each reply may be lost (the loss option).
        """
        emit, loss, rng = self.arp.emit, self.spec.loss, self.arp_rng.random
        replies = lost = 0
        mac = b"\x02" + target + b"\x00"
        reply = asker[:6] + mac + ARP_REPLY_HEADER + mac + target + asker
        for _ in (1, 2) if flags & REPEAT else (1,):
            if loss and rng() < loss:
                lost += 1
            else:
                emit(reply)
                replies += 1
        if flags & SECOND_MAC:
            mac = b"\x02" + target + b"\x01"
            if loss and rng() < loss:
                lost += 1
            else:
                emit(asker[:6] + mac + ARP_REPLY_HEADER + mac + target + asker)
                replies += 1
        return replies, lost

    def serve_echo(self) -> None:
        """The ICMP echo loop (its own thread and socket)."""
        recv = self.ip.sock.recv
        while self.running:
            try:
                frame = recv(SNAPLEN)
            except BlockingIOError:
                self.ip.flush()
                continue
            self._answer_echo(frame)

    def _answer_echo(self, frame: bytes) -> None:
        counters = self.echo_counters
        counters["icmp_requests"] += 1
        ihl = (frame[14] & 0x0F) * 4
        ip_header = frame[14 : 14 + ihl]
        offset = int.from_bytes(ip_header[16:20], "big") - self.base
        if not (0 <= offset < self.size and self.table[offset]):
            return
        if self.spec.loss and self.echo_rng.random() < self.spec.loss:
            counters["icmp_lost"] += 1
            return
        header = bytearray(ip_header)
        header[8] = self.spec.ttl
        header[10:12] = b"\0\0"
        header[12:16], header[16:20] = ip_header[16:20], ip_header[12:16]
        header[10:12] = _checksum(header).to_bytes(2, "big")
        icmp = bytearray(frame[14 + ihl :])
        icmp[0] = 0
        folded = int.from_bytes(icmp[2:4], "big") + ICMP_ECHO_REPLY_ADJUST
        icmp[2:4] = ((folded & 0xFFFF) + (folded >> 16)).to_bytes(2, "big")
        # Answer from the MAC the request was sent to (ours for the address, or the gateway's).
        reply = frame[6:12] + frame[0:6] + b"\x08\x00" + bytes(header) + bytes(icmp)
        for _ in (1, 2) if self.table[offset] & REPEAT else (1,):
            self.ip.emit(reply)
            counters["icmp_replies"] += 1

    def _housekeeping(self) -> None:
        self.arp.flush()
        if self.stats_wanted:
            self.write_stats()
        parent_gone = self.spec.parent is not None and os.getppid() != self.spec.parent
        if parent_gone or time.monotonic() > self.deadline:
            self.running = False

    def write_stats(self) -> None:
        """Write the counters (JSON) to the stats file, atomically."""
        self.stats_wanted = False
        for channel in (self.arp, self.ip):
            channel.kernel_drops += rawsock.packet_drops(channel.sock)
        stats = {
            **self.counters,
            **self.echo_counters,
            "lost": self.counters["arp_lost"] + self.echo_counters["icmp_lost"],
            "kernel_drops": self.arp.kernel_drops + self.ip.kernel_drops,
            "send_errors": self.arp.send_errors + self.ip.send_errors,
        }
        if self.spec.stats_path:
            tmp = self.spec.stats_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(stats, f)
            os.replace(tmp, self.spec.stats_path)


def _receive_ring(sock: socket.socket) -> mmap.mmap | None:
    """Give `sock` (not yet bound) a TPACKET_V2 receive ring; None if the kernel refuses one."""
    frames = RING_BLOCKS * (RING_BLOCK // RING_FRAME)
    try:
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        request = struct.pack("IIII", RING_BLOCK, RING_BLOCKS, RING_FRAME, frames)
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_RX_RING, request)
    except OSError:
        return None  # recv() it is, as without the version set
    size = RING_BLOCK * RING_BLOCKS
    return mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def _checksum(data: bytes | bytearray) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total & 0xFFFF) + (total >> 16)
    total += total >> 16
    return ~total & 0xFFFF


def main(argv: list[str]) -> int:
    """Serve the spec given as the only argument."""
    spec = Spec.load(argv[0])
    # Die with the process that started us, so a crashed test run leaves no responder behind.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if spec.parent is not None and os.getppid() != spec.parent:
        return 1
    responder = Responder(spec)

    def stop(_signum: int, _frame: object) -> None:
        responder.running = False

    def want_stats(_signum: int, _frame: object) -> None:
        responder.stats_wanted = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, want_stats)
    print("ready", flush=True)
    try:
        responder.serve()
    finally:
        responder.write_stats()
        responder.arp.sock.close()
        responder.ip.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
