"""Evidence and detail as sentences: times to the second in UTC, field names in words."""

from __future__ import annotations

from ipguard.reports.evidence import EVIDENCE_ITEMS, detail_lines, groups, sentence

ARP = {
    "ip": "198.18.0.36",
    "mac": "02:18:00:00:00:36",
    "seen_at": "2026-11-30T11:19:38.709490+00:00",
    "source": "arp",
    "ttl": None,
    "rtt_ms": 0.089,
    "vendor": None,
}
OFFER = {
    "server_ip": "198.18.0.36",
    "server_mac": "",
    "offered_ip": "198.18.0.182",
    "router": None,
    "dns": [],
    "seen_at": "2026-11-30T11:20:24.5+00:00",
}


def test_the_issues_examples() -> None:
    assert sentence("observations", ARP) == "11:19:38 answered ARP from 02:18:00:00:00:36 (0.09 ms)"
    assert (
        sentence("dhcp_offers", OFFER) == "11:20:24 offered 198.18.0.182 as DHCP server 198.18.0.36"
    )


def test_times_are_utc_to_the_second() -> None:
    local = {**ARP, "seen_at": "2026-11-30T19:19:38.9+08:00"}
    assert sentence("observations", local).startswith("11:19:38 answered ARP")


def test_every_kind_of_evidence_is_a_sentence() -> None:
    assert sentence(
        "services", {"proto": "tcp", "port": 23, "service": "telnet", "banner": "login:"}
    ) == ('port tcp/23 open: telnet, banner "login:"')
    assert (
        sentence(
            "proxies", {"port": 3128, "method": "http-connect", "relays": True, "detail": "200"}
        )
        == "port tcp/3128 relayed a connection by HTTP CONNECT (200)"
    )
    assert sentence("names", {"name": "pc-1", "source": "mdns"}) == 'goes by the name "pc-1" (mDNS)'
    sign = {"kind": "upnp-igd", "points_to": "router", "detail": "SERVER x"}
    assert sentence("evidence", sign) == "looks like a router: upnp igd (SERVER x)"
    icmp = {"source": "icmp", "mac": None, "ttl": 63, "rtt_ms": 1.5, "seen_at": ARP["seen_at"]}
    assert sentence("observations", icmp) == "11:19:38 answered ping (ICMP) (1.50 ms, TTL 63)"


def test_first_and_last_once_when_the_same_and_capped() -> None:
    proof = {"run_id": 4, "observations": [ARP] * (EVIDENCE_ITEMS + 2)}
    (group,) = groups({"first": proof, "last": proof})
    assert group.heading == "first and last seen in run 4"
    assert len(group.lines) == EVIDENCE_ITEMS and group.more == 2
    first, last = groups(
        {"first": proof, "last": {"run_id": 9, "dhcp_offers": [OFFER]}}, limit=None
    )
    assert (first.heading, len(first.lines), last.heading) == (
        "first seen in run 4",
        7,
        "last seen in run 9",
    )


def test_detail_in_words_without_what_the_summary_says() -> None:
    detail = {
        "offered_ips": ["198.18.0.162", "198.18.0.163"],
        "reason": "lacks role dhcp-server",
        "registered": {"ip": "198.18.0.36", "mac": "02:18:00:00:00:36", "owner": "梁宇"},
        "grace_days": 3,
        "first_seen": None,
        "isolated": True,
        "offender_records": [
            {"ip": "198.18.0.9", "mac": "02:66:00:00:00:45", "owner": "王磊", "department": "math"}
        ],
    }
    assert detail_lines(detail) == [
        "offered IPs: 198.18.0.162; 198.18.0.163",
        "reason: lacks role dhcp-server",
        "grace days: 3",
        "isolated: yes",
        "offender records: 198.18.0.9 / 02:66:00:00:00:45 (王磊, math)",
    ]


def test_times_are_those_of_the_administrators_zone() -> None:
    from zoneinfo import ZoneInfo

    shanghai, new_york = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
    assert sentence("observations", ARP, shanghai).startswith("19:19:38 answered ARP")
    evidence = {"first": {"run_id": 3, "observations": [ARP]}}
    (group,) = groups(evidence, zone=new_york)
    assert group.lines == ("06:19:38 answered ARP from 02:18:00:00:00:36 (0.09 ms)",)
    detail = {"first_seen": "2026-11-30T16:00:00Z", "ports": [22]}
    assert detail_lines(detail, shanghai)[0] == "first seen: 2026-12-01 00:00:00"
