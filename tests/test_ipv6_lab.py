"""The ipv6 phase on a real link: radvd, a rogue radvd, fake_router6 and a DHCPv6 dnsmasq.

One lab (:mod:`tests.lab.ipv6_lab`) serves the module: the registered router's radvd gives nothing,
both rogue RA sources give rogue-ra, the rogue DHCPv6 server rogue-dhcp with family 6.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipguard.scanners.ipv6 import Ipv6Probe
from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.lab.ipv6_lab import (
    ATTACK_PREFIX,
    ATTACKER,
    DHCP6_ROGUE,
    PREFIX,
    RADVD_ROGUE,
    ROGUE_PREFIX,
    ROUTER,
    enable_ipv6,
    eui64_link_local,
    ipv6_routers,
)
from tests.lab.netns import inside
from tests.test_scan_lab import ipguard

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable("radvd", "atk6-fake_router6")
    if reason:
        pytest.skip(reason)
    with Lab.build(ipv6_routers()) as built:
        enable_ipv6(built)
        yield built


def test_the_probe_hears_every_router_and_the_dhcpv6_server(lab: Lab) -> None:
    probe = Ipv6Probe("eth0", wait=6.0)
    with inside(lab.scanner_ns):
        adverts, servers = probe.probe()
    by_mac = {advert.source_mac: advert for advert in adverts}
    router, rogue, attacker = (lab.host(name).mac for name in (ROUTER, RADVD_ROGUE, ATTACKER))
    assert {router, rogue, attacker} <= set(by_mac), adverts
    assert by_mac[router].prefixes == (PREFIX,)
    assert by_mac[router].source_ip == eui64_link_local(router)
    assert by_mac[rogue].prefixes == (ROGUE_PREFIX,)
    assert ATTACK_PREFIX in by_mac[attacker].prefixes
    assert all(advert.router_lifetime > 0 for advert in by_mac.values())
    assert [server.server_mac for server in servers] == [lab.host(DHCP6_ROGUE).mac]
    assert servers[0].addresses and servers[0].addresses[0].startswith("fd00:62::")


def test_a_scan_reports_both_rogue_ra_sources_and_the_dhcpv6_server(
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
    assert found == {("rogue-ra", rogue), ("rogue-ra", attacker), ("rogue-dhcp", server)}
    by_kind = {(f["kind"], f["mac"]): f for f in document["findings"]}
    assert by_kind["rogue-ra", rogue]["ip"] == eui64_link_local(rogue)
    assert by_kind["rogue-ra", rogue]["detail"]["prefixes"] == [ROGUE_PREFIX]
    assert by_kind["rogue-ra", rogue]["severity"] == "critical"
    dhcp6 = by_kind["rogue-dhcp", server]
    assert dhcp6["detail"]["family"] == 6 and dhcp6["ip"].startswith("fe80::")
    assert document["run"]["status"] == "complete"
