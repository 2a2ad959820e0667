"""keepalived at its defaults: a gateway address that moves between two routers by VRRP.

keepalived announces the address from the master's own MAC unless `use_vmac` is set, which it is
not by default: after a failover the backup answers the gateway's address from its MAC. Registered
with that MAC in `alt_macs`, the failover is no finding; without it, it is ip-mac-mismatch,
critical (the gateway's address answered by another MAC), which is what a spoof looks like.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.lab.netns import exec_argv
from tests.lab.scenario import Scenario
from tests.lab.scenarios import LAN, _scanner, device, lan_ip
from tests.test_scan_lab import ipguard

pytestmark = pytest.mark.lab
VIP = lan_ip(1)
ROUTERS = {"office-rt1": (lan_ip(252), 150), "office-rt2": (lan_ip(253), 100)}  # ip, priority
# The lab sets only what a VRRP instance cannot do without: its interface, router id, priority
# (which router is master first) and the address; every other setting is keepalived's default.
CONFIG = """vrrp_instance gateway {{
    interface eth0
    virtual_router_id 51
    priority {priority}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


def failover_pair() -> Scenario:
    routers = tuple(
        device(name, ip, "网络中心", roles=("router",), gateway=None)
        for name, (ip, _priority) in ROUTERS.items()
    )
    return Scenario(name="failover", segments=(LAN,), scanner=_scanner(), hosts=routers)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable("keepalived")
    if reason:
        pytest.skip(reason)
    with Lab.build(failover_pair()) as built:
        yield built


def keepalived(lab: Lab, name: str, workdir: Path) -> subprocess.Popen[bytes]:
    """keepalived (VRRP only, in the foreground) in the router's namespace, with pid files of its
    own: two instances share this machine's /run."""
    _ip, priority = ROUTERS[name]
    config = workdir / f"{name}.conf"
    config.write_text(CONFIG.format(priority=priority, vip=VIP))
    argv = ["keepalived", "--dont-fork", "--vrrp", "--log-console", "--no-syslog",
            "--use-file", str(config), "--pid", str(workdir / f"{name}.pid"),
            "--vrrp_pid", str(workdir / f"{name}.vrrp.pid")]  # fmt: skip
    return subprocess.Popen(
        exec_argv(lab.ns(name), argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def addresses(lab: Lab, name: str) -> str:
    argv = exec_argv(lab.ns(name), ["ip", "-4", "addr", "show", "eth0"])
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def holder(lab: Lab, timeout: float = 20.0) -> str:
    """The router that holds the gateway address once one alone does (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holding = [name for name in ROUTERS if f"inet {VIP}/" in addresses(lab, name)]
        if len(holding) == 1:
            return holding[0]
        time.sleep(0.2)
    raise AssertionError(f"no single router held {VIP} within {timeout} s")


def gateway_findings(lab: Lab, files: Path) -> list[tuple[str, str, str]]:
    done = ipguard(lab, files, "scan", "--phases", "sweep", "--format", "json", in_lab=True)
    assert done.returncode in (0, 1), done.stderr
    found = json.loads(done.stdout)["findings"]
    return [(f["kind"], f["mac"], f["severity"]) for f in found if f["ip"] == VIP]


def test_a_gateway_failing_over_between_two_keepalived_routers(lab: Lab, tmp_path: Path) -> None:
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    first, second = (lab.host(name).mac for name in ROUTERS)
    added = ipguard(lab, tmp_path, "ledger", "add", VIP, first, "--alt-macs", second,
                    "--roles", "gateway;router", "--owner", "网络中心")  # fmt: skip
    assert added.returncode == 0, added.stderr
    daemons = [keepalived(lab, name, tmp_path) for name in ROUTERS]
    try:
        assert holder(lab) == "office-rt1"  # the higher priority
        assert gateway_findings(lab, tmp_path) == []
        daemons[0].terminate()  # the master leaves: it says so (priority 0), the backup takes over
        daemons[0].wait(timeout=10)
        assert holder(lab) == "office-rt2"
        assert gateway_findings(lab, tmp_path) == []  # answered from the second router's MAC
        changed = ipguard(lab, tmp_path, "diff", "1", "2", "--format", "json")
        assert json.loads(changed.stdout)["mac_changed"] == [
            {"ip": VIP, "from": first, "to": second}
        ]
        # The same failover without the second router's MAC registered: a spoof, as far as
        # anyone can tell.
        edited = ipguard(lab, tmp_path, "ledger", "edit", VIP, "--alt-macs", "")
        assert edited.returncode == 0, edited.stderr
        assert gateway_findings(lab, tmp_path) == [("ip-mac-mismatch", second, "critical")]
        listed = ipguard(lab, tmp_path, "findings", "list", "--format", "json")
        (spoof,) = json.loads(listed.stdout)["findings"]
        assert spoof["detail"]["failover_twin"] is True
        assert f"ipguard ledger edit {VIP} --alt-macs {second}" in spoof["summary"]
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.terminate()
                daemon.wait(timeout=10)
