"""Batched sending on a packet socket: many frames per system call through a PACKET_TX_RING.

Python has no sendmmsg for packet sockets, and at /16 scale one `socket.send` per frame costs as
much as the kernel's own work on that frame (argument parsing, releasing and taking the GIL, the
system call). A TX ring removes that cost: the frames of a batch are written into slots of memory
shared with the kernel, and one `send(b"")` transmits them all.

    sender = frame_sender(interface, template, at=38, width=4, what="ARP sweep")
    sender.send([bytes([198, 19, 0, 1]), bytes([198, 19, 0, 2])])  # two frames, bytes 38..41 set
    sender.close()

Linux, TPACKET_V2. Where the kernel refuses the ring, `frame_sender` falls back to one `send` per
frame: same frames, same errors, only slower.
"""

from __future__ import annotations

import mmap
import socket
import struct
import time
from collections.abc import Sequence
from functools import partial

from ipguard.errors import ScanError
from ipguard.scanners import rawsock

# <linux/if_packet.h>
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_VNET_HDR = 15
TPACKET_V2 = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_WRONG_FORMAT = 4
TPACKET2_DATA = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a slot's frame starts
VNET_HDR_LEN = 10  # struct virtio_net_hdr
DEFAULT_SLOTS = 4096


class FrameSender:
    """Sends copies of one frame template with `width` bytes at offset `at` replaced per frame."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, values: Sequence[bytes]) -> None:
        """One frame per value, in order; ScanError when the interface fails us."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the socket (and whatever else the sender holds)."""
        self._sock.close()


def frame_sender(
    interface: rawsock.InterfaceInfo, template: bytes, *, at: int, width: int, what: str
) -> FrameSender:
    """A TX-ring sender out of `interface`, or a per-frame one where the kernel refuses the ring."""
    sock = rawsock.sending_socket(interface, what)
    try:
        return FrameRing(sock, template, at=at, width=width, what=what)
    except OSError:
        sock.close()  # half set up (a virtio-net header expected, a ring attached): start afresh
    return PlainSender(
        rawsock.sending_socket(interface, what), template, at=at, width=width, what=what
    )


class PlainSender(FrameSender):
    """One `send` per frame: the fallback."""

    def __init__(
        self, sock: socket.socket, template: bytes, *, at: int, width: int, what: str
    ) -> None:
        super().__init__(sock)
        self._put = sock.send
        self._frame = bytearray(template)
        self._patch = slice(at, at + width)
        self._what = what

    def send(self, values: Sequence[bytes]) -> None:
        """One frame per value, in order."""
        frame, patch, put = self._frame, self._patch, self._put
        for value in values:
            frame[patch] = value
            try:
                put(frame)
            except OSError as exc:
                rawsock.send_when_room(partial(put, frame), exc, self._what)


class FrameRing(FrameSender):
    """A PACKET_TX_RING of `slots` frames; `send` fills as many slots as it has values, then kicks.

    Each slot is a tpacket2 header, a virtio-net header and the frame. The virtio-net header (no
    offloads, header length = the whole frame) makes the kernel copy the frame into the packet it
    sends instead of pointing into the ring: a slot the kernel has handed back may then be rewritten
    at once, even when the frame went to a local veth peer that has not read it yet.
    """

    def __init__(
        self,
        sock: socket.socket,
        template: bytes,
        *,
        at: int,
        width: int,
        what: str,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        if not 0 <= at <= len(template) - width:
            raise ValueError(f"cannot patch {width} bytes at {at} of a {len(template)}-byte frame")
        super().__init__(sock)
        self._what = what
        self._width = width
        needed = TPACKET2_DATA + VNET_HDR_LEN + len(template)
        page = mmap.PAGESIZE
        self.frame_size = 1 << max(6, (needed - 1).bit_length())  # divides the page: no gaps
        if self.frame_size > page:
            raise ValueError(f"a {len(template)}-byte frame does not fit a ring slot")
        per_block = page // self.frame_size
        blocks = max(1, slots // per_block)
        self.slots = blocks * per_block
        self._size = self.slots * self.frame_size

        sock.setsockopt(rawsock.SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_VNET_HDR, 1)
        request = struct.pack("IIII", page, blocks, self.frame_size, self.slots)
        sock.setsockopt(rawsock.SOL_PACKET, PACKET_TX_RING, request)
        self._ring = mmap.mmap(
            sock.fileno(), self._size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        length = VNET_HDR_LEN + len(template)
        header = struct.pack(
            "=IIIHHIIHH4x", TP_STATUS_SEND_REQUEST, length, length, 0, 0, 0, 0, 0, 0
        )
        vnet = struct.pack("<BBHHHH", 0, 0, len(template), 0, 0, 0)
        slot = header + vnet + template
        slot += bytes(self.frame_size - len(slot))
        cut = TPACKET2_DATA + VNET_HDR_LEN + at
        # A batch is head + value₁ + (tail + head) + value₂ + … + tail: one join builds it.
        self._head, self._tail = slot[:cut], slot[cut + width :]
        self._glue = self._tail + self._head
        self._next = 0  # the next slot to fill: the kernel's head, as we fill in order

    def send(self, values: Sequence[bytes]) -> None:
        """Write the frames into the ring, `slots` at a time, and have the kernel send them."""
        for start in range(0, len(values), self.slots):
            chunk = values[start : start + self.slots]
            batch = self._head + self._glue.join(chunk) + self._tail
            if len(batch) != len(chunk) * self.frame_size:
                raise ValueError(f"every value must be {self._width} bytes")
            first = self._next * self.frame_size
            end = first + len(batch)
            if end <= self._size:
                self._ring[first:end] = batch
            else:  # wraps around the end of the ring
                split = self._size - first
                self._ring[first:] = batch[:split]
                self._ring[: end - self._size] = batch[split:]
            self._next = (self._next + len(chunk)) % self.slots
            self._transmit(((self._next - 1) % self.slots) * self.frame_size)

    def _transmit(self, last: int) -> None:
        """Kick the kernel until the batch's last slot is back (a blocking send waits for it)."""
        deadline = time.monotonic() + rawsock.SEND_RETRY_SECONDS
        kick = partial(self._sock.send, b"")
        while True:
            try:
                kick()
            except OSError as exc:
                rawsock.send_when_room(kick, exc, self._what)
            status = self._ring[last]
            if status == TP_STATUS_AVAILABLE:
                return
            if status == TP_STATUS_WRONG_FORMAT:
                raise ScanError(f"{self._what}: the kernel refused a probe frame as malformed")
            if time.monotonic() > deadline:  # e.g. a send cut short by a signal, again and again
                raise ScanError(f"{self._what}: the transmit queue stayed full; lower the rate")

    def close(self) -> None:
        """Unmap the ring and close the socket (the kernel frees the ring with it)."""
        self._ring.close()
        super().close()
