"""The addresses ipguard may probe: the configured subnets and nothing else."""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket
from collections.abc import Iterable

from netaddr import IPNetwork, IPSet

from ipguard.addresses import MAX_SWEEP_ADDRESSES
from ipguard.errors import InvalidValue, ScopeError

# Expanding a whole /8 would build sixteen million strings; a sweep that large is a mistake
# (`ipguard scan` refuses it before it starts).
MAX_TARGETS = MAX_SWEEP_ADDRESSES

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_pack_v4 = functools.partial(socket.inet_pton, socket.AF_INET)


class Scope:
    """The subnets ipguard is authorised to scan ([scan] subnets in ipguard.toml).

    Every sweep checks its targets against its scope before sending anything.

    >>> scope = Scope(["198.19.0.0/24"])
    >>> scope.targets(["198.19.0.0/30"])
    ['198.19.0.1', '198.19.0.2', '198.19.0.3']
    """

    def __init__(self, subnets: Iterable[str]) -> None:
        self.subnets: tuple[str, ...] = tuple(
            _network(text, "configured subnet") for text in subnets
        )
        self._set = IPSet(self.subnets)
        merged = [(r.first, r.last) for r in self._set.iter_ipranges() if r.version == 4]
        self._v4_firsts = [first for first, _ in merged]
        self._v4_lasts = [last for _, last in merged]
        # A configured IPv4 subnet's own network and broadcast addresses are no hosts (RFC 919,
        # RFC 3021 for /31).
        self._edges: set[int] = set()
        for text in self.subnets:
            net = IPNetwork(text)
            if net.version == 4 and net.prefixlen < 31:
                self._edges.update((net.first, net.last))

    def __repr__(self) -> str:
        return f"Scope({list(self.subnets)!r})"

    def __contains__(self, ip: object) -> bool:
        try:
            self.check(str(ip))
        except (ScopeError, InvalidValue):
            return False
        return True

    def check(self, ip: str) -> str:
        """Return `ip` in canonical form, or raise ScopeError when it lies outside the scope."""
        address = _address(ip)
        if address.version == 4:
            inside = self._contains_v4(int(address))
        else:
            inside = str(address) in self._set
        if not inside:
            raise ScopeError(f"{address} {self._outside}")
        return str(address)

    def check_all_v4(self, ips: Iterable[str]) -> list[bytes]:
        """Packed forms of IPv4 targets, in order and without repeats; ScopeError for any outsider.

        The fast path of a sweep's input check: a /16 of targets takes milliseconds.
        """
        ips = list(ips)
        try:
            unique = list(dict.fromkeys(map(_pack_v4, ips)))
        except (OSError, TypeError):
            unique = []  # the loop below names the culprit
        # Packed big-endian addresses sort as numbers do: when the lowest and the highest lie in
        # one merged range of the scope, everything between them does too.
        if unique and self._one_range_holds(min(unique), max(unique)):
            return unique
        packed: dict[bytes, None] = {}
        for ip in ips:
            try:
                raw = socket.inet_pton(socket.AF_INET, ip)
            except (OSError, TypeError):
                self.check(ip)  # explains an IPv6 or malformed target
                raise InvalidValue(
                    f"{ip} is not an IPv4 address: this sweep probes IPv4 only"
                ) from None
            if not self._contains_v4(int.from_bytes(raw, "big")):
                raise ScopeError(f"{socket.inet_ntoa(raw)} {self._outside}")
            packed[raw] = None
        return list(packed)

    def targets(self, cidrs: Iterable[str] | None = None) -> list[str]:
        """The host addresses of `cidrs` (default: all configured subnets), sorted, no repeats.

        Raises ScopeError for a CIDR not wholly inside the scope. The network and broadcast
        addresses of configured IPv4 subnets shorter than /31 are left out: no host answers there.
        """
        requested = list(self.subnets) if cidrs is None else [_network(c, "target") for c in cidrs]
        for text in requested:
            if not IPSet([text]).issubset(self._set):
                raise ScopeError(f"{text} {self._outside}")
        wanted = IPSet(requested)
        if wanted.size > MAX_TARGETS:
            raise InvalidValue(
                f"{', '.join(requested)} hold {wanted.size:,} addresses, more than the "
                f"{MAX_TARGETS:,} one sweep may probe: split the request into smaller subnets"
            )
        out: list[str] = []
        for block in wanted.iter_ipranges():
            if block.version == 4:
                out += (
                    socket.inet_ntoa(n.to_bytes(4, "big"))
                    for n in range(block.first, block.last + 1)
                    if n not in self._edges
                )
            else:
                out += (str(ipaddress.IPv6Address(n)) for n in range(block.first, block.last + 1))
        return out

    @property
    def _outside(self) -> str:
        configured = ", ".join(self.subnets) or "none"
        return (
            f"is outside the subnets ipguard may scan ({configured}): "
            "add its subnet to [scan] subnets in ipguard.toml to scan it"
        )

    def _contains_v4(self, value: int) -> bool:
        at = bisect.bisect_right(self._v4_firsts, value) - 1
        return at >= 0 and value <= self._v4_lasts[at]

    def _one_range_holds(self, low: bytes, high: bytes) -> bool:
        at = bisect.bisect_right(self._v4_firsts, int.from_bytes(low, "big")) - 1
        return at >= 0 and int.from_bytes(high, "big") <= self._v4_lasts[at]


def _address(text: str) -> Address:
    try:
        return ipaddress.ip_address(text.strip())
    except (ValueError, AttributeError):
        raise InvalidValue(f"{text!r} is not an IP address") from None


def _network(text: str, what: str) -> str:
    """Canonical CIDR text ('198.19.0.7/24' means its network; a bare IP means itself)."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except (ValueError, AttributeError):
        raise InvalidValue(
            f"{text!r} is not a valid {what}: write a CIDR such as 198.19.0.0/24"
        ) from None
