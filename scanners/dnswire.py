"""The DNS message format (RFC 1035) as far as name probes need it: PTR and NBSTAT queries, answers.

DNS, mDNS and NetBIOS name service share this wire format. Parsing assumes the sender is hostile:
every read is bounds-checked, compression pointers may only point backwards and are followed a
bounded number of times, and a malformed message is a ValueError, never a crash or a hang.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ipguard.scanners.base import clipped

TYPE_PTR = 12
TYPE_CNAME = 5
TYPE_NBSTAT = 0x21
CLASS_IN = 1
MDNS_CLASS_MASK = 0x7FFF  # mDNS uses the top bit of the class for "cache flush" / "unicast reply"
FLAG_RESPONSE = 0x8000
FLAG_RECURSION_DESIRED = 0x0100
MAX_LABELS = 128
MAX_POINTERS = 32
NETBIOS_NAME_LENGTH = 16
NAME_LIMIT = 255  # characters kept of a name a host gave us

Name = tuple[bytes, ...]


@dataclass(frozen=True)
class Record:
    """One resource record: owner name, type, class and where its data lies in the message."""

    name: Name
    rtype: int
    rclass: int
    rdata: bytes
    offset: int  # of rdata in the message, for names compressed inside it


@dataclass(frozen=True)
class Message:
    """A parsed DNS message: its id, flags, questions and every record of every section."""

    ident: int
    flags: int
    questions: tuple[tuple[Name, int], ...]
    records: tuple[Record, ...]
    raw: bytes

    @property
    def is_response(self) -> bool:
        """True for an answer (QR bit set)."""
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def rcode(self) -> int:
        """The response code (0: no error, 3: no such name)."""
        return self.flags & 0x000F

    def name_at(self, offset: int) -> Name:
        """The (possibly compressed) name that starts at `offset`, e.g. inside a PTR's data."""
        return read_name(self.raw, offset)[0]


def reverse_name(ip: str) -> Name:
    """The in-addr.arpa name of an IPv4 address: 198.18.0.7 → 7.0.18.198.in-addr.arpa."""
    octets = ip.split(".")
    if len(octets) != 4:
        raise ValueError(f"{ip!r} is not an IPv4 address")
    return (*(octet.encode() for octet in reversed(octets)), b"in-addr", b"arpa")


def netbios_wildcard() -> Name:
    """The NBSTAT query name `*`: 16 bytes half-ASCII encoded into one 32-character label."""
    raw = b"*".ljust(NETBIOS_NAME_LENGTH, b"\0")
    return (bytes(b for byte in raw for b in (0x41 + (byte >> 4), 0x41 + (byte & 0x0F))),)


def query(ident: int, name: Name, rtype: int, *, recursion: bool) -> bytes:
    """One question, no records."""
    flags = FLAG_RECURSION_DESIRED if recursion else 0
    return (
        struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", rtype, CLASS_IN)
    )


def encode_name(name: Name) -> bytes:
    """Labels on the wire, ending with the root label."""
    out = b""
    for label in name:
        if not 0 < len(label) < 64:
            raise ValueError(f"label {label!r} must be 1-63 bytes")
        out += bytes([len(label)]) + label
    return out + b"\0"


def parse(data: bytes) -> Message:
    """Parse a whole message; ValueError when it is truncated or malformed."""
    if len(data) < 12:
        raise ValueError("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHHHH", data)
    offset = 12
    questions = []
    for _ in range(qdcount):
        name, offset = read_name(data, offset)
        rtype, _rclass = _unpack("!HH", data, offset)
        offset += 4
        questions.append((name, rtype))
    records = []
    for _ in range(ancount + nscount + arcount):
        name, offset = read_name(data, offset)
        rtype, rclass, _ttl, length = _unpack("!HHIH", data, offset)
        offset += 10
        if offset + length > len(data):
            raise ValueError("record data runs past the end of the message")
        records.append(Record(name, rtype, rclass, data[offset : offset + length], offset))
        offset += length
    return Message(ident, flags, tuple(questions), tuple(records), data)


def read_name(data: bytes, offset: int) -> tuple[Name, int]:
    """The name at `offset` and the offset just after it (after the first pointer, if any)."""
    labels: list[bytes] = []
    end: int | None = None
    pointers = 0
    while True:
        if offset >= len(data):
            raise ValueError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise ValueError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            pointers += 1
            if target >= offset or pointers > MAX_POINTERS:
                raise ValueError("compression pointer loops or points forward")
            if end is None:
                end = offset + 2
            offset = target
            continue
        if length & 0xC0:
            raise ValueError(f"unsupported label type {length:#x}")
        if length == 0:
            return tuple(labels), end if end is not None else offset + 1
        if offset + 1 + length > len(data):
            raise ValueError("label runs past the end of the message")
        labels.append(data[offset + 1 : offset + 1 + length])
        if len(labels) > MAX_LABELS:
            raise ValueError("too many labels")
        offset += 1 + length


def same_name(a: Name, b: Name) -> bool:
    """DNS names compare without regard to ASCII case."""
    return len(a) == len(b) and all(x.lower() == y.lower() for x, y in zip(a, b, strict=True))


def text(name: Name) -> str:
    """A name as text, as the host gave it: labels joined by dots, no trailing dot.

    Bytes that are not UTF-8 stay visible as \\xNN; the text is cut to NAME_LIMIT characters (the
    last one … when cut).
    """
    return clipped(b".".join(name).decode("utf-8", "backslashreplace"), NAME_LIMIT)


def netbios_names(rdata: bytes) -> list[tuple[str, int, bool]]:
    """The (name, suffix, is_group) entries of an NBSTAT answer's data (RFC 1002, 4.2.18)."""
    if not rdata:
        raise ValueError("empty NBSTAT data")
    count = rdata[0]
    if 1 + 18 * count > len(rdata):
        raise ValueError("NBSTAT name table runs past its data")
    names = []
    for k in range(count):
        entry = rdata[1 + 18 * k : 1 + 18 * (k + 1)]
        flags = struct.unpack_from("!H", entry, 16)[0]
        names.append((_netbios_text(entry[:15]), entry[15], bool(flags & 0x8000)))
    return names


def _netbios_text(raw: bytes) -> str:
    """A NetBIOS name: OEM bytes (UTF-8, else GBK as Chinese Windows has them), spaces trimmed.

    Windows cuts a long computer name to 15 bytes, even inside a double-byte character: a lone
    lead byte at the end is that half, left out.
    """
    raw = raw.rstrip(b" \0")
    for encoding in ("utf-8", "gb18030"):
        try:
            return clipped(raw.decode(encoding), NAME_LIMIT)
        except UnicodeDecodeError:
            continue
    try:
        if raw and raw[-1] >= 0x81:
            return clipped(raw[:-1].decode("gb18030"), NAME_LIMIT)
    except UnicodeDecodeError:
        pass
    return clipped(raw.decode("latin-1"), NAME_LIMIT)


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise ValueError("message truncated") from None
