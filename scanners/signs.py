"""Pure judgements behind router/AP evidence: page titles, MAC vendors, adjacent MACs.

No I/O here (except netaddr's bundled IEEE registry), so every rule is testable with a table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ipguard.model import Evidence, EvidenceKind, PointsTo

ROUTER = PointsTo.ROUTER
ACCESS_POINT = PointsTo.ACCESS_POINT

# Words of a wireless device's management page. "AP" and "FAST" only in capitals, as whole words.
_WIRELESS_TITLE = re.compile(
    r"wireless|\bwlan\b|wi-?fi|access[ -]point|无线|\bTL-W[ARN]|\barcher\b|\bdeco\b|\bunifi\b"
    r"|\bomada\b|\bairport\b",
    re.I,
)
_ROUTER_TITLE = re.compile(
    r"router|路由|\bopenwrt\b|\bluci\b|dd-wrt|\btomato\b|mikrotik|routeros|tp-?link|netgear"
    r"|linksys|d-?link|\btenda\b|腾达|\bmercury\b|水星|迅捷|huawei|华为|xiaomi|小米|redmi|\basus\b"
    r"|\bRT-[A-Z]{0,3}\d|\bh3c\b|\bzte\b|中兴|ruijie|锐捷|totolink|comfast|ubiquiti|edgeos|zyxel"
    r"|pfsense|opnsense|ikuai|爱快|home gateway|residential gateway|internet gateway",
    re.I,
)
_CAPITAL_WORDS = re.compile(r"\bFAST\b|\bFW\d{3}")

# IEEE organisation names of makers of consumer routers and wireless access points.
_ROUTER_VENDORS = re.compile(
    r"tp-?link|netgear|d-link|tenda|ubiquiti|ruckus|aruba|meraki|linksys|asustek|xiaomi|huawei"
    r"|mercury|\bzte\b|fast technolog|totolink|zioncom|comfast|mikrotik|routerboard|zyxel|belkin"
    r"|buffalo|engenius|cambium|edimax|netis|phicomm|ruijie|cudy|wavlink|gl technologies",
    re.I,
)


def title_points_to(title: str) -> PointsTo | None:
    """`access-point` for a wireless device's page title, `router` for a router's, else None."""
    if _WIRELESS_TITLE.search(title) or re.search(r"\bAP\b", title):
        return ACCESS_POINT
    if _ROUTER_TITLE.search(title) or _CAPITAL_WORDS.search(title):
        return ROUTER
    return None


def is_router_vendor(organisation: str | None) -> bool:
    """Whether an OUI's organisation makes routers or wireless access points."""
    return bool(organisation) and _ROUTER_VENDORS.search(organisation or "") is not None


def vendor_of(mac: str) -> str | None:
    """The IEEE-registered organisation of a MAC's OUI; None for local or unregistered ones."""
    from netaddr import EUI, NotRegisteredError

    if is_local(mac):
        return None
    try:
        return str(EUI(mac).oui.registration().org)
    except (NotRegisteredError, IndexError, ValueError):
        return None


def is_local(mac: str) -> bool:
    """Locally administered or multicast MACs belong to no manufacturer."""
    return bool(int(mac[:2], 16) & 0x03)


def adjacent_macs(macs: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of manufacturer MACs of one OUI whose last three octets differ by 1 or 2.

    Routers and APs take consecutive MACs for their interfaces (LAN, WAN, each radio).
    """
    ordered = sorted({mac for mac in macs if not is_local(mac)}, key=_as_int)
    pairs = []
    for i, mac in enumerate(ordered):
        for other in ordered[i + 1 : i + 3]:
            if other[:8] == mac[:8] and 0 < _as_int(other) - _as_int(mac) <= 2:
                pairs.append((mac, other))
    return pairs


def adjacency_evidence(
    ips_by_mac: Mapping[str, Iterable[str]],
    evidence: Iterable[Evidence],
    vendors: Mapping[str, str | None],
) -> list[Evidence]:
    """MAC-adjacency evidence, kept only when one MAC of the pair already has evidence or a
    router/AP vendor: on its own, two consecutive MACs are just two cards from one batch.
    """
    marked = {e.mac for e in evidence if e.mac} | {
        mac for mac, org in vendors.items() if is_router_vendor(org)
    }
    found = []
    for a, b in adjacent_macs(ips_by_mac):
        if a not in marked and b not in marked:
            continue
        for mac, other in ((a, b), (b, a)):
            for ip in ips_by_mac[mac]:
                others = ", ".join(sorted(ips_by_mac[other]))
                found.append(
                    Evidence(
                        ip=ip,
                        mac=mac,
                        kind=EvidenceKind.MAC_ADJACENCY,
                        points_to=ACCESS_POINT,
                        detail=f"MAC next to {other} ({others}), which shows router/AP signs"
                        if other in marked
                        else f"MAC next to {other} ({others})",
                    )
                )
    return found


def _as_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)
