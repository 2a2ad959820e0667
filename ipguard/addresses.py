"""Addresses, one way: the device IP and MAC parsers and the IP sort key every layer uses.

Standard library and netaddr only (netaddr imported when a non-canonical MAC needs it), so that
scanners, policies, config and the ledger can all build on it. Parsers return the canonical text
DESIGN.md stores (IPv4/IPv6 as `ipaddress` writes them, MACs as `aa:bb:cc:dd:ee:ff`) or raise
`AddressError` whose message is the reason, for the caller to name the field and value.

One spelling per address: an IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is refused rather
than canonicalised, in devices and pools alike, so that each address has exactly one stored text
and a later IPv6 ledger can give IPv6 addresses their own column without ambiguity.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable

_CANONICAL_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$")
_UNSPECIFIED_V4 = bytes(4)
# What a spreadsheet leaves of a MAC it took for a number: digits, maybe a fraction or an exponent.
_NUMBER = re.compile(r"^[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?$")
# Dotted IPv4 with a leading zero in some part: inet_aton and ping read 010 as octal (8).
_LEADING_ZEROS = re.compile(r"^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$")
_PADDED_PART = re.compile(r"(?:^|\.)0[0-9]")
# The textual notations, all 48 bits spelt out: six groups of 1-2 digits (aa:bb:…, aa-bb-…), three
# of four (Cisco aabb.ccdd.eeff, Huawei and H3C aabb-ccdd-eeff), two of six (aabbcc-ddeeff) or
# twelve digits. netaddr's own parser would also take short group lists and decimal integers.
_TEXTUAL_MAC = re.compile(
    r"^(?:[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2}){4}"
    r"|[0-9a-f]{4}([.:-])[0-9a-f]{4}\2[0-9a-f]{4}"
    r"|[0-9a-f]{6}[:-][0-9a-f]{6}"
    r"|[0-9a-f]{12})$"
)


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")

# The most IPv4 addresses one scan sweeps (a /12). A larger request is a mistake, refused before
# anything is sent: 0.0.0.0/0 would cost minutes of route lookups (one per /24) and then four
# billion targets.
MAX_SWEEP_ADDRESSES = 1 << 20


def ipv4_size(subnets: Iterable[str]) -> int:
    """How many IPv4 addresses the subnets (CIDR texts) hold together, overlaps counted once."""
    networks = [
        network
        for network in (ipaddress.ip_network(text) for text in subnets)
        if isinstance(network, ipaddress.IPv4Network)
    ]
    return sum(block.num_addresses for block in ipaddress.collapse_addresses(networks))


class AddressError(ValueError):
    """Text that is not a usable address; the message says why."""


def _ascii(text: str) -> str:
    """`text` stripped, with what an input method in Chinese or Japanese mode types for digits,
    letters and `.:-` (full-width forms, the ideographic full stop) made ASCII."""
    value = text.strip()
    if value.isascii():
        return value
    return unicodedata.normalize("NFKC", value).replace("\u3002", ".").strip()


def parse_ip(text: str) -> str:
    """Canonical text of one host address, or AddressError (the reason) for anything else."""
    value = _ascii(text)
    if not value:
        raise AddressError("IP address is required")
    try:
        # The common case, dotted IPv4, in C: inet_pton takes exactly the canonical form
        # (no leading zeros), as ipaddress does, at a tenth of the cost per row of an import.
        packed = socket.inet_pton(socket.AF_INET, value)
    except (OSError, ValueError):  # not dotted IPv4 (ValueError: a NUL in the text)
        pass
    else:
        if packed[0] in (0, 127) or packed[0] >= 224:
            _refuse(ipaddress.IPv4Address(packed))
        return value
    _refuse_zone(value)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise AddressError(_not_an_ip(value)) from None
    _refuse(address)
    return str(address)


def _not_an_ip(value: str) -> str:
    """Why `value` is not an IP address, naming what it is when that is plain."""
    if _TEXTUAL_MAC.match(value.lower()):
        return "not an IP address: a MAC address (are the columns swapped?)"
    address, _, prefix = value.partition("/")
    if prefix:
        try:
            host = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
        if prefix == str(host.max_prefixlen):
            return f"not an IP address: a network; give the address alone ({host})"
        return "not an IP address: a network, not one device's address"
    if _LEADING_ZEROS.match(value) and _PADDED_PART.search(value):
        plain = ".".join(str(int(part)) for part in value.split("."))
        try:
            socket.inet_pton(socket.AF_INET, plain)
        except OSError:
            return "not an IP address"
        return (
            "not an IP address: leading zeros are ambiguous (010 is 8 to some tools): "
            f"write {plain} if that is the address meant"
        )
    return "not an IP address"


def _refuse_zone(value: str) -> None:
    """Refuse a scoped address: its zone index names a link, not a device."""
    if "%" in value:
        raise AddressError(
            "a scoped address (zone index after %) names a link, not a device; "
            "give the address without %…"
        )


def _refuse(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Refuse what cannot be one device's address, with the reason."""
    if address.is_unspecified or address.is_multicast:
        raise AddressError("not a host address (unspecified or multicast)")
    if address.is_loopback:
        raise AddressError(
            "a loopback address never leaves its host; give the device's own address"
        )
    if address in _THIS_NETWORK:
        raise AddressError("0.0.0.0/8 means 'this network' and is never a device's address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise AddressError(f"an IPv4 address written as IPv6; register it as {address.ipv4_mapped}")
    if address.is_reserved:
        raise AddressError("not a host address (reserved or broadcast range)")


def parse_static_ipv6(text: str) -> str:
    """Canonical text of one static IPv6 address a device can be registered with, or AddressError.

    Only global and unique-local (ULA) unicast addresses are a device's own: the others either
    belong to no single device (multicast, unspecified, loopback), are an IPv4 address in disguise
    (IPv4-mapped), or are scoped to one link and differ per interface (link-local, zone indexes).
    """
    value = _ascii(text)
    if not value:
        raise AddressError("IPv6 address is required")
    _refuse_zone(value)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise AddressError("not an IPv6 address") from None
    if isinstance(address, ipaddress.IPv4Address):
        raise AddressError("an IPv4 address; it belongs in the ip column")
    reason = _static_ipv6_refusal(address)
    if reason:
        raise AddressError(reason)
    return str(address)


def _static_ipv6_refusal(address: ipaddress.IPv6Address) -> str:
    """Why an IPv6 address cannot be registered as a device's static address ("" if it can)."""
    if address.ipv4_mapped is not None:
        return f"an IPv4 address written as IPv6; register it as {address.ipv4_mapped} in ip"
    if address.is_unspecified:
        return "the unspecified address :: belongs to no device"
    if address.is_loopback:
        return "the loopback address ::1 never leaves its host"
    if address.is_multicast:
        return "a multicast address (ff00::/8) names a group, not a device"
    if address.is_link_local:
        return (
            "a link-local address (fe80::/10) is scoped to one link and differs per interface; "
            "register the device's global or unique-local (fd00::/8) address"
        )
    if address.is_site_local:
        return "a site-local address (fec0::/10) is deprecated (RFC 3879); use a unique-local one"
    if address.is_reserved:
        return "not a unicast address in use (reserved range); give a global or unique-local one"
    return ""


def check_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    """The same refusals for a range (a pool) as `parse_ip` makes for one address."""
    first = network.network_address
    if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped is not None:
        prefix = network.prefixlen - 96
        shown = f" ({first.ipv4_mapped}/{prefix})" if prefix >= 0 else ""
        raise AddressError(f"an IPv4 range written as IPv6; give it as IPv4{shown}")
    if first.is_multicast or network.broadcast_address.is_multicast:
        raise AddressError("a multicast range cannot hold devices")
    if first.is_reserved or network.broadcast_address.is_reserved:
        raise AddressError("a reserved range cannot hold devices")


def parse_mac(text: str) -> str:
    """Canonical unicast MAC from a textual notation (`AA-BB-…`, `aabb.ccdd.eeff`, `aabbccddeeff`).

    Only text notations are accepted: netaddr alone would also read a decimal integer
    (`12345` → 00:00:00:00:30:39), which is always a typo or a spreadsheet number.
    """
    value = _ascii(text)
    if not value:
        raise AddressError("MAC address is required")
    lowered = value.lower()
    if not _CANONICAL_MAC.match(lowered):  # files exported by ipguard skip netaddr
        if not _TEXTUAL_MAC.match(lowered):
            raise AddressError(_not_a_mac(value))
        from netaddr import EUI, mac_unix_expanded

        lowered = str(EUI(lowered, dialect=mac_unix_expanded))
    if lowered == "00:00:00:00:00:00":
        raise AddressError("all-zero MAC cannot belong to a device")
    if int(lowered[:2], 16) & 1:
        raise AddressError("multicast or broadcast MAC cannot belong to a device")
    return lowered


def _not_a_mac(value: str) -> str:
    """Why `value` is not a MAC, naming what a spreadsheet does to MACs typed as numbers."""
    reason = "not a MAC address (like aa:bb:cc:dd:ee:ff)"
    if not _NUMBER.match(value.lower()):
        return reason
    shape = "a number in scientific notation" if "e" in value.lower() else "a number"
    shown = value if len(value) < 40 else "it"
    return (
        f"{reason}: {shown} is {shape}, as a spreadsheet makes of a MAC it took for one "
        "(leading zeros and digits dropped); format the column as Text and retype it"
    )


def ip_sort_key(ip: str | None) -> tuple[int, int, str]:
    """Order addresses numerically: none first, then IPv4, IPv6, and unparsable text last."""
    if not ip:
        return (0, 0, "")
    try:
        return (4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big"), "")  # in C
    except (OSError, ValueError):
        pass
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0, ip)
    return (address.version, int(address), "")
