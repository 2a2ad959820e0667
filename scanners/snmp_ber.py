"""SNMP messages in BER (X.690), encoded and decoded by hand.

pysnmp 7 decodes a 125,000-varbind ARP table in 42 s and ezsnmp in 11 s where net-snmp's
`snmpbulkwalk` needs 0.8 s (bench/snmp.py); the cost is in their generic ASN.1 object models.
SNMP uses a handful of BER types, so a decoder that turns a response straight into
`(oid tuple, value)` pairs keeps pace with net-snmp.

Values decode to plain Python: INTEGER, Counter32, Gauge32, TimeTicks, Counter64 → int;
OCTET STRING, IpAddress, Opaque → bytes; OBJECT IDENTIFIER → tuple of ints; NULL → None; the
exceptions noSuchObject / noSuchInstance / endOfMibView → `EXCEPTION` markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Oid = tuple[int, ...]

INTEGER, OCTET_STRING, NULL, OBJECT_ID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
GET, GETNEXT, RESPONSE, GETBULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
_APPLICATION_INTS = frozenset({0x41, 0x42, 0x43, 0x46})  # Counter32, Gauge32, TimeTicks, Counter64
_APPLICATION_BYTES = frozenset({0x40, 0x44})  # IpAddress, Opaque


class BerError(ValueError):
    """A message that is not well-formed BER or not an SNMP message."""


@dataclass(frozen=True)
class Exceptional:
    """A varbind with no value: noSuchObject, noSuchInstance or endOfMibView."""

    tag: int

    @property
    def end_of_view(self) -> bool:
        """True for endOfMibView: the agent has nothing after this OID."""
        return self.tag == END_OF_MIB_VIEW


EXCEPTION = {tag: Exceptional(tag) for tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW)}


def parse_oid(text: str) -> Oid:
    """`1.3.6.1.2.1` (a leading dot allowed) as a tuple of ints."""
    return tuple(int(arc) for arc in text.strip().lstrip(".").split("."))


def oid_text(oid: Oid) -> str:
    """The dotted text of an OID."""
    return ".".join(map(str, oid))


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One BER element."""
    return bytes((tag,)) + _length(len(content)) + content


def integer(value: int) -> bytes:
    """A BER INTEGER (two's complement, minimal length)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def octets(value: bytes) -> bytes:
    """A BER OCTET STRING."""
    return tlv(OCTET_STRING, value)


def sequence(*items: bytes) -> bytes:
    """A BER SEQUENCE of already-encoded items."""
    return tlv(SEQUENCE, b"".join(items))


def encode_oid(oid: Oid) -> bytes:
    """A BER OBJECT IDENTIFIER."""
    if len(oid) < 2:
        raise BerError(f"an OID needs two arcs at least: {oid_text(oid)}")
    body = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):  # the first two arcs share one subidentifier
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(OBJECT_ID, bytes(body))


def pdu(tag: int, request_id: int, oids: list[Oid], error: int = 0, index: int = 0) -> bytes:
    """A request PDU; for GETBULK `error` is non-repeaters and `index` max-repetitions."""
    varbinds = b"".join(sequence(encode_oid(oid), b"\x05\x00") for oid in oids)
    return tlv(tag, integer(request_id) + integer(error) + integer(index) + sequence(varbinds))


def community_message(version: int, community: bytes, body: bytes) -> bytes:
    """An SNMPv1 (version 0) or v2c (version 1) message around a PDU."""
    return sequence(integer(version), octets(community), body)


def _header(data: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at `pos`."""
    try:
        tag = data[pos]
        first = data[pos + 1]
    except IndexError:
        raise BerError("message ends inside an element header") from None
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise BerError("unsupported BER length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        size = first
    end = pos + size
    if end > len(data):
        raise BerError("element runs past the end of the message")
    return tag, pos, end


_HIGH_OCTET = re.compile(rb"[\x80-\xff]")
# Five octets or more of one subidentifier: possibly past 2^32 - 1, the largest SNMP allows
# (RFC 2578 3.5). A hostile agent's 2,000-octet arc would otherwise become an integer too long
# to print (Python refuses to turn an int of over 4,300 digits into text).
_LONG_SUBID = re.compile(rb"[\x80-\xff]{4,}")
MAX_SUBID = 0xFFFFFFFF


def decode_oid(body: bytes | memoryview) -> Oid:
    """An OBJECT IDENTIFIER's content octets as a tuple of ints."""
    if not body:
        raise BerError("empty OID")
    data = bytes(body)
    if data[-1] & 0x80:
        raise BerError("OID ends inside a subidentifier")
    if _LONG_SUBID.search(data) is not None:
        return _checked_oid(data)
    first = data[0]
    top = min(first // 40, 2)
    # Subidentifiers below 128 are one octet each: up to the first octet of a longer one (a
    # table index holding an IP address or a MAC) they are taken as they are, at C speed.
    high = _HIGH_OCTET.search(data)
    if high is None:
        return (top, first - 40 * top, *data[1:])
    if high.start() > 0:
        cut = high.start()
        subids = [top, first - 40 * top, *data[1:cut]]
        value = 0
        for byte in data[cut:]:
            if byte & 0x80:
                value = (value | byte & 0x7F) << 7
            else:
                subids.append(value | byte)
                value = 0
        return tuple(subids)
    return _checked_oid(data)  # the first subidentifier is itself long (2.999.…)


def _checked_oid(data: bytes) -> Oid:
    """The general case of `decode_oid`, refusing subidentifiers SNMP does not allow."""
    subids: list[int] = []
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if value > MAX_SUBID + 40 * 2:  # (the first subidentifier holds two arcs)
            raise BerError("OID subidentifier beyond 2^32 - 1")
        if not byte & 0x80:
            if subids and value > MAX_SUBID:
                raise BerError("OID subidentifier beyond 2^32 - 1")
            subids.append(value)
            value = 0
    top = min(subids[0] // 40, 2)
    return (top, subids[0] - 40 * top, *subids[1:])


def decode_value(tag: int, body: bytes | memoryview) -> Any:
    """One varbind value as plain Python (see the module docstring)."""
    if tag == INTEGER:
        return int.from_bytes(body, "big", signed=True)
    if tag == OCTET_STRING or tag in _APPLICATION_BYTES:
        return bytes(body)
    if tag in _APPLICATION_INTS:
        return int.from_bytes(body, "big")
    if tag == OBJECT_ID:
        # An empty OID value (some agents' sysObjectID) reads as zeroDotZero, as net-snmp reads it
        return decode_oid(body) if len(body) else (0, 0)
    if tag == NULL:
        return None
    marker = EXCEPTION.get(tag)
    if marker is None:
        raise BerError(f"unknown value type 0x{tag:02x}")
    return marker


@dataclass(frozen=True)
class Response:
    """A decoded response or report PDU."""

    tag: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[Oid, Any]]


def decode_pdu(data: bytes | memoryview, pos: int = 0) -> Response:
    """The PDU at `pos`: its header fields and every varbind."""
    tag, pos, end = _header(data, pos)
    fields: list[int] = []
    for _ in range(3):
        kind, start, stop = _header(data, pos)
        if kind != INTEGER:
            raise BerError("PDU header is not three INTEGERs")
        fields.append(int.from_bytes(data[start:stop], "big", signed=True))
        pos = stop
    kind, pos, stop = _header(data, pos)
    if kind != SEQUENCE or stop > end:
        raise BerError("PDU without a varbind list")
    return Response(tag, fields[0], fields[1], fields[2], _varbinds(data, pos, stop))


def _varbinds(data: bytes | memoryview, pos: int, stop: int) -> list[tuple[Oid, Any]]:
    """The varbind list between `pos` and `stop`.

    The hot loop of a walk (one pass per row): short-form lengths, the common case, are read
    inline; anything else goes through `_header`.
    """
    varbinds: list[tuple[Oid, Any]] = []
    append = varbinds.append
    try:
        while pos < stop:
            pos = _one_varbind(data, pos, stop, append)
    except IndexError:
        raise BerError("message ends inside a varbind") from None
    return varbinds


def _one_varbind(data: bytes | memoryview, pos: int, stop: int, append: Any) -> int:
    """Decode the varbind at `pos`, hand it to `append`; where the next one starts."""
    size = data[pos + 1]
    if size & 0x80:
        _kind, inner, pos = _header(data, pos)
    else:
        inner, pos = pos + 2, pos + 2 + size
    if data[inner] != OBJECT_ID:
        raise BerError("varbind without an OID")
    size = data[inner + 1]
    if size & 0x80:
        _tag, oid_start, oid_end = _header(data, inner)
    else:
        oid_start, oid_end = inner + 2, inner + 2 + size
    value_tag, value_start, value_end = _header(data, oid_end)
    if value_end > pos or pos > stop:
        raise BerError("varbind runs past its end")
    append(
        (
            decode_oid(data[oid_start:oid_end]),
            decode_value(value_tag, data[value_start:value_end]),
        )
    )
    return pos


def split(data: bytes | memoryview, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, content start, content end, element start) of each element from `pos` to `end`."""
    items = []
    while pos < end:
        tag, start, stop = _header(data, pos)
        items.append((tag, start, stop, pos))
        pos = stop
    return items


def decode_community_message(data: bytes) -> tuple[int, bytes, Response]:
    """(version, community, PDU) of an SNMPv1/v2c message."""
    tag, start, end = _header(data, 0)
    if tag != SEQUENCE:
        raise BerError("not an SNMP message")
    parts = split(data, start, end)
    if len(parts) != 3 or parts[0][0] != INTEGER or parts[1][0] != OCTET_STRING:
        raise BerError("not an SNMPv1/v2c message")
    version, community, body = parts
    return (
        int.from_bytes(data[version[1] : version[2]], "big"),
        bytes(data[community[1] : community[2]]),
        decode_pdu(data, body[3]),
    )
