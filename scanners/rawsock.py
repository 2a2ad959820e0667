"""Raw-socket plumbing shared by the sweeps: interface facts, sockets, kernel filters.

Linux only. Everything here works on the network namespace of the calling thread: a socket belongs
to the namespace its creator was in, so a caller that switched namespace (the lab does) gets sockets
and interface facts from that namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ipguard.errors import InterfaceError, PrivilegeError, ScanError

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800

# <linux/if_packet.h>, <asm-generic/socket.h>, <linux/sockios.h>, <linux/if.h>
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFNAMSIZ = 16

# Big enough to absorb a burst of tens of thousands of replies while the receiver thread waits
# for the GIL; the kernel accounts about 1 KiB per small frame.
DEFAULT_RCVBUF = 64 * 1024 * 1024
# A raw IP sender's probes to addresses on a link the kernel must first resolve (a subnet of
# another interface of the sensor) wait in the socket's send buffer until each neighbour answers
# or fails, about 3 s: a /24's three passes take about 0.8 MB, more than the default 208 KiB.
DEFAULT_SNDBUF = 32 * 1024 * 1024

SEND_RETRY_SECONDS = 1.0
_RAW_SOCKET_HELP = "run as root or give the interpreter CAP_NET_RAW"


# --- interface facts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceInfo:
    """What the kernel says about one network interface of the current namespace."""

    name: str
    index: int
    mac: str
    ipv4: str | None
    prefixlen: int | None
    up: bool
    running: bool
    hwtype: int = 1  # ARPHRD_*: 1 Ethernet, 772 loopback, 65534 none (tun, WireGuard)


def interface_info(name: str) -> InterfaceInfo:
    """Read an interface's index, MAC, primary IPv4 address and state (ioctl, no privileges needed).

    Raises InterfaceError when no interface of that name exists in this namespace.
    """
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or "\0" in name:
        raise InterfaceError(
            f"{name!r} is not a valid interface name: check --interface / [scan] interface"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            flags = struct.unpack_from("H", _ifreq(probe, SIOCGIFFLAGS, name), IFNAMSIZ)[0]
            hwaddr = _ifreq(probe, SIOCGIFHWADDR, name)
            hwtype = struct.unpack_from("H", hwaddr, IFNAMSIZ)[0]  # the sockaddr's family
            hw = hwaddr[IFNAMSIZ + 2 : IFNAMSIZ + 8]
            index = socket.if_nametoindex(name)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise InterfaceError(
                    f"interface {name} does not exist: pick one listed by `ip link` "
                    "with --interface or [scan] interface"
                ) from exc
            raise InterfaceError(f"cannot read interface {name}: {exc.strerror}") from exc
        ipv4: str | None = None
        prefixlen: int | None = None
        try:
            ipv4 = socket.inet_ntoa(_ifreq(probe, SIOCGIFADDR, name)[IFNAMSIZ + 4 : IFNAMSIZ + 8])
            mask = _ifreq(probe, SIOCGIFNETMASK, name)[IFNAMSIZ + 4 : IFNAMSIZ + 8]
            prefixlen = bin(int.from_bytes(mask, "big")).count("1")
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:  # EADDRNOTAVAIL: simply no IPv4 address
                raise InterfaceError(f"cannot read the address of {name}: {exc.strerror}") from exc
    return InterfaceInfo(
        name=name,
        index=index,
        mac=hw.hex(":"),
        ipv4=ipv4,
        prefixlen=prefixlen,
        up=bool(flags & IFF_UP),
        running=bool(flags & IFF_RUNNING),
        hwtype=hwtype,
    )


ARPHRD_ETHER = 1
_NOT_ETHERNET = {772: "loopback", 65534: "no link-layer header", 512: "PPP", 776: "IPv6 in IPv4"}


def require_ethernet(info: InterfaceInfo) -> None:
    """InterfaceError unless the interface carries Ethernet frames (lo, tun0, wg0 do not)."""
    if info.hwtype != ARPHRD_ETHER:
        what = _NOT_ETHERNET.get(info.hwtype, f"hardware type {info.hwtype}")
        raise InterfaceError(
            f"interface {info.name} is not an Ethernet interface ({what}): no ARP or DHCP "
            "frame comes there; pick one `ip link` shows as link/ether"
        )


def usable_interface(name: str, what: str, *, need_ipv4: bool = True) -> InterfaceInfo:
    """The interface's facts, or InterfaceError when it is down, has no link or (`need_ipv4`)
    no IPv4 address."""
    info = interface_info(name)
    if not info.up:
        raise InterfaceError(
            f"interface {name} is down: bring it up (`ip link set {name} up`) or pick another"
        )
    if not info.running:
        raise InterfaceError(
            f"interface {name} has no link (cable or peer missing): connect it or pick another"
        )
    if info.ipv4 is None and need_ipv4:
        raise InterfaceError(
            f"interface {name} has no IPv4 address and {what} sends from it: "
            "assign one or pick another interface"
        )
    return info


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    buf = struct.pack("16s24x", name.encode())
    return fcntl.ioctl(sock.fileno(), request, buf)


# --- sockets -------------------------------------------------------------------------------------


def open_socket(family: int, kind: int, proto: int, what: str) -> socket.socket:
    """Open a raw socket, turning a refusal for lack of privilege into PrivilegeError."""
    try:
        return socket.socket(family, kind, proto)
    except PermissionError as exc:
        raise PrivilegeError(f"{what} needs raw sockets: {_RAW_SOCKET_HELP}") from exc
    except OSError as exc:
        raise ScanError(f"{what} could not open a raw socket: {exc.strerror}") from exc


def sending_socket(interface: InterfaceInfo, what: str) -> socket.socket:
    """An AF_PACKET socket for sending frames out of `interface`.

    Bound to protocol 0, so the kernel never queues received frames on it.
    """
    sock = open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, what)
    _bind(sock, interface, 0)
    return sock


def receiving_socket(
    interface: InterfaceInfo, ethertype: int, program: Sequence[Insn], what: str
) -> socket.socket:
    """An AF_PACKET socket queueing the frames of `ethertype` on `interface` that `program` accepts.

    Opened deaf (protocol 0) and bound only once the filter and a large buffer are in place, so
    not a single unfiltered frame is queued and a burst of replies does not overflow it.
    """
    sock = open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0, what)
    try:
        attach_filter(sock, program)
        enlarge_buffer(sock)
        # Our own probes are of no interest to the receiver; kernels before 4.20 lack the option.
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except BaseException:
        sock.close()
        raise
    _bind(sock, interface, ethertype)
    return sock


def _bind(sock: socket.socket, interface: InterfaceInfo, ethertype: int) -> None:
    try:
        sock.bind((interface.name, ethertype))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            raise InterfaceError(
                f"interface {interface.name} disappeared while opening it"
            ) from exc
        raise ScanError(f"cannot bind a raw socket to {interface.name}: {exc.strerror}") from exc


def send_when_room(send: Callable[[], object], error: OSError, what: str) -> None:
    """Retry a send refused for lack of queue room (ENOBUFS); other errors fail the sweep.

    A full transmit queue empties within microseconds, so a few short sleeps are enough; a queue
    that stays full for SEND_RETRY_SECONDS means something else is wrong.
    """
    deadline = time.monotonic() + SEND_RETRY_SECONDS
    while error.errno in (errno.ENOBUFS, errno.EAGAIN) and time.monotonic() < deadline:
        time.sleep(0.0005)
        try:
            send()
            return
        except OSError as again:
            error = again
    if error.errno in (errno.ENETDOWN, errno.ENXIO, errno.ENODEV):
        raise ScanError(
            f"{what}: the interface went down mid-sweep ({error.strerror}); check the link"
        ) from error
    if error.errno in (errno.ENOBUFS, errno.EAGAIN):
        raise ScanError(f"{what}: the transmit queue stayed full; lower the rate") from error
    raise ScanError(f"{what} could not send a probe: {error.strerror}") from error


def enlarge_buffer(sock: socket.socket, size: int = DEFAULT_RCVBUF, *, send: bool = False) -> int:
    """Ask for a receive (`send`: send) buffer of `size` bytes, beyond net.core.rmem_max (wmem_max)
    when privileged.

    Returns the size the kernel granted (it reports twice the request, bookkeeping included).
    """
    forced, plain = (
        (SO_SNDBUFFORCE, socket.SO_SNDBUF) if send else (SO_RCVBUFFORCE, socket.SO_RCVBUF)
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, forced, size)
    except PermissionError:
        # Without CAP_NET_ADMIN the kernel caps the request at rmem_max; that still helps.
        sock.setsockopt(socket.SOL_SOCKET, plain, size)
    return sock.getsockopt(socket.SOL_SOCKET, plain)


def close_soon(*closers: Callable[[], object]) -> None:
    """Call each `close` on a daemon thread, in order, without waiting for them.

    Releasing a packet socket waits for an RCU grace period (about 20 ms each on this kind of
    machine, longer with a ring attached); a sweep that has read its last reply need not wait for
    the kernel's bookkeeping. The descriptors are closed at the latest when the process exits.
    """

    def close_all() -> None:
        for close in closers:
            with contextlib.suppress(OSError):
                close()

    threading.Thread(target=close_all, name="ipguard-socket-close", daemon=True).start()


def packet_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped for this packet socket since the last call (buffer full)."""
    try:
        _packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except OSError:
        return 0
    return int(drops)


# --- classic BPF ---------------------------------------------------------------------------------

# Opcodes of classic BPF (<linux/filter.h>), spelled as the assembler mnemonics.
LDH_ABS = 0x28  # A = u16 at [k]
LDB_ABS = 0x30  # A = u8 at [k]
LDW_ABS = 0x20  # A = u32 at [k]
LDW_IND = 0x40  # A = u32 at [X + k]
LDH_IND = 0x48  # A = u16 at [X + k]
LDB_IND = 0x50  # A = u8 at [X + k]
LDX_MSH = 0xB1  # X = 4 * ([k] & 0xf): an IPv4 header length
JEQ_K = 0x15  # if A == k goto +jt else goto +jf
RET_K = 0x06  # accept k bytes (0: drop)


@dataclass(frozen=True)
class Insn:
    """One classic BPF instruction."""

    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0


def match_all(checks: Sequence[tuple[Insn, int]], snaplen: int) -> list[Insn]:
    """A filter accepting `snaplen` bytes of a frame when every (load, value) check holds."""
    program: list[Insn] = []
    reject = 2 * len(checks) + 1  # index of the final `ret #0`
    for load, value in checks:
        program.append(load)
        here = len(program)
        program.append(Insn(JEQ_K, 0, reject - here - 1, value))
    program += [Insn(RET_K, k=snaplen), Insn(RET_K, k=0)]
    return program


def attach_filter(sock: socket.socket, program: Sequence[Insn]) -> None:
    """Attach a classic BPF program (SO_ATTACH_FILTER); the kernel copies it."""
    raw = b"".join(struct.pack("HBBI", i.code, i.jt, i.jf, i.k) for i in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack(
        "HL", len(program), ctypes.addressof(buf)
    )  # struct sock_fprog, native layout
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
