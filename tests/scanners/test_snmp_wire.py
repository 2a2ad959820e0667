"""SNMP on the wire: BER encoding and decoding, and SNMPv3 USM keys, digests and encryption."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from ipguard.scanners import snmp_ber as ber
from ipguard.scanners.snmp_errors import SnmpError
from ipguard.scanners.snmp_udp import together
from ipguard.scanners.snmp_usm import UsmError, UsmUser, localize, report_reason


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "020100"), (127, "02017f"), (128, "02020080"), (-1, "0201ff"), (-129, "0202ff7f"),
     (2**31, "02050080000000")],
)  # fmt: skip
def test_integer(value: int, encoded: str) -> None:
    assert ber.integer(value).hex() == encoded
    assert ber.decode_value(ber.INTEGER, bytes.fromhex(encoded)[2:]) == value


@pytest.mark.parametrize(
    "text",
    ["1.3.6.1.2.1.1.5.0", "1.0.8802.1.1.2.1.4.1.1.9.0.3.1", "1.3.6.1.4.1.2011.5.25.42",
     "1.3.6.1.2.1.17.7.1.2.2.1.2.4094.0.30.88.163.47.205", "2.999.1"],
)  # fmt: skip
def test_oid_round_trip(text: str) -> None:
    oid = ber.parse_oid(text)
    encoded = ber.encode_oid(oid)
    assert ber.decode_oid(encoded[2:]) == oid
    assert ber.oid_text(oid) == text


def test_response_with_every_value_type() -> None:
    """A response as agents send them: long lengths, application types, exceptions."""
    values = [
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), ber.octets(b"x" * 300)),  # two-octet length
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), bytes.fromhex("4304") + (123456).to_bytes(4, "big")),
        ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1), bytes.fromhex("4004c6120a01")),  # IpAddress
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), b"\x46\x09" + (2**64 - 1).to_bytes(9, "big")),
        ((1, 3, 6, 1, 2, 1, 1, 2, 0), ber.encode_oid((1, 3, 6, 1, 4, 1, 9, 1, 516))),
        ((1, 3, 6, 1, 2, 1, 99), b"\x82\x00"),  # endOfMibView
    ]  # fmt: skip
    body = b"".join(ber.sequence(ber.encode_oid(oid), value) for oid, value in values)
    pdu = ber.tlv(
        ber.RESPONSE, ber.integer(42) + ber.integer(0) + ber.integer(0) + ber.sequence(body)
    )
    version, community, response = ber.decode_community_message(
        ber.community_message(1, b"public", pdu)
    )
    assert (version, community, response.request_id) == (1, b"public", 42)
    decoded = dict(response.varbinds)
    assert decoded[(1, 3, 6, 1, 2, 1, 1, 1, 0)] == b"x" * 300
    assert decoded[(1, 3, 6, 1, 2, 1, 1, 3, 0)] == 123456
    assert decoded[(1, 3, 6, 1, 2, 1, 4, 20, 1, 1)] == bytes((198, 18, 10, 1))
    assert decoded[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1)] == 2**64 - 1
    assert decoded[(1, 3, 6, 1, 2, 1, 1, 2, 0)] == (1, 3, 6, 1, 4, 1, 9, 1, 516)
    assert decoded[(1, 3, 6, 1, 2, 1, 99)].end_of_view


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30", b"\x30\x05\x02\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"],
    ids=["empty", "no length", "short", "not a sequence", "huge length"],
)
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_community_message(garbage)


ENGINE = bytes.fromhex("000000000000000000000002")


@pytest.mark.parametrize(
    ("hash_name", "localized"),
    [
        ("md5", "526f5eed9fcce26f8964c2930787d82b"),  # RFC 3414 A.3.1
        ("sha1", "6695febc9288e36282235fc7151f128497b38f3f"),  # RFC 3414 A.3.2
    ],
)
def test_key_localization_matches_rfc_3414(hash_name: str, localized: str) -> None:
    assert localize(b"maplesyrup", ENGINE, hash_name).hex() == localized


def _user(**changes: object) -> UsmUser:
    values: dict[str, object] = {
        "name": b"ipguard",
        "auth_protocol": "sha256",
        "auth_password": b"auth-secret-1",
        "priv_protocol": "aes",
        "priv_password": b"priv-secret-1",
        "engine_id": ENGINE,
        "boots": 3,
        "time": 1000,
    }
    values.update(changes)
    return UsmUser(**values)  # type: ignore[arg-type]


def test_authpriv_round_trip_and_tampering() -> None:
    sender, receiver = _user(), _user()
    body = ber.pdu(ber.GETBULK, 7, [(1, 3, 6, 1, 2, 1, 17)], 0, 25)
    message = sender.encode(99, b"vlan-20", body)
    assert b"\x2b\x06\x01\x02\x01\x11" not in message  # the OID travels encrypted
    message_id, pdu = receiver.decode(message)
    assert (message_id, pdu.tag, pdu.request_id) == (99, ber.GETBULK, 7)
    assert pdu.varbinds == [((1, 3, 6, 1, 2, 1, 17), None)]
    tampered = bytearray(message)
    tampered[-1] ^= 1
    with pytest.raises(UsmError, match="authentication"):
        receiver.decode(bytes(tampered))
    with pytest.raises(UsmError, match="authentication"):
        _user(auth_password=b"another-key").decode(message)


def test_wrong_privacy_key_is_named() -> None:
    message = _user().encode(5, b"", ber.pdu(ber.GET, 1, [(1, 3, 6, 1, 2, 1, 1, 5, 0)]))
    with pytest.raises((UsmError, ber.BerError)):
        _user(priv_password=b"wrong-priv-key").decode(message)


def test_report_reason() -> None:
    report = ber.Response(ber.REPORT, 1, 0, 0, [((1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0), 1)])
    assert report_reason(report) == "unknown user name"
    assert report_reason(ber.Response(ber.RESPONSE, 1, 0, 0, [])) is None


def test_together_runs_all_and_stops_the_rest_at_the_first_error() -> None:
    """The walks of a poll run side by side: nothing to run is no error; the first failure
    cancels the others and is what the caller sees."""
    finished: list[str] = []

    async def ok(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        finished.append(name)

    async def fail() -> None:
        await asyncio.sleep(0.01)
        raise SnmpError("silent agent")

    asyncio.run(together([]))
    asyncio.run(together([ok("a", 0.01), ok("b", 0)]))
    assert sorted(finished) == ["a", "b"]
    with pytest.raises(SnmpError, match="silent agent"):
        asyncio.run(together([ok("slow", 5), fail()]))
    assert "slow" not in finished


def _mangled(message: bytes, seed: int, count: int) -> list[bytes]:
    """`count` variants of `message` with a few octets changed, inserted, cut or the tail lost."""
    chance = random.Random(seed)
    variants = []
    for _ in range(count):
        data = bytearray(message)
        for _ in range(chance.randint(1, 4)):
            at = chance.randrange(len(data))
            how = chance.random()
            if how < 0.5:
                data[at] = chance.randrange(256)
            elif how < 0.7:
                del data[at:]
            elif how < 0.85:
                data.insert(at, chance.randrange(256))
            else:
                del data[at : at + chance.randint(1, 5)]
            if not data:
                break
        variants.append(bytes(data))
    return variants


@pytest.mark.parametrize(
    ("level", "changes"),
    [
        ("noAuthNoPriv", {"auth_protocol": "", "auth_password": b"", "priv_protocol": ""}),
        ("authNoPriv", {"priv_protocol": "", "priv_password": b""}),
        ("authPriv", {}),
    ],
)
def test_mangled_v3_answers_raise_only_decoding_errors(
    level: str, changes: dict[str, object]
) -> None:
    """A hostile or broken agent's v3 message (a header without its fields, a privacy flag the
    user has no key for, boots beyond 32 bits, a salt of the wrong size) is refused with
    BerError or UsmError, which the client reports naming the device; anything else escaped
    the poll and stopped the scan of every device."""
    varbind = ber.sequence(ber.encode_oid((1, 3, 6, 1, 2, 1, 1, 5, 0)), ber.octets(b"sw"))
    fields = ber.integer(7) + ber.integer(0) + ber.integer(0)
    response = ber.tlv(ber.RESPONSE, fields + ber.sequence(varbind))
    message = _user(**changes).encode(7, b"", response)
    assert _user(**changes).decode(message)[1].varbinds[0][1] == b"sw"
    header_cut = ber.sequence(ber.integer(3), ber.sequence(ber.integer(7)), ber.octets(b""))
    receiver = _user(**changes)  # one user: its localized keys are kept (1 MB of hashing each)
    for data in [header_cut + ber.octets(b""), *_mangled(message, seed=len(level), count=2000)]:
        with contextlib.suppress(ber.BerError, UsmError):
            receiver.decode(data)


def test_mangled_v2c_answers_raise_only_ber_errors() -> None:
    body = b"".join(
        ber.sequence(ber.encode_oid((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, n)), ber.octets(b"Gi0/1"))
        for n in range(1, 5)
    )
    pdu = ber.tlv(
        ber.RESPONSE, ber.integer(9) + ber.integer(0) + ber.integer(0) + ber.sequence(body)
    )
    for data in _mangled(ber.community_message(1, b"public", pdu), seed=1, count=3000):
        with contextlib.suppress(ber.BerError):
            ber.decode_community_message(data)


def test_an_unauthenticated_response_is_refused_to_an_authenticated_user() -> None:
    """Only reports may come below the user's security level: an unauthenticated, unencrypted
    response (anyone on the path could send it with the right msgID) is not data."""
    forged = _user(auth_protocol="", auth_password=b"", priv_protocol="", priv_password=b"")
    response = ber.tlv(
        ber.RESPONSE, ber.integer(7) + ber.integer(0) + ber.integer(0) + ber.sequence(b"")
    )
    with pytest.raises(UsmError, match="lacks the authentication"):
        _user().decode(forged.encode(7, b"", response))
    report = ber.tlv(
        ber.REPORT, ber.integer(7) + ber.integer(0) + ber.integer(0) + ber.sequence(b"")
    )
    assert _user().decode(forged.encode(7, b"", report))[1].tag == ber.REPORT


def test_oid_subidentifier_beyond_32_bits_is_refused() -> None:
    """RFC 2578 caps a subidentifier at 2^32 - 1; a 2,300-octet one would become an integer
    Python refuses to print (a crash wherever the OID is shown)."""
    assert ber.decode_oid(ber.encode_oid((1, 3, 6, 1, 4, 1, 2**32 - 1))[2:])[-1] == 2**32 - 1
    assert ber.decode_oid(ber.encode_oid((2, 2**32 - 1, 7))[2:]) == (2, 2**32 - 1, 7)
    for oid in [(1, 3, 6, 1, 4, 1, 2**32), (1, 3, 6, 1, 4, 1, 2**16000), (2, 2**32, 1)]:
        with pytest.raises(ber.BerError, match="2\\^32"):
            ber.decode_oid(ber.encode_oid(oid)[2:])
    with pytest.raises(ber.BerError):
        ber.decode_oid(b"\x2b\x86\x86\x86\x86")  # ends inside a long subidentifier


def test_empty_oid_value_reads_as_zero_dot_zero() -> None:
    """An agent sending sysObjectID as an OID of no octets (`06 00`): net-snmp reads 0.0; the
    whole answer was refused as malformed, and the device's poll lost with it."""
    varbind = ber.sequence(ber.encode_oid((1, 3, 6, 1, 2, 1, 1, 2, 0)), b"\x06\x00")
    fields = ber.integer(3) + ber.integer(0) + ber.integer(0)
    message = ber.community_message(1, b"c", ber.tlv(ber.RESPONSE, fields + ber.sequence(varbind)))
    assert ber.decode_community_message(message)[2].varbinds == [
        ((1, 3, 6, 1, 2, 1, 1, 2, 0), (0, 0))
    ]
    with pytest.raises(ber.BerError, match="empty OID"):  # as a varbind's name it is no OID
        ber.decode_community_message(message.replace(b"\x06\x08\x2b", b"\x06\x00\x2b"))
