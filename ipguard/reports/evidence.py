"""A finding's evidence and detail as sentences a person reads (the raw data stays in JSON).

Each piece of evidence becomes one line, such as "11:19:38 answered ARP from 02:18:00:00:00:36
(0.09 ms)" or "11:20:24 offered 198.18.0.182 as DHCP server 198.18.0.36". Times are to the second,
in the administrators' time zone (`[policy] timezone`, the report's). Detail keys become words
("offered IPs: …"); the keys that only repeat the summary or the evidence are left to the JSON
output.

The sentences are plain text: each output escapes them for its format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

EVIDENCE_ITEMS = 5  # per group of evidence in a report; the JSON export carries all of it

_WORDS = {"ip": "IP", "ips": "IPs", "mac": "MAC", "macs": "MACs", "ttl": "TTL", "dns": "DNS"}
_SOURCES = {
    "arp": "ARP",
    "icmp": "ping (ICMP)",
    "tcp": "TCP ping",
    "ndp": "IPv6 neighbour discovery",
    "dns": "DNS",
    "mdns": "mDNS",
    "netbios": "NetBIOS",
}
_METHODS = {
    "http-connect": "HTTP CONNECT",
    "http-get": "HTTP GET",
    "socks4": "SOCKS4",
    "socks5": "SOCKS5",
}
_SIGNS = {"router": "a router", "access-point": "a wireless access point"}
# Detail keys that restate the summary (who is registered, which MACs) or the evidence lines.
_RESTATED = frozenset(
    {
        "registered",
        "registered_mac",
        "observed_mac",
        "observed",
        "open_ports",
        "names",
        "evidence",
        "offers",
        "attempts",
        "points_to",
        "roles",
        "port",
        "service",
        "relays",
        "allowed_everywhere",
    }
)


@dataclass(frozen=True)
class EvidenceGroup:
    """The evidence of one run (when first or last seen), as sentences."""

    heading: str
    lines: tuple[str, ...]
    more: int = 0  # lines left out (EVIDENCE_ITEMS per kind); the JSON export has them


def words(key: str) -> str:
    """A detail or settings key in words: `offered_ips` → "offered IPs"."""
    return " ".join(_WORDS.get(part, part) for part in str(key).split("_"))


def clock(value: Any, zone: tzinfo = UTC) -> str:
    """An ISO 8601 time (text or datetime) as HH:MM:SS in `zone`; anything else as it is."""
    moment = _moment(value, zone)
    return moment.strftime("%H:%M:%S") if moment else ("" if value is None else str(value))


def stamp(value: Any, zone: tzinfo = UTC) -> str:
    """An ISO 8601 time as `YYYY-MM-DD HH:MM:SS` in `zone`; anything else as it is."""
    moment = _moment(value, zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ("" if value is None else str(value))


def _moment(value: Any, zone: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and "T" in value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    # Stored and serialised times are UTC; a time without an offset is one of them.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone)


def _observation(item: Mapping[str, Any]) -> str:
    source = item.get("source")
    text = f"answered {_SOURCES.get(str(source), source)}" if source else "answered"
    if item.get("mac"):
        text += f" from {item['mac']}"
    extras = []
    if item.get("rtt_ms") is not None:
        extras.append(f"{float(item['rtt_ms']):.2f} ms")
    if item.get("ttl") is not None:
        extras.append(f"TTL {item['ttl']}")
    if item.get("vendor"):
        extras.append(f"vendor {item['vendor']}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _service(item: Mapping[str, Any]) -> str:
    text = f"port {item.get('proto')}/{item.get('port')} open"
    what = " ".join(str(item[key]) for key in ("service", "product", "version") if item.get(key))
    if what:
        text += f": {what}"
    if item.get("banner"):
        text += f', banner "{item["banner"]}"'
    return text


def _proxy(item: Mapping[str, Any]) -> str:
    method = _METHODS.get(str(item.get("method")), item.get("method"))
    verb = "relayed a connection" if item.get("relays") else "did not relay"
    text = f"port tcp/{item.get('port')} {verb} by {method}"
    return text + (f" ({item['detail']})" if item.get("detail") else "")


def _name(item: Mapping[str, Any]) -> str:
    source = item.get("source")
    return f'goes by the name "{item.get("name")}" ({_SOURCES.get(str(source), source)})'


def _sign(item: Mapping[str, Any]) -> str:
    kind = str(item.get("kind", "")).replace("-", " ")
    text = f"looks like {_SIGNS.get(str(item.get('points_to')), item.get('points_to'))}: {kind}"
    return text + (f" ({item['detail']})" if item.get("detail") else "")


def _offer(item: Mapping[str, Any]) -> str:
    text = f"offered {item.get('offered_ip')} as DHCP server {item.get('server_ip')}"
    extras = [str(item["server_mac"])] if item.get("server_mac") else []
    if item.get("router"):
        extras.append(f"router {item['router']}")
    return text + (f" ({', '.join(extras)})" if extras else "")


_SENTENCES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "observations": _observation,
    "services": _service,
    "proxies": _proxy,
    "names": _name,
    "evidence": _sign,
    "dhcp_offers": _offer,
}


def sentence(group: str, item: Any, zone: tzinfo = UTC) -> str:
    """One piece of evidence as a line, led by its time (to the second, in `zone`) when it has
    one."""
    if not isinstance(item, Mapping):
        return plain(item, zone)
    make = _SENTENCES.get(group)
    text = make(item) if make else plain(item, zone)
    when = item.get("seen_at")
    return f"{clock(when, zone)} {text}" if when else text


def groups(
    evidence: Mapping[str, Any], *, limit: int | None = EVIDENCE_ITEMS, zone: tzinfo = UTC
) -> list[EvidenceGroup]:
    """The evidence of the first and last sighting (once when they are the same run)."""
    found: list[EvidenceGroup] = []
    first, last = evidence.get("first"), evidence.get("last")
    for moment, proof in (("first", first), ("last", last)):
        if not isinstance(proof, Mapping):
            continue
        same = moment == "first" and proof == last
        label = "first and last seen" if same else f"{moment} seen"
        lines: list[str] = []
        more = 0
        for group, values in proof.items():
            if group == "run_id" or not isinstance(values, list):
                continue
            shown = values if limit is None else values[:limit]
            lines += [sentence(group, value, zone) for value in shown]
            more += len(values) - len(shown)
        if lines:
            found.append(EvidenceGroup(f"{label} in run {proof.get('run_id')}", tuple(lines), more))
        if same:
            break
    return found


def detail_lines(detail: Mapping[str, Any], zone: tzinfo = UTC) -> list[str]:
    """The detail keys a reader needs, one line each, in words (times in `zone`)."""
    lines = []
    for key, value in detail.items():
        if key in _RESTATED or value in (None, "", [], {}):
            continue
        lines.append(f"{words(key)}: {plain(value, zone)}")
    return lines


def plain(value: Any, zone: tzinfo = UTC) -> str:
    """Any detail value as text: records as "IP / MAC (owner, department)", lists by commas."""
    if isinstance(value, Mapping):
        if "ip" in value and "mac" in value and "owner" in value:
            who = ", ".join(str(value[key]) for key in ("owner", "department") if value.get(key))
            return f"{value['ip']} / {value['mac']}" + (f" ({who})" if who else "")
        return ", ".join(
            f"{words(key)} {plain(item, zone)}"
            for key, item in value.items()
            if item not in (None, "")
        )
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "; ".join(plain(item, zone) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return stamp(value, zone)
