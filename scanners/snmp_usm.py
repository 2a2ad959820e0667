"""SNMPv3 messages with the User-based Security Model (RFC 3414, 3826, 7860).

Authentication is HMAC-MD5-96, HMAC-SHA-96 or the HMAC-SHA-2 family. Privacy is AES-128 in CFB
mode (RFC 3826), CBC-DES (RFC 3414 8, what older switches still run), or AES-192/256 in CFB mode,
whose keys are longer than the hash localizing them: net-snmp's `AES-192`/`AES-256` extend the key
as draft-blumenthal-aes-usm-04 does, and Cisco, Extreme and net-snmp's `AES-192-C`/`AES-256-C` as
draft-reeder-snmpv3-usm-3desede does. Keys are localized to the agent's engine ID learnt by
discovery: an unauthenticated request answered by a report that carries the engine ID, boots and
time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

from ipguard.scanners import snmp_ber as ber

# auth protocol -> (hash name, length of the MAC carried in the message)
AUTH_PROTOCOLS: dict[str, tuple[str, int]] = {
    "md5": ("md5", 12),
    "sha": ("sha1", 12),
    "sha224": ("sha224", 16),
    "sha256": ("sha256", 24),
    "sha384": ("sha384", 32),
    "sha512": ("sha512", 48),
}
# priv protocol -> (cipher, key bytes needed, how a short localized key is extended)
PRIV_PROTOCOLS: dict[str, tuple[str, int, str]] = {
    "des": ("des", 16, ""),  # 8 bytes of DES key, then 8 of pre-IV
    "aes": ("aes", 16, ""),
    "aes192": ("aes", 24, "blumenthal"),
    "aes256": ("aes", 32, "blumenthal"),
    "aes192c": ("aes", 24, "reeder"),
    "aes256c": ("aes", 32, "reeder"),
}
USM = 3
FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE = 0x01, 0x02, 0x04
# usmStats* report OIDs (1.3.6.1.6.3.15.1.1.N.0): what an agent's report complains about
REPORT_REASONS = {
    1: "unsupported security level",
    2: "not in time window",
    3: "unknown user name",
    4: "unknown engine ID",
    5: "wrong digest (authentication key or protocol)",
    6: "decryption error (privacy key or protocol)",
}
USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)


class UsmError(ValueError):
    """A v3 message that fails authentication or decryption, or a report from the agent."""


class UsmForgery(UsmError):
    """A message anyone could have sent: it fails authentication, or lacks what was asked."""


def localize(password: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """RFC 3414 A.2: the password stretched to 1 MB, hashed, then bound to the engine ID."""
    if not password:
        raise UsmError("an empty SNMPv3 key")
    repeated = (password * (1048576 // len(password) + 1))[:1048576]
    key = hashlib.new(hash_name, repeated).digest()
    return hashlib.new(hash_name, key + engine_id + key).digest()


def extend(key: bytes, size: int, how: str, engine_id: bytes, hash_name: str) -> bytes:
    """A localized privacy key cut or extended to `size` bytes, as the protocol's draft says.

    Blumenthal appends the hash of the whole key so far; Reeder appends the last part taken as a
    password and localized again (RFC 3414 A.2 once more).
    """
    part = key
    while len(key) < size:
        if how == "blumenthal":
            part = hashlib.new(hash_name, key).digest()
        else:
            part = localize(part, engine_id, hash_name)
        key += part
    return key[:size]


@dataclass
class UsmUser:
    """A v3 user and the agent it talks to; engine fields are filled by discovery."""

    name: bytes
    auth_protocol: str = ""  # "" for noAuthNoPriv
    auth_password: bytes = field(default=b"", repr=False)
    priv_protocol: str = ""
    priv_password: bytes = field(default=b"", repr=False)
    engine_id: bytes = b""
    boots: int = 0
    time: int = 0
    _keys: tuple[bytes, bytes] | None = field(default=None, repr=False)
    _salt: int = field(default_factory=lambda: int.from_bytes(os.urandom(8), "big"))
    proven: bool = False  # a message of the agent's authenticated with these keys

    @property
    def flags(self) -> int:
        """msgFlags for this user's security level (always reportable)."""
        level = (FLAG_AUTH if self.auth_protocol else 0) | (FLAG_PRIV if self.priv_protocol else 0)
        return level | FLAG_REPORTABLE

    def keys(self) -> tuple[bytes, bytes]:
        """(auth key, priv key) localized to the agent's engine ID."""
        if self._keys is None:
            hash_name = AUTH_PROTOCOLS[self.auth_protocol][0] if self.auth_protocol else "md5"
            auth = (
                localize(self.auth_password, self.engine_id, hash_name)
                if self.auth_protocol
                else b""
            )
            priv = b""
            if self.priv_protocol:
                _cipher, size, how = PRIV_PROTOCOLS[self.priv_protocol]
                priv = localize(self.priv_password, self.engine_id, hash_name)
                priv = extend(priv, size, how, self.engine_id, hash_name)
            self._keys = (auth, priv)
        return self._keys

    def _crypt(self, data: bytes, salt: bytes, boots: int, clock: int, encrypt: bool) -> bytes:
        """The scoped PDU encrypted (or decrypted) with the privacy key and this message's salt."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key = self.keys()[1]
        cipher: Cipher[Any]
        if PRIV_PROTOCOLS[self.priv_protocol][0] == "des":
            # RFC 3414 8.1.1: the IV is the key's last 8 bytes (pre-IV) XOR the salt; a DES key
            # repeated three times is DES as TripleDES computes it (single DES is gone).
            try:  # cryptography 43 moved TripleDES among the "decrepit" algorithms
                from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
            except ImportError:  # pragma: no cover - older cryptography
                from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

            if len(data) % 8:
                if not encrypt:
                    raise ber.BerError("a DES-encrypted PDU that is not whole 8-byte blocks")
                data += b"\x00" * (8 - len(data) % 8)  # BER says where the PDU ends
            iv = bytes(a ^ b for a, b in zip(key[8:16], salt, strict=True))
            cipher = Cipher(TripleDES(key[:8] * 3), modes.CBC(iv))
        else:
            try:  # cryptography 47 moved CFB among the "decrepit" modes; SNMP still needs it
                from cryptography.hazmat.decrepit.ciphers.modes import CFB
            except ImportError:  # pragma: no cover - older cryptography
                from cryptography.hazmat.primitives.ciphers.modes import CFB

            iv = boots.to_bytes(4, "big") + clock.to_bytes(4, "big") + salt
            cipher = Cipher(algorithms.AES(key), CFB(iv))
        worker = cipher.encryptor() if encrypt else cipher.decryptor()
        return worker.update(data) + worker.finalize()

    def encode(
        self, message_id: int, context: bytes, body: bytes, discovery: bool = False
    ) -> bytes:
        """A v3 message carrying the PDU `body` in `context`, authenticated and encrypted."""
        flags = FLAG_REPORTABLE if discovery else self.flags
        scoped = ber.sequence(ber.octets(self.engine_id), ber.octets(context), body)
        priv_params = b""
        if flags & FLAG_PRIV:
            self._salt = (self._salt + 1) % (1 << 64)
            priv_params = self._salt.to_bytes(8, "big")
            if PRIV_PROTOCOLS[self.priv_protocol][0] == "des":  # engineBoots, then a counter
                priv_params = self.boots.to_bytes(4, "big") + priv_params[4:]
            scoped = ber.octets(self._crypt(scoped, priv_params, self.boots, self.time, True))
        mac_size = AUTH_PROTOCOLS[self.auth_protocol][1] if flags & FLAG_AUTH else 0
        security = ber.sequence(
            ber.octets(self.engine_id),
            ber.integer(self.boots),
            ber.integer(self.time),
            ber.octets(b"" if discovery else self.name),
            ber.octets(b"\x00" * mac_size),
            ber.octets(priv_params),
        )
        header = ber.sequence(
            ber.integer(message_id),
            ber.integer(65507),
            ber.octets(bytes((flags,))),
            ber.integer(USM),
        )
        message = ber.sequence(ber.integer(3), header, ber.octets(security), scoped)
        if not mac_size:
            return message
        placeholder = message.index(security) + len(security) - len(priv_params) - 2 - mac_size
        digest = self._mac(message)
        return message[:placeholder] + digest + message[placeholder + mac_size :]

    def _mac(self, message: bytes) -> bytes:
        hash_name, size = AUTH_PROTOCOLS[self.auth_protocol]
        return hmac.new(self.keys()[0], message, hash_name).digest()[:size]

    def decode(self, data: bytes) -> tuple[int, ber.Response]:
        """(message ID, PDU) of an agent's v3 message, checked and decrypted.

        Learns the agent's engine ID, boots and time from it (discovery and time sync). Only a
        report may come with less security than this user's level (RFC 3414 3.1.2: unknown
        user, wrong digest): a response without the authentication or privacy asked for is
        refused, whatever it carries.
        """
        tag, start, end = ber._header(data, 0)
        parts = ber.split(data, start, end)
        if tag != ber.SEQUENCE or len(parts) != 4 or parts[2][0] != ber.OCTET_STRING:
            raise ber.BerError("not an SNMPv3 message")
        header = ber.split(data, parts[1][1], parts[1][2])
        if len(header) != 4 or [item[0] for item in header[:3]] != [
            ber.INTEGER,
            ber.INTEGER,
            ber.OCTET_STRING,
        ]:
            raise ber.BerError("malformed SNMPv3 header")
        message_id = int.from_bytes(data[header[0][1] : header[0][2]], "big")
        flags = data[header[2][1]] & (FLAG_AUTH | FLAG_PRIV) if header[2][2] > header[2][1] else 0
        if flags not in (0, self.flags & FLAG_AUTH, self.flags & (FLAG_AUTH | FLAG_PRIV)):
            raise UsmForgery(f"the agent answers at another security level (msgFlags {flags})")
        _seq, sec_start, sec_end = ber._header(data, parts[2][1])
        security = ber.split(data, sec_start, sec_end)
        if len(security) != 6:
            raise ber.BerError("malformed USM security parameters")

        def field_bytes(index: int) -> bytes:
            return bytes(data[security[index][1] : security[index][2]])

        engine_id, salt = field_bytes(0), field_bytes(5)
        boots = int.from_bytes(field_bytes(1), "big")
        clock = int.from_bytes(field_bytes(2), "big")
        if max(boots, clock) > 0x7FFFFFFF or (flags & FLAG_PRIV and len(salt) != 8):
            raise ber.BerError("malformed USM security parameters")
        if flags & FLAG_AUTH:
            self._check_mac(data, security[4])
        if engine_id:
            if engine_id != self.engine_id:
                self.engine_id, self._keys = engine_id, None
            self.boots, self.time = boots, clock
        scoped_start = parts[3][3]
        if flags & FLAG_PRIV:
            encrypted = bytes(data[parts[3][1] : parts[3][2]])
            data, scoped_start = self._crypt(encrypted, salt, boots, clock, False), 0
        try:
            _seq, scoped, scoped_end = ber._header(data, scoped_start)
            inner = ber.split(data, scoped, scoped_end)
            if len(inner) != 3:
                raise ber.BerError("not a scoped PDU")
            response = ber.decode_pdu(data, inner[2][3])
        except ber.BerError:
            if not flags & FLAG_PRIV:
                raise
            # authenticated, so what came is what the agent sent: our key made nonsense of it
            raise UsmError(
                "cannot decrypt the agent's answer: wrong privacy key or protocol"
            ) from None
        if response.tag != ber.REPORT and flags != self.flags & (FLAG_AUTH | FLAG_PRIV):
            raise UsmForgery("the agent's answer lacks the authentication or privacy asked for")
        return message_id, response

    def _check_mac(self, data: bytes, where: tuple[int, int, int, int]) -> None:
        if not self.auth_protocol:
            return
        received = bytes(data[where[1] : where[2]])
        blanked = data[: where[1]] + b"\x00" * len(received) + data[where[2] :]
        if not hmac.compare_digest(self._mac(blanked), received):
            raise UsmForgery("the agent's answer fails authentication: wrong key or protocol")
        self.proven = True


def report_reason(response: ber.Response) -> str | None:
    """What a REPORT PDU complains about (usmStats counters), or None for another PDU."""
    if response.tag != ber.REPORT:
        return None
    for oid, _value in response.varbinds:
        if oid[: len(USM_STATS)] == USM_STATS and len(oid) > len(USM_STATS):
            return REPORT_REASONS.get(oid[len(USM_STATS)], "report " + ber.oid_text(oid))
    return "report " + ", ".join(ber.oid_text(oid) for oid, _ in response.varbinds)
