"""The watcher's judge: claims and offers set against a ledger by the scan's own policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ipguard.config import PolicySettings
from ipguard.model import (
    Binding,
    DeviceStatus,
    DhcpOffer,
    FindingKind,
    Role,
    RouterAdvert,
    Severity,
)
from ipguard.scanners.passive import ArpClaim, DhcpClient
from ipguard.watch.budget import NEW_HOSTS_BURST, NEW_HOSTS_PER_SECOND
from ipguard.watch.judge import REJUDGE_SECONDS, Judge
from ipguard.watch.verdicts import MAX_MACS_PER_ADDRESS

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GW, PC, DHCP_SERVER = "198.18.0.1", "198.18.0.20", "198.18.0.3"
GW_MAC, PC_MAC, SRV_MAC = "02:18:00:00:00:01", "02:18:00:00:00:20", "02:18:00:00:00:03"
EVIL, OTHER = "00:16:3e:00:00:66", "00:16:3e:00:00:67"
LEDGER = (
    Binding(GW, GW_MAC, owner="王芳", roles=frozenset({Role.GATEWAY, Role.ROUTER})),
    Binding(PC, PC_MAC, owner="李伟", department="math", asset_tag="pc01"),
    Binding(DHCP_SERVER, SRV_MAC, roles=frozenset({Role.SERVER, Role.DHCP_SERVER})),
    Binding("198.18.0.50", "02:18:00:00:00:50", status=DeviceStatus.SUSPENDED),
    Binding("198.18.0.51", "02:18:00:00:00:51", isolated=True),
    Binding("198.18.0.52", "02:18:00:00:00:52", guest_until=date(2026, 11, 1)),
)


def judge(
    policy: PolicySettings | None = None, window: float = 10.0, subnet: str = "198.18.0.0/24"
) -> Judge:
    made = Judge(
        site="lab",
        subnets=[subnet],
        policy=policy or PolicySettings(hostname_rule="^{department}-{asset_tag}$"),
        duplicate_window=window,
    )
    made.load(LEDGER, {})
    return made


def kinds(found) -> set[tuple[str, str | None, str | None, str]]:
    return {(f.kind.value, f.ip, f.mac, f.severity.value) for f in found}


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (ArpClaim(PC, PC_MAC, "reply"), set()),
        (ArpClaim(GW, EVIL, "reply"), {("ip-mac-mismatch", GW, EVIL, "critical")}),
        (ArpClaim(PC, EVIL, "probe"), {("ip-mac-mismatch", PC, EVIL, "high")}),
        (
            ArpClaim("198.18.0.91", EVIL, "gratuitous"),
            {("unregistered-host", "198.18.0.91", EVIL, "high")},
        ),
        (
            ArpClaim("198.18.0.92", PC_MAC, "request"),
            {("mac-moved", "198.18.0.92", PC_MAC, "medium")},
        ),
        (
            ArpClaim("198.18.0.50", "02:18:00:00:00:50", "reply"),
            {("suspended-device-online", "198.18.0.50", "02:18:00:00:00:50", "medium")},
        ),
        (
            ArpClaim("198.18.0.51", "02:18:00:00:00:51", "reply"),
            {("isolated-device-online", "198.18.0.51", "02:18:00:00:00:51", "critical")},
        ),
        (
            ArpClaim("198.18.0.52", "02:18:00:00:00:52", "reply"),
            {("guest-expired", "198.18.0.52", "02:18:00:00:00:52", "medium")},
        ),
        # The gateway answering for another address is proxy ARP, documented router behaviour.
        (ArpClaim("198.18.0.93", GW_MAC, "reply"), set()),
    ],
)  # fmt: skip
def test_a_claim_is_judged_as_a_scan_would_judge_the_same_reply(claim, expected) -> None:
    assert kinds(judge().judge([(0.0, claim)], NOW).findings) == expected


def test_a_claim_is_judged_again_only_after_rejudge_seconds() -> None:
    watcher = judge()
    claim = ArpClaim("198.18.0.91", EVIL, "request")
    first = watcher.judge([(0.0, claim), (0.1, claim)], NOW)
    assert (first.judged, first.evaluated, len(first.findings)) == (2, 1, 1)
    assert first.evidence(first.findings[0])["watch"]["frames"] == [
        {"mac": EVIL, "arp": ["request"]}
    ]
    again = watcher.judge([(REJUDGE_SECONDS / 2, claim)], NOW)
    assert (again.evaluated, again.findings) == (0, [])
    later = watcher.judge([(REJUDGE_SECONDS + 1, claim)], NOW)
    assert kinds(later.findings) == {("unregistered-host", "198.18.0.91", EVIL, "high")}


def test_two_macs_claiming_one_address_within_the_window_are_a_duplicate() -> None:
    watcher = judge(window=10.0)
    watcher.judge([(0.0, ArpClaim(GW, GW_MAC, "reply"))], NOW)
    found = watcher.judge([(5.0, ArpClaim(GW, EVIL, "reply"))], NOW).findings
    assert kinds(found) == {
        ("ip-mac-mismatch", GW, EVIL, "critical"),
        ("duplicate-ip", GW, None, "critical"),
    }
    duplicate = next(f for f in found if f.kind is FindingKind.DUPLICATE_IP)
    assert duplicate.detail["macs"] == [EVIL, GW_MAC]
    # Outside the window the two claims are a mismatch each time, never a duplicate.
    apart = judge(window=10.0)
    apart.judge([(0.0, ArpClaim(PC, PC_MAC, "reply"))], NOW)
    later = apart.judge([(11.0, ArpClaim(PC, OTHER, "reply"))], NOW)
    assert kinds(later.findings) == {("ip-mac-mismatch", PC, OTHER, "high")}


def test_claims_outside_the_scope_are_counted_and_beyond_the_window_judged_alone() -> None:
    watcher = judge()
    outside = watcher.judge([(0.0, ArpClaim("10.1.2.3", EVIL, "reply"))], NOW)
    assert (outside.judged, outside.findings) == (0, [])
    flood = [(0.0, ArpClaim("198.18.0.99", f"00:16:3e:00:01:{n:02x}", "reply")) for n in range(40)]
    found = watcher.judge(flood, NOW).findings
    duplicate = next(f for f in found if f.kind is FindingKind.DUPLICATE_IP)
    assert len(duplicate.detail["macs"]) == MAX_MACS_PER_ADDRESS  # what is remembered
    # Each MAC beyond is judged alone all the same, within the made-up stations' budget.
    assert sum(f.kind is FindingKind.UNREGISTERED_HOST for f in found) == 40
    assert watcher.ignored == {"out_of_scope": 1}
    # A flood of them: the budget spent, the rest is counted, not judged.
    more = [(0.5, ArpClaim("198.18.0.99", f"00:16:3e:03:{n // 256:02x}:{n % 256:02x}", "reply"))
            for n in range(3_000)]  # fmt: skip
    judged = watcher.judge(more, NOW).evaluated
    assert judged + watcher.ignored["over_mac_limit"] == 3_000
    assert judged <= NEW_HOSTS_BURST - 40 + 1


def test_randomized_macs_are_said_so_and_may_be_lowered() -> None:
    claim = ArpClaim("198.18.0.91", "da:a1:19:00:00:91", "request")
    (finding,) = judge().judge([(0.0, claim)], NOW).findings
    assert finding.detail["randomized"] is True
    assert "randomized MAC" in finding.summary and finding.severity is Severity.HIGH
    lowered = PolicySettings(randomized_mac_severity=Severity.LOW)
    (finding,) = judge(lowered).judge([(0.0, claim)], NOW).findings
    assert finding.severity is Severity.LOW
    (real,) = judge(lowered).judge([(0.0, ArpClaim("198.18.0.91", EVIL, "request"))], NOW).findings
    assert (real.detail["randomized"], real.severity) == (False, Severity.HIGH)


def test_offers_from_servers_without_the_role_are_rogue_dhcp() -> None:
    rogue = DhcpOffer("198.18.0.77", "02:66:00:00:00:77", "198.18.0.150")
    allowed = DhcpOffer(DHCP_SERVER, SRV_MAC, "198.18.0.100")
    found = judge().judge([(0.0, rogue), (0.0, allowed), (0.1, rogue)], NOW).findings
    assert kinds(found) == {("rogue-dhcp", "198.18.0.77", "02:66:00:00:00:77", "critical")}


def test_naks_from_a_server_without_the_role_are_rogue_dhcp_and_say_so() -> None:
    nak = DhcpOffer("198.18.0.77", "02:66:00:00:00:77", "0.0.0.0", message="nak")
    offer = DhcpOffer("198.18.0.77", "02:66:00:00:00:77", "198.18.0.150")
    watcher = judge()
    (refusing,) = watcher.judge([(0.0, nak), (0.1, nak)], NOW).findings
    assert (refusing.kind, refusing.severity) == (FindingKind.ROGUE_DHCP, Severity.CRITICAL)
    assert refusing.summary == (
        "DHCP server 198.18.0.77 (02:66:00:00:00:77) refused 1 client request (DHCPNAK) "
        "and is not registered"
    )
    assert (refusing.detail["offered_ips"], refusing.detail["naks"]) == ([], 1)
    # It offers an address within the minute: news, judged at once (its NAKs, not again yet).
    (offering,) = watcher.judge([(1.0, offer), (1.0, nak)], NOW).findings
    assert offering.summary == (
        "DHCP server 198.18.0.77 (02:66:00:00:00:77) offered 198.18.0.150 and is not registered"
    )
    both = judge().judge([(0.0, offer), (0.0, nak)], NOW).findings[0].summary
    assert "offered 198.18.0.150, refused 1 client request (DHCPNAK) and is not" in both
    # A server answering only DHCPINFORM (an ACK without an address) offered nothing either.
    informed = DhcpOffer("198.18.0.78", "02:66:00:00:00:78", "0.0.0.0", message="ack")
    (answering,) = judge().judge([(0.0, informed)], NOW).findings
    assert answering.summary == (
        "DHCP server 198.18.0.78 (02:66:00:00:00:78) answered a client and is not registered"
    )
    # The registered DHCP server refusing a client that moved from another network: its job.
    allowed = DhcpOffer(DHCP_SERVER, SRV_MAC, "0.0.0.0", message="nak")
    assert judge().judge([(0.0, allowed)], NOW).findings == []


def test_a_dhcp_clients_hostname_is_checked_at_the_address_it_asks_for() -> None:
    bad = DhcpClient(PC_MAC, PC, "request", hostname="gaming-rig", parameters=(1, 3, 6))
    good = DhcpClient(PC_MAC, PC, "request", hostname="math-pc01")
    stranger = DhcpClient(EVIL, PC, "request", hostname="gaming-rig")
    verdicts = judge().judge([(0.0, bad)], NOW)
    assert kinds(verdicts.findings) == {("hostname-policy", PC, PC_MAC, "low")}
    assert verdicts.clients[PC_MAC].parameters == (1, 3, 6)
    assert judge().judge([(0.0, good)], NOW).findings == []
    # Only a registered pair is held to the rule (as in a scan); a stranger is not named by it.
    assert judge().judge([(0.0, stranger)], NOW).findings == []


def test_a_new_ledger_snapshot_is_judged_afresh() -> None:
    watcher = judge()
    claim = ArpClaim("198.18.0.91", EVIL, "request")
    assert watcher.judge([(0.0, claim)], NOW).findings
    watcher.load([*LEDGER, Binding("198.18.0.91", EVIL)], {})
    assert watcher.judge([(1.0, claim)], NOW).findings == []
    watcher.load([replace(b, status=DeviceStatus.RETIRED) for b in LEDGER], {})
    found = watcher.judge([(2.0, ArpClaim(PC, PC_MAC, "reply"))], NOW).findings
    assert kinds(found) == {("suspended-device-online", PC, PC_MAC, "medium")}


def test_a_flood_of_made_up_stations_costs_a_bounded_budget_and_hides_no_spoof() -> None:
    watcher = judge(subnet="198.18.0.0/16")
    burst, rate = NEW_HOSTS_BURST, NEW_HOSTS_PER_SECOND
    stations = [
        ArpClaim(
            f"198.18.{1 + n // 200}.{n % 200 + 10}",
            f"00:16:3e:02:{n // 256:02x}:{n % 256:02x}",
            "reply",
        )
        for n in range(int(burst) + 500)
    ]
    spoof = ArpClaim(GW, EVIL, "reply")
    items = [(0.0, claim) for claim in stations[: len(stations) // 2]]
    items += [(0.0, spoof), *((0.0, claim) for claim in stations[len(stations) // 2 :])]
    verdicts = watcher.judge(items, NOW)
    assert verdicts.evaluated == int(burst) + 1  # the spoof is judged whatever the budget
    assert ("ip-mac-mismatch", GW, EVIL, "critical") in kinds(verdicts.findings)
    assert watcher.ignored["over_new_host_budget"] == 500
    # A second later the budget has refilled by NEW_HOSTS_PER_SECOND: refused stations that speak
    # again are judged then.
    again = watcher.judge([(1.0, claim) for claim in stations[-500:]], NOW)
    assert again.evaluated == int(rate)


def test_a_dhcp_starvation_flood_writes_a_bounded_number_of_fingerprints() -> None:
    """dhcpstarv or yersinia: DISCOVERs from thousands of made-up MACs a second. Each client kept
    is a fingerprint row written to the ledger: made-up ones are kept within a budget, and a
    client saying the same again within REJUDGE_SECONDS is not written again."""
    watcher = judge()
    flood = [
        DhcpClient(f"00:16:3e:03:{n // 256:02x}:{n % 256:02x}", None, "discover", "", (1, 3))
        for n in range(int(NEW_HOSTS_BURST) + 3_000)
    ]
    pc = DhcpClient(PC_MAC, PC, "request", hostname="math-pc01", parameters=(1, 3, 6))
    items = [(0.0, client) for client in flood[:100]] + [(0.0, pc)]
    items += [(0.0, client) for client in flood[100:]]
    verdicts = watcher.judge(items, NOW)
    assert len(verdicts.clients) == int(NEW_HOSTS_BURST) + 1  # the registered PC whatever
    assert PC_MAC in verdicts.clients
    assert watcher.ignored["over_new_client_budget"] == 3_000
    assert verdicts.judged == len(items)
    # The same messages a second later: nothing new from the PC, the budget's refill of strangers.
    again = watcher.judge([(1.0, client) for client in [pc, *flood]], NOW)
    assert PC_MAC not in again.clients
    assert len(again.clients) == int(NEW_HOSTS_PER_SECOND)
    # A client that says something new (its address now) is news at once.
    leased = replace(pc, ip="198.18.0.21")
    assert PC_MAC in watcher.judge([(1.5, leased)], NOW).clients
    assert PC_MAC in watcher.judge([(1.0 + REJUDGE_SECONDS, pc)], NOW).clients


def test_the_evidence_names_the_nic_that_sent_a_claim_for_another_mac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spoofing tool claims the gateway for a made-up MAC (black-holing its traffic) from its
    own NIC: the made-up MAC is on no switch port, the frame's source is the one to look for."""
    from ipguard.watch import spooling

    fake = "02:de:ad:00:00:01"
    verdicts = judge().judge([(0.0, ArpClaim(GW, fake, "reply", frame_mac=EVIL))], NOW)
    (finding,) = verdicts.findings
    assert (finding.kind, finding.mac) == (FindingKind.IP_MAC_MISMATCH, fake)
    frames = [{"mac": fake, "arp": ["reply"], "sent_from": [EVIL]}]
    assert verdicts.evidence(finding)["watch"]["frames"] == frames
    # Spooled while the ledger is down, read back by the next watcher: the same evidence.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the spool goes there
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    spooling.keep(url, "lab", 1, NOW, verdicts)
    ((_path, _at, kept),) = spooling.pending(url, "lab")
    assert kept.evidence(finding)["watch"]["frames"] == frames


def test_floods_of_made_up_routers_and_dhcp_servers_open_a_bounded_number_of_findings() -> None:
    """THC-IPv6's flood_router26 (RAs from random MACs, as fast as the link goes) or an OFFER
    flood: every made-up router or server was one more critical finding in the ledger, thousands a
    second. Now they share the made-up stations' budget; ones the ledger knows are always judged."""
    watcher = judge()
    routers = [
        (0.0, RouterAdvert(f"fe80::{n + 1:x}", f"00:16:3e:04:{n // 256:02x}:{n % 256:02x}",
                           1800, False, False, ("2001:db8:1::/64",)))
        for n in range(3_000)
    ]  # fmt: skip
    servers = [
        (0.0, DhcpOffer(f"198.18.0.{n % 100 + 100}", f"00:16:3e:05:{n // 256:02x}:{n % 256:02x}",
                        "198.18.0.150"))
        for n in range(3_000)
    ]  # fmt: skip
    gateway = RouterAdvert("fe80::1", GW_MAC, 1800, False, False, ("2001:db8:99::/64",))
    impostor = DhcpOffer(DHCP_SERVER, EVIL, "198.18.0.150")  # the real server's address
    items = [*routers[:10], (0.0, gateway), *routers[10:], *servers, (0.0, impostor)]
    found = watcher.judge(items, NOW).findings
    assert len(found) == int(NEW_HOSTS_BURST) + 2
    assert ("rogue-dhcp", DHCP_SERVER, EVIL, "critical") in kinds(found)
    assert ("rogue-ra", "fe80::1", GW_MAC, "high") in kinds(found)  # a foreign prefix
    assert watcher.ignored["over_new_host_budget"] == 6_000 - int(NEW_HOSTS_BURST)


def test_a_dhcp_hostname_with_a_nul_byte_is_judged_and_stored(db_url: str) -> None:
    """A DHCP REQUEST naming a registered PC (chaddr is only data) with a hostname holding a NUL
    byte: PostgreSQL stores no NUL in text, and the watcher died on the hostname-policy finding
    carrying it. It is kept as an escape, as everything else the network sends is."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from ipguard.ledger import findings
    from ipguard.ledger.store import Store
    from ipguard.scanners.passive import parse_frame

    frame = bytes(
        Ether(src=EVIL, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, chaddr=bytes.fromhex(PC_MAC.replace(":", "")))
        / DHCP(options=[("message-type", "request"), ("requested_addr", PC),
                        ("hostname", b"math-pc01\x00evil"), "end"])
    )  # fmt: skip
    client = parse_frame(frame)
    assert isinstance(client, DhcpClient) and client.hostname == "math-pc01\\u0000evil"
    (found,) = judge().judge([(0.0, client)], NOW).findings
    assert found.kind is FindingKind.HOSTNAME_POLICY
    store = Store(db_url)
    with store.session() as session:
        findings.sync(
            session, site="lab", run_id=None, now=NOW, findings=[found], subnets=(),
            phases=frozenset(), evidence=lambda _finding: {},
        )  # fmt: skip
    with store.session(write=False) as session:
        (row,) = findings.list_findings(session, site="lab")
    assert "math-pc01\\u0000evil" in row.summary
    store.close()


def test_made_up_macs_filling_an_address_do_not_hide_the_real_spoofer() -> None:
    """At most MAX_MACS_PER_ADDRESS MACs per address are remembered for duplicate-ip. An attacker
    who keeps that many made-up MACs claiming the gateway (one frame each every few seconds) had
    every further MAC ignored: its own, the one really spoofing the gateway, was never named."""
    watcher = judge()
    junk = [
        (0.0, ArpClaim(GW, f"00:16:3e:00:02:{n:02x}", "reply")) for n in range(MAX_MACS_PER_ADDRESS)
    ]
    assert len(watcher.judge(junk, NOW).findings) > MAX_MACS_PER_ADDRESS  # and duplicate-ip
    spoof = watcher.judge([(1.0, ArpClaim(GW, EVIL, "reply"))], NOW).findings
    assert ("ip-mac-mismatch", GW, EVIL, "critical") in kinds(spoof)
