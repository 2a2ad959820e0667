"""A scan with the snmp phase on the SNMP lab (tests/lab/snmp_lab.py), acceptance of issue 15:
wrong-port, unmanaged-switch for the hub port and unregistered-host on the routed VLAN, nothing
about the ordinary hosts; a silent router gives one warning naming it, the run completes and its
findings stay; no secret appears in any output or artefact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import snmp_lab as topo
from tests.lab.fixtures import requires_lab
from tests.scanners.test_snmp_lab import run

pytestmark = [requires_lab("snmpd"), pytest.mark.lab]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topo.SnmpLab]:
    with topo.snmp_lab(tmp_path_factory.mktemp("snmpscanlab")) as built:
        yield built


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


ODD_DEVICES = f"""
[[snmp.devices]]
host = "{topo.ROUTER_IP}"
port = {topo.ODD_PORTS["loop"]}
name = "lab-looping"
community_env = "GOOD"
roles = ["switch"]

[[snmp.devices]]
host = "{topo.SWITCH_IP}"
port = 1999
name = "lab-gone"
community_env = "GOOD"
roles = ["switch"]
"""


def test_failing_devices_warn_and_keep_their_findings(
    lab: topo.SnmpLab, scanned: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    """A wrong community (the router), an agent that loops and one that is not there: one warning
    naming each, the run completes, and what only the router saw (the routed host) stays open."""
    files, _first = scanned
    config = files / "ipguard.toml"
    before = config.read_text()
    config.write_text(before + ODD_DEVICES)
    try:
        done = run(lab, "scan", "--format", "json", "--quiet", files=files,
                   env={"C": "not-" + lab.community, "GOOD": lab.community})  # fmt: skip
    finally:
        config.write_text(before)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["run"]["status"] == "complete"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: snmp:")]
    assert len(warnings) == 3, done.stderr
    for name, why in (
        ("lab-router", "no answer"),
        ("lab-looping", "loops"),
        ("lab-gone", "no answer"),
    ):
        assert sum(name in line and why in line for line in warnings) == 1, done.stderr
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


def test_snmp_phase_alone_runs_unprivileged(lab: topo.SnmpLab) -> None:
    """`scan --phases snmp` needs no raw socket: as nobody it finds the same three things."""
    files = Path(tempfile.mkdtemp(prefix="ipg-snmp-unprivileged-"))
    try:
        files.chmod(0o777)  # nobody writes the ledger (and its journal files) here
        _config(lab, files)
        text = (files / "ipguard.toml").read_text()
        key_line = next(line for line in text.splitlines() if line.startswith("auth_key_file"))
        (files / "ipguard.toml").write_text(text.replace(key_line, 'auth_key_env = "AK"'))
        (files / "ledger.csv").write_text(_ledger(lab))
        imported = run(lab, "ledger", "import", str(files / "ledger.csv"), files=files,
                       user="nobody")  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        lab.refresh()
        done = run(lab, "scan", "--phases", "snmp", "--format", "json", files=files,
                   user="nobody")  # fmt: skip
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        assert document["run"]["status"] == "complete"
        found = _findings(document)
        assert ("wrong-port", "198.18.10.13", lab.macs["moved"], "lab-switch:Gi1/0/5") in found
        assert ("unmanaged-switch", None, None, "lab-switch:Gi1/0/6") in found
        assert ("unregistered-host", "198.18.20.10", lab.macs["r20"], None) in found
    finally:
        shutil.rmtree(files, ignore_errors=True)


def test_a_catalyst_that_will_not_serve_one_vlan_is_judged_on_the_others(
    lab: topo.SnmpLab, tmp_path: Path
) -> None:
    """The SNMPv3 Catalyst serves contexts vlan-10 and vlan-20 but not vlan-1, which its
    vtpVlanState lists. The MAC registered on Gi0/9 and learnt on Gi0/1 (VLAN 10) is wrong-port
    all the same (the whole switch used to go unjudged, every run); once its port is corrected
    the finding is not raised again, yet stays open: it might sit on the VLAN not read."""
    (tmp_path / "ipguard.toml").write_text(
        f"""
[scan]
interface = "eth0"
subnets = ["{topo.LAN}"]

[snmp]
timeout = 0.5
retries = 0

[[snmp.devices]]
host = "{topo.ROUTER_IP}"
port = {topo.CISCO_V3_PORT}
name = "lab-catalyst"
version = "3"
user = "{lab.v3_user}"
auth_proto = "sha"
auth_key_env = "AK"
priv_proto = "aes"
priv_key_env = "PK"
roles = ["switch"]
"""
    )
    (tmp_path / "ledger.csv").write_text(
        LEDGER_HEADER + "198.18.10.41,3c:52:82:aa:0a:21,,Chen Jie,lab,,lab-catalyst:Gi0/9,host\n"
    )
    imported = run(lab, "ledger", "import", str(tmp_path / "ledger.csv"), files=tmp_path)
    assert imported.returncode == 0, imported.stderr
    scan = ("scan", "--phases", "snmp", "--format", "json", "--fail-on", "critical")
    first = run(lab, *scan, files=tmp_path)
    assert first.returncode == 0, first.stderr
    moved = ("wrong-port", "198.18.10.41", "3c:52:82:aa:0a:21", "lab-catalyst:Gi0/1")
    assert moved in _findings(json.loads(first.stdout))
    warning = next(line for line in first.stderr.splitlines() if "lab-catalyst" in line)
    assert "context vlan-1" in warning and "none of its findings is resolved" in warning
    run_id = str(json.loads(first.stdout)["run"]["id"])
    shown_run = json.loads(
        run(lab, "runs", "show", run_id, "--format", "json", files=tmp_path).stdout
    )
    polled = shown_run["counts"]["snmp"]["lab-catalyst"]
    assert polled["answered"] and polled["unread_vlans"] == [1] and polled["fdb"] == 5

    edited = run(lab, "ledger", "edit", "198.18.10.41", "--switch-port", "lab-catalyst:Gi0/1",
                 files=tmp_path)  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    second = run(lab, *scan, files=tmp_path)
    assert second.returncode == 0, second.stderr
    shown = run(lab, "findings", "list", "--kind", "wrong-port", "--format", "json",
                files=tmp_path)  # fmt: skip
    (finding,) = json.loads(shown.stdout)["findings"]
    assert (
        finding["state"] == "open"
        and finding["last_seen"] < json.loads(second.stdout)["run"]["started_at"]
    )
