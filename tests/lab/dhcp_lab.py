"""The DHCP lab: every kind of DHCP server a real network has, all on one link at once.

One scan of it must see each of them; a test runs three scans in a row and a benchmark twenty.

- ``office-srv01`` (198.18.0.3): the authorised dnsmasq, registered with role dhcp-server (no
  finding: the control);
- ``math-pc40`` and ``math-pc41``: two rogue dnsmasq servers at their defaults, each pinging an
  address before offering it (~3 s late);
- ``physics-pc42``: ISC Kea with a minimal config (offers at once);
- ``physics-pc43``: dnsmasq that also waits ``--dhcp-reply-delay=4`` before answering;
- ``chem-pc44``: a server that unicasts its OFFER to the client's MAC;
- ``chem-pc45``: ISC dhcpd with Debian's dhcpd.conf (pings an address for a second first).

Every rogue is a registered PC without role dhcp-server, so ``rogue-dhcp`` is its only finding.
"""

from __future__ import annotations

from tests.lab.scenario import DhcpKind, DhcpServer, Host, Scenario
from tests.lab.scenarios import LAN, _scanner, device, lan_ip

VARIANTS: dict[str, tuple[DhcpKind, int, int]] = {
    # host name: (server kind, reply delay, last octet of the host); pools follow in that order
    "math-pc40": ("dnsmasq", 0, 40),
    "math-pc41": ("dnsmasq", 0, 41),
    "physics-pc42": ("kea", 0, 42),
    "physics-pc43": ("dnsmasq", 4, 43),
    "chem-pc44": ("unicast", 0, 44),
    "chem-pc45": ("isc", 0, 45),
}
"""The rogue DHCP servers of :func:`dhcp_servers`, by host name."""


def dhcp_servers() -> Scenario:
    """The authorised server plus each rogue variant of :data:`VARIANTS`, on one /24."""
    authorised = device(
        "office-srv01",
        lan_ip(3),
        "王芳",
        gateway=None,
        roles=("server", "dhcp-server"),
        allowed=("tcp/53", "udp/53", "udp/67"),
        dns=True,
        dhcp=DhcpServer(lan_ip(100), lan_ip(119)),
    )
    rogues = []
    for k, (name, (kind, delay, octet)) in enumerate(VARIANTS.items()):
        first = 120 + 20 * k
        server = DhcpServer(lan_ip(first), lan_ip(first + 19), kind=kind, reply_delay=delay)
        rogues.append(
            device(
                name,
                lan_ip(octet),
                f"owner of {name}",
                gateway=None,
                dhcp=server,
                expect=(("rogue-dhcp", None),),
            )
        )
    hosts: tuple[Host, ...] = (authorised, *rogues)
    return Scenario(name="dhcp", segments=(LAN,), scanner=_scanner(), hosts=hosts)
