"""Every IPv4 address of an interface, as rtnetlink lists them (RTM_GETADDR).

The ioctl behind `rawsock.interface_info` gives an interface's primary address only. A VLAN may
carry several subnets at once ("multinetting": the router holds a secondary address in each, and
so may the sensor); each of the interface's networks is on its link, so the sweep asks it by ARP,
from the address it holds there. Reads the kernel's table of the calling thread's namespace;
needs no privilege and sends nothing on the network.
"""

from __future__ import annotations

import socket
import struct

RTM_GETADDR = 22
RTM_NEWADDR = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2
IFA_ADDRESS = 1
IFA_LOCAL = 2
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefix length, flags, scope, ifindex
_ATTR = struct.Struct("=HH")  # rtattr: length, type
MAX_REPLY = 65536
MAX_MESSAGES = 10_000  # a dump is a few messages per address: bounded all the same


def ipv4_networks(index: int | None) -> list[tuple[str, int]]:
    """(address, prefix length) of each IPv4 address on interface `index` (None: on every
    interface), in the kernel's order (the primary address of each subnet before its
    secondaries); [] when the kernel will not say."""
    request = _HEADER.pack(
        _HEADER.size + _IFADDR.size, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
    ) + _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)
    found: list[tuple[str, int]] = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            sock.settimeout(2.0)
            sock.sendto(request, (0, 0))
            for _ in range(MAX_MESSAGES):
                data = sock.recv(MAX_REPLY)
                done = _parse(data, index, found)
                if done:
                    return found
    except OSError:
        return []
    return found


def _parse(data: bytes, index: int | None, found: list[tuple[str, int]]) -> bool:
    """Add the addresses of `index` in one datagram of the dump; whether the dump has ended."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            return True  # malformed: stop rather than loop
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            return True
        if kind == RTM_NEWADDR and length >= _HEADER.size + _IFADDR.size:
            body = offset + _HEADER.size
            family, prefixlen, _f, _scope, ifindex = _IFADDR.unpack_from(data, body)
            if family == socket.AF_INET and index in (None, ifindex):
                address = _address(data, body + _IFADDR.size, offset + length)
                if address is not None:
                    found.append((address, prefixlen))
        offset += _align(length)
    return False


def _address(data: bytes, start: int, end: int) -> str | None:
    """IFA_LOCAL (the interface's own address), else IFA_ADDRESS, from a message's attributes."""
    values: dict[int, bytes] = {}
    while start + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < _ATTR.size:
            break
        values[kind] = data[start + _ATTR.size : start + length]
        start += _align(length)
    raw = values.get(IFA_LOCAL) or values.get(IFA_ADDRESS)
    return socket.inet_ntoa(raw) if raw is not None and len(raw) == 4 else None


def _align(length: int) -> int:
    return (length + 3) & ~3
