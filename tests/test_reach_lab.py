"""Partial reachability on the lab: a scan sweeps what it can reach and resolves nothing elsewhere.

The scanner's interface is a /24 on the lab's LAN, with a route to the routed segment through the
gateway and no route anywhere else. Asked for a /20 around its /24, a scan sweeps the /24, warns
once (even with --quiet) about the rest, and leaves the findings there as they were.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenario import Scenario
from tests.lab.scenarios import (
    LAN,
    ROUTED,
    SSH,
    _infrastructure,
    _scanner,
    device,
    lan_ip,
    stranger,
)

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
FAR = "198.19.0.77"


def scenario() -> Scenario:
    """The gateway, one registered host and one stranger on the LAN, one stranger routed."""
    unregistered = (("unregistered-host", None),)
    return Scenario(
        name="reach",
        segments=(LAN, ROUTED),
        scanner=_scanner(),
        hosts=(
            _infrastructure()[0],  # the gateway, routing to 198.19.0.0/24
            device("math-pc01", lan_ip(20), "李伟", services=(SSH,)),
            stranger("visitor", lan_ip(90), "02:66:00:00:00:90", expect=unregistered),
            stranger(
                "far-visitor",
                FAR,
                "02:66:00:00:01:77",
                segment="routed",
                gateway="198.19.0.1",
                expect=unregistered,
            ),
        ),
    )


def ipguard(lab: Lab, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [IPGUARD, "--db", str(work / "ledger.db"), "--config", str(work / "ipguard.toml")]
    return subprocess.run(
        ["ip", "netns", "exec", lab.scanner_ns, *argv, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def kinds(document: dict) -> set[tuple[str, str]]:
    return {(f["kind"], f["ip"]) for f in document["findings"]}


@requires_lab("nmap")
@pytest.mark.lab
def test_a_20_on_a_24_interface_sweeps_the_24_warns_and_resolves_nothing_beyond(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = lab_factory(scenario())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    config = tmp_path / "ipguard.toml"
    wider = 'subnets = ["198.18.0.0/20", "198.19.0.0/24"]'
    config.write_text(re.sub(r"(?m)^subnets = .*$", wider, config.read_text()))
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    phases = ("--phases", "sweep,names,dhcp")

    # Everything reachable: both strangers are found, the unreachable part of the /20 is named.
    first = ipguard(lab, tmp_path, "scan", "--format", "json", *phases)
    assert first.returncode in (0, 1), first.stderr
    planted = {(kind, ip) for kind, ip, _mac, _port in lab.expected_findings()}
    assert kinds(json.loads(first.stdout)) == planted
    assert ("unregistered-host", FAR) in planted
    assert "198.18.1.0/24" in first.stderr and "no route" in first.stderr

    # The routed segment loses its route: only the LAN's /24 can be swept now.
    lab.run("scanner", ["ip", "route", "del", ROUTED.cidr])
    second = ipguard(lab, tmp_path, "scan", "--quiet", *phases)
    assert second.returncode in (0, 1), second.stderr
    assert second.stdout == ""
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, second.stderr
    for part in ("198.18.1.0/24", "198.18.8.0/21", "198.19.0.0/24 (no route to 198.19.0.1)"):
        assert part in warnings[0]
    listed = ipguard(lab, tmp_path, "findings", "list", "--format", "json")
    assert kinds(json.loads(listed.stdout)) == planted  # the far stranger's finding stays open
    resolved = ipguard(lab, tmp_path, "findings", "list", "--state", "resolved", "--format", "json")
    assert json.loads(resolved.stdout)["findings"] == []
    runs = json.loads(ipguard(lab, tmp_path, "runs", "list", "--format", "json").stdout)
    shown = ipguard(lab, tmp_path, "runs", "show", str(runs[0]["id"]), "--format", "json")
    uncovered = json.loads(shown.stdout)["uncovered"]
    assert {"range": "198.19.0.0/24", "reason": "no route to 198.19.0.1"} in uncovered

    # Nothing reachable at all: an operational failure.
    third = ipguard(lab, tmp_path, "scan", "--subnet", ROUTED.cidr, *phases)
    assert third.returncode == 3
    assert "no route to 198.19.0.1" in third.stderr


@pytest.mark.lab
def test_a_second_subnet_on_the_same_link_is_swept_by_arp_from_the_address_held_there(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """A VLAN carrying two subnets (the router and the sensor hold an address in each): the
    second is on the link, so it is asked by ARP from the sensor's own address in it and its
    hosts come with their MACs. It was swept by echo requests: its hosts came without a MAC (no
    IP-MAC check there) and the sensor's own second address was an unregistered host."""
    lab = lab_factory(scenario())
    lab.run("scanner", ["ip", "addr", "add", "198.18.2.2/24", "dev", lab.scanner_interface])
    lab.run("visitor", ["ip", "addr", "add", "198.18.2.90/24", "dev", "eth0"])
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    config = tmp_path / "ipguard.toml"
    both = 'subnets = ["198.18.0.0/24", "198.18.2.0/24"]'
    config.write_text(re.sub(r"(?m)^subnets = .*$", both, config.read_text()))
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    done = ipguard(lab, tmp_path, "scan", "--format", "json", "--phases", "sweep")
    assert done.returncode == 1, done.stderr
    found = {(f["kind"], f["ip"], f["mac"]) for f in json.loads(done.stdout)["findings"]}
    visitor = "02:66:00:00:00:90"
    assert ("unregistered-host", "198.18.2.90", visitor) in found
    assert ("unregistered-host", lan_ip(90), visitor) in found
    assert not [item for item in found if item[1] == "198.18.2.2"]  # the sensor itself
    assert done.stderr == ""


@pytest.mark.lab
def test_a_subnet_of_the_sensors_other_interface_is_swept_without_finding_the_sensor(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """The sensor's second NIC (management) holds 198.18.3.2/24, and that subnet is in the scan
    list. It is swept as routed, through that NIC: the sensor answered its own echo request there
    and was reported as an unregistered host. (Its echo requests also wait on neighbour
    resolution in the socket's send buffer: with the default retries the scan failed with 'the
    transmit queue stayed full', exit 3; the buffer is now larger.)"""
    lab = lab_factory(scenario())
    lab.run("scanner", ["ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt1"])
    for name in ("mgmt0", "mgmt1"):
        lab.run("scanner", ["ip", "link", "set", name, "up"])
    lab.run("scanner", ["ip", "addr", "add", "198.18.3.2/24", "dev", "mgmt0"])
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    config = tmp_path / "ipguard.toml"
    both = 'subnets = ["198.18.0.0/24", "198.18.3.0/24"]'
    text = re.sub(r"(?m)^subnets = .*$", both, config.read_text())
    config.write_text(re.sub(r"(?m)^retries = .*$", "retries = 2", text))  # the default
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    done = ipguard(lab, tmp_path, "scan", "--format", "json", "--phases", "sweep")
    assert done.returncode == 1, done.stderr
    found = {(f["kind"], f["ip"]) for f in json.loads(done.stdout)["findings"]}
    assert ("unregistered-host", lan_ip(90)) in found
    assert not [item for item in found if item[1].startswith("198.18.3.")], found
    assert done.stderr == ""


@pytest.mark.lab
def test_a_scan_of_an_interface_without_ethernet_is_refused_in_one_line(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """`--interface lo` (or a VPN's tun0, wg0): no ARP or DHCP frame goes there. The scan took
    every subnet for routed and swept it by echo through whatever route the kernel had (here it
    completed, every host without its MAC, so no IP-MAC check at all); where it had to sweep the
    interface's own network it failed with 'the transmit queue stayed full; lower the rate'."""
    lab = lab_factory(scenario())
    lab.write_config(tmp_path / "ipguard.toml")
    done = ipguard(lab, tmp_path, "scan", "--interface", "lo", "--phases", "sweep")
    assert done.returncode == 3
    assert done.stderr.startswith("error: interface lo is not an Ethernet interface (loopback)")
    assert len(done.stderr.splitlines()) == 1, done.stderr
