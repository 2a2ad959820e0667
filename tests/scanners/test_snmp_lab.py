"""SNMP against real agents in the lab: net-snmp's snmpd on the router (the kernel's ARP table)
and on the switch (the bridge's forwarding table, SNMPv3 authPriv), plus odd agents.

Acceptance of issue 15: `snmp walk` equals `ip neigh` and `bridge fdb`; a scan with the snmp phase
reports wrong-port, unmanaged-switch for the hub port and unregistered-host on the routed VLAN,
and nothing about the ordinary hosts; a silent, looping or endless agent gives one warning naming
it, the run completes and its findings stay; no secret appears in any output or artefact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import snmp_lab as topo
from tests.lab.fixtures import requires_lab
from tests.lab.netns import exec_argv

pytestmark = [requires_lab("snmpd"), pytest.mark.lab]
IPGUARD = str(Path(sys.executable).with_name("ipguard"))
V3 = ("--version", "3", "--user", "ipguard", "--auth-proto", "sha", "--auth-key-env", "AK")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topo.SnmpLab]:
    with topo.snmp_lab(tmp_path_factory.mktemp("snmplab")) as built:
        yield built


def run(
    lab: topo.SnmpLab, *args: str, env: dict[str, str] | None = None, files: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`ipguard …` inside the sensor namespace, with the lab's secrets in its environment."""
    secrets = {"C": lab.community, "AK": lab.auth_key, "PK": lab.priv_key}
    where = (
        ["--db", str(files / "ledger.db"), "--config", str(files / "ipguard.toml")] if files else []
    )
    argv = exec_argv(lab.ns("sensor"), [IPGUARD, *where, *args])
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **secrets, **(env or {})},
        check=False,
    )
    lab.outputs.append(done.stdout + done.stderr)
    return done


def test_walk_router_equals_kernel_arp_table(lab: topo.SnmpLab) -> None:
    lab.refresh()
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, "--community-env", "C", "--format", "json")
    assert done.returncode == 0, done.stderr
    walked = json.loads(done.stdout)
    assert {(row["ip"], row["mac"]) for row in walked["arp"] if ":" not in row["ip"]} == (
        lab.ip_neigh()
    )
    assert walked["device"]["sys_name"] == "lab-router"
    assert {row["if_name"] for row in walked["arp"]} == {"eth0", "vl20"}


def test_walk_switch_v3_authpriv_equals_bridge_fdb(lab: topo.SnmpLab) -> None:
    lab.refresh()
    done = run(
        lab, "snmp", "walk", topo.SWITCH_IP, *V3, "--priv-proto", "aes", "--priv-key-env", "PK",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    walked = json.loads(done.stdout)
    assert {(row["mac"], row["if_name"]) for row in walked["fdb"]} == lab.bridge_fdb()
    hub = {row["mac"] for row in walked["fdb"] if row["if_name"] == "Gi1/0/6"}
    assert {lab.macs[name] for name in topo.HUB_HOSTS} <= hub


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--community-env", "WRONG"), "no answer"),
        ((*V3, "--priv-proto", "aes", "--priv-key-env", "AK"), "decrypt"),
    ],
    ids=["wrong community", "wrong v3 privacy key"],
)
def test_walk_with_wrong_secret_fails_naming_the_host(
    lab: topo.SnmpLab, args: tuple[str, ...], message: str
) -> None:
    host = topo.ROUTER_IP if "--community-env" in args else topo.SWITCH_IP
    done = run(lab, "snmp", "walk", host, *args, "--timeout", "0.5", "--retries", "0",
               env={"WRONG": "not-" + lab.community})  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.startswith("error: snmp walk: ") and host in done.stderr
    assert message in done.stderr or "no answer" in done.stderr


@pytest.mark.parametrize(
    ("mode", "code", "warning"),
    [("unordered", 0, None), ("loop", 3, "loops"), ("endless", 3, "never ends")],
)
def test_walk_of_odd_agents(lab: topo.SnmpLab, mode: str, code: int, warning: str | None) -> None:
    """An agent answering out of order is walked to the end; a loop or an endless table stops
    the walk with a warning and what came so far."""
    port = topo.ODD_PORTS[mode]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, "--port", str(port), "--community-env", "C",
               "--format", "json", "--timeout", "0.5", "--retries", "0")  # fmt: skip
    assert done.returncode == code, done.stderr
    assert json.loads(done.stdout)["device"]["sys_name"] == "odd-agent"
    if warning is None:
        assert done.stderr == ""
    else:
        assert warning in done.stderr and f"{topo.ROUTER_IP}:{port}" in done.stderr


LEDGER_HEADER = "ip,mac,hostname,owner,department,location,switch_port,roles\n"


def _ledger(lab: topo.SnmpLab) -> str:
    rows = [
        (topo.ROUTER_IP, lab.router_mac, "router", "lab-switch:Gi1/0/1", "router;gateway"),
        (topo.SENSOR_IP, lab.macs["sensor"], "sensor", "lab-switch:Gi1/0/2", "host"),
        ("198.18.10.11", lab.macs["h1"], "Li Wei", "lab-switch:Gi1/0/3", "host"),
        ("198.18.10.12", lab.macs["h2"], "Wang Fang", "lab-switch:Gi1/0/4", "host"),
        # plugged into Gi1/0/5: wrong-port
        ("198.18.10.13", lab.macs["moved"], "Zhang Min", "lab-switch:Gi1/0/7", "host"),
        *(
            (ip, lab.macs[name], f"hub {name}", "lab-switch:Gi1/0/6", "host")
            for name, ip in topo.HUB_HOSTS.items()
        ),
        ("198.18.20.11", lab.macs["r21"], "Liu Yang", "", "host"),  # r20 is not registered
    ]
    return LEDGER_HEADER + "".join(
        f"{ip},{mac},,{owner},lab,,{port},{roles}\n" for ip, mac, owner, port, roles in rows
    )


def _config(lab: topo.SnmpLab, files: Path) -> None:
    key_file = files / "switch-auth-key"
    key_file.write_text(lab.auth_key + "\n")
    key_file.chmod(0o600)
    (files / "ipguard.toml").write_text(
        f"""
[scan]
interface = "eth0"
subnets = ["{topo.LAN}", "{topo.ROUTED}"]
services = false
timeout = 0.5
retries = 1

[policy]
hostname_rule = ""

[snmp]
timeout = 0.5
retries = 1

[[snmp.devices]]
host = "{topo.ROUTER_IP}"
name = "lab-router"
version = "2c"
community_env = "C"
roles = ["router"]

[[snmp.devices]]
host = "{topo.SWITCH_IP}"
name = "lab-switch"
version = "3"
user = "{lab.v3_user}"
auth_proto = "sha"
auth_key_file = "{key_file}"
priv_proto = "aes"
priv_key_env = "PK"
roles = ["switch"]
"""
    )


def _findings(document: dict) -> set[tuple[str, str | None, str | None, str | None]]:
    return {(f["kind"], f["ip"], f["mac"], f["port"]) for f in document["findings"]}


@pytest.fixture(scope="module")
def scanned(
    lab: topo.SnmpLab, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    files = tmp_path_factory.mktemp("snmpscan")
    _config(lab, files)
    (files / "ledger.csv").write_text(_ledger(lab))
    imported = run(lab, "ledger", "import", str(files / "ledger.csv"), files=files)
    assert imported.returncode == 0, imported.stderr
    lab.refresh()
    return files, run(lab, "scan", "--format", "json", "--quiet", files=files)


def test_scan_reports_wrong_port_hub_and_routed_unregistered_host(
    lab: topo.SnmpLab, scanned: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    _files, done = scanned
    assert done.returncode == 1, done.stderr  # high findings are open
    document = json.loads(done.stdout)
    assert document["run"]["status"] == "complete"
    found = _findings(document)
    assert ("wrong-port", "198.18.10.13", lab.macs["moved"], "lab-switch:Gi1/0/5") in found
    assert ("unmanaged-switch", None, None, "lab-switch:Gi1/0/6") in found
    assert ("unregistered-host", "198.18.20.10", lab.macs["r20"], None) in found
    hubs = [f for f in document["findings"] if f["kind"] == "unmanaged-switch"]
    assert len(hubs) == 1, hubs  # the sensor's own port (its DHCP probe's MAC) is not one
    hub = hubs[0]
    behind = {item["mac"] for item in hub["detail"]["macs"]}
    assert {lab.macs[name] for name in topo.HUB_HOSTS} <= behind
    # The ordinary hosts (and the sensor, the router, the registered routed host) raise nothing.
    ordinary = {"198.18.10.11", "198.18.10.12", "198.18.20.11", topo.SENSOR_IP, topo.ROUTER_IP}
    assert not [f for f in document["findings"] if f["ip"] in ordinary], document["findings"]
    assert done.stderr == ""


def test_silent_router_warns_keeps_its_findings(
    lab: topo.SnmpLab, scanned: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    """Wrong community: one warning naming the device, the run completes, and the routed host
    seen only in the router's table stays open (its absence proves nothing)."""
    files, _first = scanned
    done = run(lab, "scan", "--format", "json", "--quiet", files=files,
               env={"C": "not-" + lab.community})  # fmt: skip
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["run"]["status"] == "complete"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: snmp:")]
    assert len(warnings) == 1 and "lab-router" in warnings[0], done.stderr
    found = _findings(document)
    assert ("unregistered-host", "198.18.20.10", lab.macs["r20"], None) in found
    assert ("unmanaged-switch", None, None, "lab-switch:Gi1/0/6") in found


def test_no_secret_in_any_output_or_artefact(
    lab: topo.SnmpLab, scanned: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    files, _done = scanned
    shown = run(lab, "runs", "list", "--format", "json", files=files)
    report = run(lab, "report", "--format", "json", files=files)
    assert shown.returncode == 0 and report.returncode == 0, shown.stderr + report.stderr
    artefacts = [
        path for path in files.rglob("*") if path.is_file() and "auth-key" not in path.name
    ]
    for secret in lab.secrets():
        for text in lab.outputs:
            assert secret not in text
        for path in artefacts:
            assert secret.encode() not in path.read_bytes(), path
