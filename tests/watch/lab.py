"""The watch lab: a gateway, a registered PC, an attacker, a newcomer, a laptop and a rogue DHCP."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.scenario import DhcpServer, Scenario
from tests.lab.scenarios import LAN, _scanner, device, lan_ip, stranger

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
WATCH_CONFIG = """
[scan]
interface = "eth0"
subnets = ["{subnet}"]
site = "lab"
[watch]
duplicate_window = 10
alert_interval = 30
[policy]
hostname_rule = "^{{department}}-{{asset_tag}}$"
"""


def watch_scenario() -> Scenario:
    """One segment: what a watcher on an access (or mirror) port of a small office sees."""
    return Scenario(
        name="watch",
        segments=(LAN,),
        scanner=_scanner(),
        hosts=(
            device(
                "office-gw01",
                lan_ip(1),
                "王芳",
                roles=("gateway", "router"),
                gateway=None,
                location="网络中心",
            ),
            device("math-pc01", lan_ip(20), "李伟", gateway=None),
            stranger("attacker", lan_ip(66), "02:66:00:00:00:66", gateway=None),
            stranger("newcomer", lan_ip(91), "00:16:3e:00:00:91", gateway=None),
            stranger("laptop", lan_ip(95), "00:16:3e:00:00:95", gateway=None),
            stranger(
                "rogue-dhcp",
                lan_ip(77),
                "02:66:00:00:00:77",
                gateway=None,
                dhcp=DhcpServer(lan_ip(150), lan_ip(199)),
            ),
        ),
    )


def as_hub(lab: Lab) -> None:
    """Make the lab's bridge flood every frame to every port: each port becomes a mirror port."""
    lab.run(lab.switch_ns, ["ip", "link", "set", "br0", "type", "bridge", "ageing_time", "0"])


@contextlib.contextmanager
def background(lab: Lab, host: str, argv: Sequence[str]) -> Iterator[subprocess.Popen[str]]:
    """Run a tool in a lab namespace until the block ends; its output is the caller's to read."""
    process = subprocess.Popen(
        netns.exec_argv(lab.ns(host), list(argv)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


_EVENT = re.compile(r"Subject:\s*(?P<event>[a-z ]+?)\s*(\(|$)", re.MULTILINE)
_IP = re.compile(r"ip address:\s*(?P<ip>[0-9.]+)")
_MAC = re.compile(r"ethernet address:\s*(?P<mac>[0-9a-f:]+)")


def arpwatch_events(report: str) -> list[tuple[str, str, str]]:
    """(event, ip, mac) of each report arpwatch -d printed; MACs in canonical form."""
    events = []
    for block in report.split("From: arpwatch")[1:]:
        event, ip, mac = _EVENT.search(block), _IP.search(block), _MAC.search(block)
        if event and ip and mac:
            canonical = ":".join(f"{int(part, 16):02x}" for part in mac["mac"].split(":"))
            events.append((event["event"], ip["ip"], canonical))
    return events
