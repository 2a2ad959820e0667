"""`ipguard watch` reads IPv6 neighbour discovery on a real link: the IPv6 lab's radvd, a rogue
radvd and THC-IPv6's fake_router6 (behind hop-by-hop and fragment headers, named in the finding)
answer a Router Solicitation from THC-IPv6's dump_router6, and THC-IPv6's fake_advertise6
advertises a registered static IPv6 address, then the registered router's link-local address,
from another MAC; THC-IPv6's fake_solicitate6 solicits from a registered static address with
another MAC, and an unregistered host's own solicitations show it; THC-IPv6's dump_dhcp6 solicits
DHCPv6, and the rogue dnsmasq's answer is rogue-dhcp.

The watcher runs in the scanner's namespace with its real kernel filter; the lab's bridge floods
every frame (a mirror port), so that RAs answered to another host reach it too.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.lab.ipv6_lab import (
    ATTACKER,
    DHCP6_ROGUE,
    PREFIX,
    RADVD_ROGUE,
    ROUTER,
    SLAAC,
    STATIC_IP,
    STRANGER,
    TAKEN_IP,
    TAKER,
    enable_ipv6,
    eui64_link_local,
    ipv6_routers,
)
from tests.watch.lab import WATCH_CONFIG, as_hub, background
from tests.watch.test_watch_lab import DEADLINE, Watching, wait_for, watched

pytestmark = pytest.mark.lab
TOOLS = ("radvd", "atk6-fake_router6", "atk6-fake_advertise6", "atk6-dump_router6",
         "atk6-fake_solicitate6", "atk6-dump_dhcp6")  # fmt: skip


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable(*TOOLS)
    if reason:
        pytest.skip(reason)
    with Lab.build(ipv6_routers()) as built:
        as_hub(built)
        enable_ipv6(built)
        yield built


@pytest.fixture
def watching(lab: Lab, tmp_path: Path) -> Iterator[Watching]:
    config = WATCH_CONFIG.format(subnet=lab.subnet)
    config = config.replace(
        f'subnets = ["{lab.subnet}"]', f'subnets = ["{lab.subnet}", "{PREFIX}"]'
    )
    yield from watched(lab, tmp_path, config)


def test_watch_reports_rogue_router_advertisements_and_a_taken_static_ipv6(
    lab: Lab, watching: Watching
) -> None:
    rogue, attacker, router = (lab.host(name).mac for name in (RADVD_ROGUE, ATTACKER, ROUTER))
    server = lab.host(DHCP6_ROGUE).mac
    taker = lab.host(TAKER).mac
    watching.start()

    def macs_of(kind: str) -> set[str]:
        return {f["mac"] for f in watching.findings() if f["kind"] == kind}

    # A host asks for routers: all three answer (fake_router6 also advertises every 5 s).
    with background(lab, STRANGER, ["atk6-dump_router6", "eth0"]):
        wait_for(lambda: macs_of("rogue-ra") >= {rogue, attacker}, "both rogue RAs", DEADLINE)
    # The attack tool claims math-pc68's registered static IPv6 with math-pc67's MAC.
    netns.run(lab.host(TAKER).ns, ["atk6-fake_advertise6", "-n", "1", "eth0", TAKEN_IP])
    mismatch = watching.finding("ip-mac-mismatch", TAKEN_IP, taker)
    assert mismatch["severity"] == "high"
    # And the router's link-local address, which its RAs (heard above) made the hosts' gateway:
    # parasite6's spoof of the IPv6 gateway, critical.
    router_ll = eui64_link_local(router)
    netns.run(lab.host(TAKER).ns, ["atk6-fake_advertise6", "-n", "1", "eth0", router_ll])
    spoofed = watching.finding("ip-mac-mismatch", router_ll, taker)
    assert spoofed["severity"] == "critical"
    # A Neighbor Solicitation claims its source address, as an ARP request its sender's:
    # fake_solicitate6 puts office-pc66's static address in the source and math-pc67's MAC in
    # the option (every receiver takes it, RFC 4861 7.2.3) ...
    tool = ["atk6-fake_solicitate6", "eth0", "2001:db8:20::1", "ff02::1", taker, STATIC_IP]
    with background(lab, TAKER, tool):
        watching.finding("ip-mac-mismatch", STATIC_IP, taker)
    # ... and a host reaching a neighbour from its SLAAC address says it holds it: the
    # unregistered host shows up without sending one advertisement. (Not office-pc66: the spoof
    # above already put its address in every neighbour table, which is what it is for.)
    stranger, neighbour = lab.host(STRANGER).mac, lab.host(SLAAC[0]).mac
    slaac = eui64_link_local(neighbour).replace("fe80::", PREFIX.split("::")[0] + ":0:")
    send = "import socket, sys; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
    send += f"s.sendto(b'', ({slaac!r}, 9))"  # one datagram: the kernel resolves the neighbour
    netns.run(lab.host(STRANGER).ns, ["python3", "-c", send])
    wait_for(lambda: stranger in macs_of("unregistered-host"), "the stranger", DEADLINE)
    # A client's SOLICIT (THC-IPv6's dump_dhcp6) and the rogue DHCPv6 server's answer to it:
    # rogue-dhcp, as the ipv6 phase reports the server it solicits itself.
    with background(lab, STRANGER, ["atk6-dump_dhcp6", "eth0"]):
        wait_for(lambda: server in macs_of("rogue-dhcp"), "the DHCPv6 server", DEADLINE)

    found = watching.findings()
    rogue_ra = {f["mac"]: f for f in found if f["kind"] == "rogue-ra"}
    assert set(rogue_ra) == {rogue, attacker}  # the registered radvd (role router): nothing
    assert router not in {f["mac"] for f in found}
    assert rogue_ra[rogue]["ip"] == eui64_link_local(rogue)
    assert rogue_ra[rogue]["severity"] == "critical"
    # fake_router6 -H / -F: read past the extension headers (RA Guard's blind spot), named.
    evasion = rogue_ra[attacker]["detail"]["evasion"]
    assert evasion and set(evasion) <= {"hop-by-hop", "fragment"}, rogue_ra[attacker]
    assert "evasion" not in rogue_ra[rogue]["detail"]
    code, err = watching.stop(signal.SIGTERM)
    assert code == 0, err
