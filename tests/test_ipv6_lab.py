"""The ipv6 phase on a real link: radvd, a rogue radvd, fake_router6, a DHCPv6 dnsmasq, and hosts
with the kernel's SLAAC, privacy addresses and static addresses.

One lab (:mod:`tests.lab.ipv6_lab`) serves the module. The phase hears every router and the DHCPv6
server and finds every IPv6 host (compared with the hosts' own addresses, the scanner's neighbour
table and THC-IPv6's alive6); a scan reports exactly both rogue RA sources (fake_router6's
behind extension headers, which it names), the DHCPv6 server, the static address taken by another
MAC, the static address two MACs answer for (DAD off on one of them) and the unregistered host.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipguard.config import PolicySettings
from ipguard.model import Binding, Role, ScanRequest
from ipguard.policies import LedgerIndex
from ipguard.policies.ipv6 import duid_mac, rogue_dhcp6
from ipguard.scanners.ipv6 import Ipv6Probe
from ipguard.scanners.ipv6disc import Ipv6Seen, collect
from ipguard.scanners.scope import Scope
from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.lab.ipv6_lab import (
    ATTACK_EVASION,
    ATTACK_PREFIX,
    ATTACKER,
    DHCP6_ROGUE,
    DOUBLE,
    IMPOSTOR,
    PREFIX,
    PRIVACY,
    RADVD_ROGUE,
    ROGUE_PREFIX,
    ROUTER,
    STATIC,
    STATIC_IP,
    STRANGER,
    TAKEN_IP,
    TAKER,
    address_hosts,
    enable_ipv6,
    eui64_link_local,
    hold_a_duplicate,
    ipv6_routers,
    many_hosts,
    relayed_dhcp6,
)
from tests.lab.netns import inside, run
from tests.test_scan_lab import IPGUARD, ipguard

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable("radvd", "atk6-fake_router6")
    if reason:
        pytest.skip(reason)
    with Lab.build(ipv6_routers()) as built:
        enable_ipv6(built)
        hold_a_duplicate(built)
        yield built


@pytest.fixture(scope="module")
def seen(lab: Lab) -> Ipv6Seen:
    """One ipv6 phase from the scanner: RAs for 6 s (fake_router6 advertises every 5 s)."""
    subnets = ("198.18.0.0/24", PREFIX)
    request = ScanRequest(
        site="lab",
        interface="eth0",
        subnets=subnets,
        ra_wait=6.0,
        static_ipv6=(STATIC_IP, TAKEN_IP),
    )
    ready = threading.Event()
    ready.set()
    with inside(lab.scanner_ns):
        return collect(request, Scope(subnets), ready, threading.Event())


def test_the_phase_hears_every_router_and_the_dhcpv6_server(lab: Lab, seen: Ipv6Seen) -> None:
    adverts, servers = seen.adverts, seen.servers
    by_mac = {advert.source_mac: advert for advert in adverts}
    router, rogue, attacker = (lab.host(name).mac for name in (ROUTER, RADVD_ROGUE, ATTACKER))
    assert {router, rogue, attacker} <= set(by_mac), adverts
    assert by_mac[router].prefixes == (PREFIX,)
    assert by_mac[router].source_ip == eui64_link_local(router)
    assert by_mac[rogue].prefixes == (ROGUE_PREFIX,)
    assert ATTACK_PREFIX in by_mac[attacker].prefixes
    assert all(advert.router_lifetime > 0 for advert in by_mac.values())
    # fake_router6 -H and -F: read behind their extension headers, which are named (-F sends
    # two fragment headers, both at offset 0).
    evasions = {frozenset(advert.evasion) for advert in adverts if advert.source_mac == attacker}
    assert evasions == {frozenset({"hop-by-hop"}), frozenset({"fragment"})}, adverts
    assert all(not a.evasion for a in adverts if a.source_mac != attacker)
    # fake_router6 also hands hosts a DNS server and routes (the default one among them);
    # radvd at its defaults, neither.
    assert {"::/0", "2000::/3"} <= set(by_mac[attacker].routes), by_mac[attacker]
    assert by_mac[attacker].dns_servers and not by_mac[router].dns_servers
    assert [server.server_mac for server in servers] == [lab.host(DHCP6_ROGUE).mac]
    assert servers[0].addresses and servers[0].addresses[0].startswith("fd00:62::")


def _in_scope(ip: str) -> bool:
    address = ipaddress.IPv6Address(ip.split("%")[0])
    return address.is_link_local or address in ipaddress.IPv6Network(PREFIX)


def test_discovery_finds_every_ipv6_host(lab: Lab, seen: Ipv6Seen) -> None:
    found = {(o.ip, o.mac) for o in seen.observations}
    assert {o.source for o in seen.observations} == {"ndp"}
    assert all(_in_scope(ip) for ip, _ in found), found  # the guard: nothing outside the scope
    for host in lab.hosts:  # every host by its link-local address, routers included
        if host.name != IMPOSTOR:  # it answers from the router's (chosen by RFC 6724)
            assert (eui64_link_local(host.mac), host.mac) in found, host.name
    impostor = lab.host(IMPOSTOR).mac
    assert (eui64_link_local(lab.host(ROUTER).mac), impostor) in found
    for name in address_hosts():  # every SLAAC host at an address of its own in the prefix
        shown = run(lab.host(name).ns, ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
        own = set(re.findall(r"inet6 (2001:db8:20:\S+)/64", shown))
        assert own & {ip for ip, mac in found if mac == lab.host(name).mac}, name
    for name in PRIVACY:  # answering from its temporary (privacy) address
        shown = run(lab.host(name).ns, ["ip", "-6", "addr", "show", "dev", "eth0", "temporary"])
        temporary = set(re.findall(r"inet6 (\S+)/64", shown.stdout))
        assert any((ip, lab.host(name).mac) in found for ip in temporary if _in_scope(ip)), name
    # the Neighbor Solicitations: the static address, and the one another host took
    assert (STATIC_IP, lab.host(STATIC).mac) in found and (TAKEN_IP, lab.host(TAKER).mac) in found
    assert (STATIC_IP, lab.host(DOUBLE).mac) in found  # the second holder (DAD off) answers too
    # The scanner's neighbour table: everyone who talked to it over IPv6 was found.
    neigh = run(lab.scanner_ns, ["ip", "-6", "neigh", "show", "dev", "eth0"]).stdout
    table = set(re.findall(r"^(\S+) lladdr (\S+)", neigh, re.MULTILINE))
    # (but the impostor's own link-local address: it answers from one of its two, the router's)
    assert {pair for pair in table if _in_scope(pair[0]) and pair[1] != impostor} <= found
    # THC-IPv6's alive6 (echo to ff02::1 from the global address) finds nothing we did not.
    alive6 = shutil.which("atk6-alive6") or "alive6"
    shown = run(lab.scanner_ns, [alive6, "eth0"], check=False).stdout
    alive = {ip for ip in re.findall(r"Alive: (\S+)", shown) if _in_scope(ip)}
    assert alive and alive <= {ip for ip, _ in found}, shown


def test_a_scan_reports_rogues_taken_and_doubled_statics_the_stranger_nothing_else(
    lab: Lab, tmp_path: Path
) -> None:
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    config = lab.write_config(tmp_path / "ipguard.toml")
    text = config.read_text().replace(
        'subnets = ["198.18.0.0/24"]', f'subnets = ["198.18.0.0/24", "{PREFIX}"]'
    )
    config.write_text(text.replace("[scan]\n", "[scan]\nra_wait = 6.0\n", 1))
    imported = ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv"))
    assert imported.returncode == 0, imported.stderr
    done = ipguard(lab, tmp_path, "scan", "--no-services", "--format", "json", in_lab=True)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    found = {(f["kind"], f["mac"]) for f in document["findings"]}
    rogue, attacker, server = (lab.host(name).mac for name in (RADVD_ROGUE, ATTACKER, DHCP6_ROGUE))
    taker, stranger = lab.host(TAKER).mac, lab.host(STRANGER).mac
    assert found == {
        ("rogue-ra", rogue),
        ("rogue-ra", attacker),
        ("rogue-dhcp", server),
        ("ip-mac-mismatch", taker),
        ("duplicate-ip", None),
        ("unregistered-host", stranger),
    }
    # one finding each, privacy hosts none; two duplicate-ip: the static, the router's address
    assert len(document["findings"]) == len(found) + 1
    router_ll = eui64_link_local(lab.host(ROUTER).mac)
    (impersonated,) = [f for f in document["findings"] if f["ip"] == router_ll]
    assert (impersonated["kind"], impersonated["severity"]) == ("duplicate-ip", "critical")
    assert set(impersonated["detail"]["macs"]) == {lab.host(ROUTER).mac, lab.host(IMPOSTOR).mac}
    by_kind = {(f["kind"], f["mac"]): f for f in document["findings"] if f["ip"] != router_ll}
    assert by_kind["ip-mac-mismatch", taker]["ip"] == TAKEN_IP
    duplicate = by_kind["duplicate-ip", None]
    assert duplicate["ip"] == STATIC_IP and duplicate["severity"] == "high"
    assert set(duplicate["detail"]["macs"]) == {lab.host(STATIC).mac, lab.host(DOUBLE).mac}
    unregistered = by_kind["unregistered-host", stranger]
    assert unregistered["ip"] == lab.host(STRANGER).ip  # IPv4 carries the IPv6 addresses
    assert eui64_link_local(stranger) in unregistered["detail"]["ipv6"]
    assert by_kind["rogue-ra", rogue]["ip"] == eui64_link_local(rogue)
    assert by_kind["rogue-ra", rogue]["detail"]["prefixes"] == [ROGUE_PREFIX]
    assert by_kind["rogue-ra", rogue]["severity"] == "critical"
    assert "evasion" not in by_kind["rogue-ra", rogue]["detail"]  # radvd: plain RAs
    assert by_kind["rogue-ra", attacker]["detail"]["evasion"] == ATTACK_EVASION
    assert "::/0" in by_kind["rogue-ra", attacker]["detail"]["routes"]
    assert "RA Guard evasion" in by_kind["rogue-ra", attacker]["summary"]
    dhcp6 = by_kind["rogue-dhcp", server]
    assert dhcp6["detail"]["family"] == 6 and dhcp6["ip"].startswith("fe80::")
    assert document["run"]["status"] == "complete"


def test_an_ipv6_only_scan_looks_and_a_prefix_off_the_link_is_skipped_with_a_warning(
    lab: Lab, tmp_path: Path
) -> None:
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    config = lab.write_config(tmp_path / "ipguard.toml")
    elsewhere = "2001:db8:99::/64"  # allowed, but not this interface's link
    text = config.read_text().replace(
        'subnets = ["198.18.0.0/24"]', f'subnets = ["198.18.0.0/24", "{PREFIX}", "{elsewhere}"]'
    )
    config.write_text(text.replace("[scan]\n", "[scan]\nra_wait = 1\n", 1))
    imported = ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv"))
    assert imported.returncode == 0, imported.stderr
    scan = ("scan", "--phases", "ipv6", "--format", "json", "--subnet")
    # Only the link's prefix: the interface holds 2001:db8:20::2 in it, so the link is in scope.
    done = ipguard(lab, tmp_path, *scan, PREFIX, in_lab=True)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    found = {(f["kind"], f["mac"]) for f in document["findings"]}
    assert {("ip-mac-mismatch", lab.host(TAKER).mac), ("duplicate-ip", None)} <= found
    assert document["run"]["subnets"] == [PREFIX] and "could not" not in done.stderr
    # A prefix the interface is not on: nothing sent or judged there, one warning line.
    off = ipguard(lab, tmp_path, *scan, elsewhere, in_lab=True)
    assert off.returncode == 1, off.stderr  # the first scan's findings stay open: none resolved
    skipped = json.loads(off.stdout)
    assert skipped["run"]["hosts_seen"] == 0
    assert {f["id"] for f in skipped["findings"]} == {f["id"] for f in document["findings"]}
    (line,) = off.stderr.splitlines()
    assert line.startswith("warning: ") and f"{elsewhere} (not on interface eth0" in line


def test_an_interface_without_ipv4_runs_the_ipv6_phase_alone_from_its_link_local_address(
    tmp_path: Path,
) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with many_hosts(3, scanner_ip="") as link:  # the scanner's eth0: a link-local address only

        def scan(subnet: str) -> subprocess.CompletedProcess[str]:
            config = tmp_path / "ipguard.toml"
            config.write_text(
                f'[scan]\ninterface = "eth0"\nsubnets = ["{subnet}"]\nra_wait = 1\nsite = "v6"\n'
            )
            argv = ["ip", "netns", "exec", link.scanner_ns, IPGUARD, "--db",
                    str(tmp_path / "ledger.db"), "--config", str(config), "scan", "--phases",
                    "ipv6", "--format", "json"]  # fmt: skip
            return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

        # fe80::/10 says the interface's own link is meant: every host by its link-local address.
        done = scan("fe80::/10")
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        found = {(f["kind"], f["ip"]) for f in document["findings"]}
        assert found == {("unregistered-host", ip) for ip in link.link_locals}
        assert document["run"]["hosts_seen"] == 3
        # A prefix it holds no address in: another link's; one warning, nothing looked at.
        off = scan("2001:db8:30::/64")
        assert off.returncode == 1, off.stderr  # the three stay open: nothing resolved
        assert "2001:db8:30::/64 (not on interface eth0: none of its addresses (no IPv4" in (
            off.stderr
        )
        # An IPv4 subnet on it: the other phases send from an IPv4 address it does not have.
        ipv4 = scan("198.18.0.0/24")
        assert ipv4.returncode == 3 and "has no IPv4 address" in ipv4.stderr


def test_a_dhcpv6_answer_relayed_by_the_gateway_is_the_registered_servers(tmp_path: Path) -> None:
    # dnsmasq's relay on the gateway, a dnsmasq server behind it: the ADVERTISE reaches the
    # scanner from the gateway's address and MAC, with the server's DUID (LLT, its MAC) inside.
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with relayed_dhcp6(tmp_path) as link, inside(link.scanner_ns):
        _adverts, servers = Ipv6Probe("eth0", wait=1.5).probe()
    (server,) = servers
    assert server.server_mac == link.router_mac and server.server_ip.startswith("fe80::")
    assert duid_mac(server.server_duid) == link.server_mac
    assert server.addresses and server.addresses[0].startswith("fd00:a::")
    gateway = Binding("198.18.0.1", link.router_mac, roles=frozenset({Role.GATEWAY}))
    dhcp = Binding("198.18.1.2", link.server_mac, roles=frozenset({Role.DHCP_SERVER}))
    registered = LedgerIndex((gateway, dhcp), "")
    assert rogue_dhcp6(servers, PolicySettings(), registered) == []
    # The server unregistered: the gateway relays for a server nobody approved.
    (finding,) = rogue_dhcp6(servers, PolicySettings(), LedgerIndex((gateway,), ""))
    assert (finding.ip, finding.mac) == (server.server_ip, link.router_mac)
    assert f"relays for DHCPv6 server {link.server_mac}" in finding.summary
    assert finding.detail["duid_macs"] == [link.server_mac]
