"""`snmp walk` against real agents in the lab: net-snmp's snmpd on the router (the kernel's ARP
table) and on the switch (the bridge's forwarding table, SNMPv3 authPriv), plus odd agents.

Acceptance of issue 15: `snmp walk` equals `ip neigh` and `bridge fdb`; a wrong community or key
fails naming the host; an agent answering out of order is walked to the end, one that loops or
never ends stops the walk with a warning. The scan is tested in test_snmp_scan_lab.py.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import snmp_lab as topo
from tests.lab.fixtures import requires_lab
from tests.lab.netns import exec_argv
from tests.scanners.test_snmp_tables import CASES

pytestmark = [requires_lab("snmpd"), pytest.mark.lab]
IPGUARD = str(Path(sys.executable).with_name("ipguard"))
# What tests/lab/snmp_responder.py's Catalyst holds: (MAC, VLAN, port) of each VLAN's instance.
CATALYST_FDB = {
    ("3c:52:82:aa:0a:21", 10, "Gi0/1"),
    ("3c:52:82:aa:0a:22", 10, "Gi0/2"),
    ("3c:52:82:aa:0a:01", 10, "Gi0/24"),
    ("3c:52:82:aa:14:23", 20, "Gi0/3"),
    ("3c:52:82:aa:14:01", 20, "Gi0/24"),
}
V3 = ("--version", "3", "--user", "ipguard", "--auth-proto", "sha", "--auth-key-env", "AK")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topo.SnmpLab]:
    with topo.snmp_lab(tmp_path_factory.mktemp("snmplab")) as built:
        yield built


def run(
    lab: topo.SnmpLab,
    *args: str,
    env: dict[str, str] | None = None,
    files: Path | None = None,
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ipguard …` inside the sensor namespace (as `user`, else root), with the lab's secrets
    in its environment."""
    secrets = {"C": lab.community, "AK": lab.auth_key, "PK": lab.priv_key}
    where = (
        ["--db", str(files / "ledger.db"), "--config", str(files / "ipguard.toml")] if files else []
    )
    drop = []
    if user:
        entry = pwd.getpwnam(user)
        drop = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    argv = exec_argv(lab.ns("sensor"), [*drop, IPGUARD, *where, *args])
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


def test_walk_v1_getnext_equals_v2c_getbulk(lab: topo.SnmpLab) -> None:
    lab.refresh()
    tables = []
    for version in ("1", "2c"):
        done = run(lab, "snmp", "walk", topo.ROUTER_IP, "--version", version,
                   "--community-env", "C", "--format", "json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        tables.append({(row["ip"], row["mac"]) for row in json.loads(done.stdout)["arp"]})
    assert tables[0] == tables[1] and tables[0]


def test_walk_switch_v3_authpriv_equals_bridge_fdb(lab: topo.SnmpLab) -> None:
    """(The protocols spelt as snmpd.conf's createUser spells them: SHA, AES.)"""
    lab.refresh()
    done = run(
        lab, "snmp", "walk", topo.SWITCH_IP, *V3[:-3], "SHA", "--auth-key-env", "AK",
        "--priv-proto", "AES", "--priv-key-env", "PK", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    walked = json.loads(done.stdout)
    assert {(row["mac"], row["if_name"]) for row in walked["fdb"]} == lab.bridge_fdb()
    hub = {row["mac"] for row in walked["fdb"] if row["if_name"] == "Gi1/0/6"}
    assert {lab.macs[name] for name in topo.HUB_HOSTS} <= hub


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--community-env", "WRONG"), "no answer to 1 try of 0.5 s"),
        ((*V3, "--priv-proto", "aes", "--priv-key-env", "AK"), "wrong privacy key"),
        ((*V3[:-1], "PK", "--priv-proto", "aes", "--priv-key-env", "PK"), "wrong digest"),
        (("--version", "3", "--user", "nobody", "--auth-proto", "sha", "--auth-key-env", "AK",
          "--priv-proto", "aes", "--priv-key-env", "PK"), "unknown user name"),
    ],
    ids=["wrong community", "wrong v3 privacy key", "wrong v3 auth key", "unknown v3 user"],
)  # fmt: skip
def test_walk_with_wrong_secret_fails_naming_the_host(
    lab: topo.SnmpLab, args: tuple[str, ...], message: str
) -> None:
    host = topo.ROUTER_IP if "--community-env" in args else topo.SWITCH_IP
    done = run(lab, "snmp", "walk", host, *args, "--timeout", "0.5", "--retries", "0",
               env={"WRONG": "not-" + lab.community})  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.startswith("error: snmp walk: ") and host in done.stderr
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("mode", "code", "warning"),
    [
        ("unordered", 0, None),
        ("toobig", 0, None),  # walked on with fewer rows per request
        ("loop", 3, "loops"),
        ("endless", 3, "never ends"),
    ],
)
def test_walk_of_odd_agents(lab: topo.SnmpLab, mode: str, code: int, warning: str | None) -> None:
    """An agent answering out of order, or tooBig to a GETBULK asking for many rows, is walked
    to the end; a loop or an endless table stops the walk with a warning and what came so far."""
    port = topo.ODD_PORTS[mode]
    args = ["--port", str(port), "--community-env", "C", "--format", "json", "--timeout", "0.5"]
    args += ["--retries", "0", "--max-rows", "5000"]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, *args)
    assert done.returncode == code, done.stderr
    walked = json.loads(done.stdout)
    assert walked["device"]["sys_name"] == "odd-agent"
    if mode == "toobig":
        assert len({row["mac"] for row in walked["fdb"]}) == 150
    if warning is None:
        assert done.stderr == ""
    else:
        assert warning in done.stderr and f"{topo.ROUTER_IP}:{port}" in done.stderr


def test_walk_behind_debians_default_view_is_no_empty_table(lab: topo.SnmpLab) -> None:
    """snmpd as Debian installs it (rocommunity … -V systemonly) answers the system group and
    nothing else: the walk fails naming the view, exit 3, instead of printing an empty ARP
    table as the router's (which a scan would take as "no hosts", resolving its findings)."""
    args = ["--port", str(topo.SYSTEMONLY_PORT), "--community-env", "C", "--format", "json"]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, *args)
    assert done.returncode == 3, done.stdout
    assert "shows no interfaces" in done.stderr and f"{topo.ROUTER_IP}:1168" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_walk_cisco_per_vlan_fdb(lab: topo.SnmpLab) -> None:
    """A Catalyst keeps one forwarding table per VLAN: each is read with community@VLAN."""
    args = ["--port", str(topo.ODD_PORTS["cisco"]), "--community-env", "C", "--format", "json"]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, *args)
    assert done.returncode == 0, done.stderr
    fdb = {(row["mac"], row["vlan"], row["if_name"]) for row in json.loads(done.stdout)["fdb"]}
    assert fdb == CATALYST_FDB


def test_walk_cisco_v3_reads_each_vlan_through_its_context(lab: topo.SnmpLab) -> None:
    """Over SNMPv3 a Catalyst's VLAN instances are contexts vlan-N (net-snmp's snmpd serving
    vlan-10 and vlan-20 by proxy): each VLAN's table is read through its context. VLAN 1 is
    listed in vtpVlanState but has no context, and snmpd drops requests for it: a warning
    naming that context, exit 3, the other VLANs' tables all the same."""
    args = ["--port", str(topo.CISCO_V3_PORT), *V3, "--priv-proto", "aes", "--priv-key-env", "PK"]
    args += ["--format", "json", "--timeout", "0.5", "--retries", "0"]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, *args)
    assert done.returncode == 3, done.stderr
    walked = json.loads(done.stdout)
    assert walked["device"]["sys_name"] == "lab-catalyst-v3"
    assert {(row["mac"], row["vlan"], row["if_name"]) for row in walked["fdb"]} == CATALYST_FDB
    assert "context vlan-1: no answer" in done.stderr
    assert "no context vlan-1 on the agent" in done.stderr
    assert "vlan-10" not in done.stderr and "vlan-20" not in done.stderr


def test_walk_huawei_with_only_hwdynfdbtable(lab: topo.SnmpLab) -> None:
    """A Huawei agent whose BRIDGE-MIB and Q-BRIDGE-MIB forwarding tables are empty (the
    recorded walk huawei_s5735_l2mam served as it is): the FDB comes from HUAWEI-L2MAM-MIB."""
    port = topo.RECORDED_PORTS["huawei_s5735_l2mam"]
    args = ["--port", str(port), "--community-env", "C", "--format", "json"]
    done = run(lab, "snmp", "walk", topo.ROUTER_IP, *args)
    assert done.returncode == 0, done.stderr
    fdb = {(row["mac"], row["vlan"], row["if_name"]) for row in json.loads(done.stdout)["fdb"]}
    assert fdb == CASES["huawei_s5735_l2mam"]["fdb"]


def walk_cipher_user(
    lab: topo.SnmpLab, user: str, auth: str, priv: str
) -> subprocess.CompletedProcess[str]:
    """`snmp walk --format json` of the cipher agent as `user` with these protocols."""
    v3 = ("--version", "3", "--user", user, "--auth-proto", auth, "--auth-key-env", "AK")
    return run(lab, "snmp", "walk", topo.ROUTER_IP, "--port", str(topo.CIPHERS_PORT), *v3,
               "--priv-proto", priv, "--priv-key-env", "PK", "--format", "json")  # fmt: skip


@pytest.mark.parametrize("user", sorted(topo.CIPHER_USERS))
def test_walk_v3_with_every_privacy_protocol_net_snmp_speaks(lab: topo.SnmpLab, user: str) -> None:
    """DES (older switches), AES-192/256 as net-snmp extends their keys, and as Cisco does
    (`-c`): each against net-snmp's snmpd, with a hash short enough to need the extension."""
    auth, _theirs, ours = topo.CIPHER_USERS[user]
    done = walk_cipher_user(lab, user, auth, ours)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device"]["sys_name"] == "lab-ciphers"


def test_a_cisco_key_extension_against_a_net_snmp_user_says_which_to_try(
    lab: topo.SnmpLab,
) -> None:
    done = walk_cipher_user(lab, "aes256-sha", "sha", "aes256c")
    assert done.returncode == 3
    assert "wrong privacy key or protocol" in done.stderr and "need aes256" in done.stderr
