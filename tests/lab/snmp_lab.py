"""The SNMP lab: a managed switch, a router and a hub, each with a real net-snmp agent.

    sensor ──swp2─┐                                   (ipguard runs here: 198.18.10.2)
    router ──swp1─┤  switch (bridge br0, 198.18.10.3)  snmpd v3 authPriv + bridge_agent.py
    h1, h2 ─swp3,4┤                                   ordinary registered hosts
    moved ──swp5──┤                                   registered to Gi1/0/7: wrong-port
    hub ────swp6──┘  hub bridge with four hosts        unmanaged-switch
    router (198.18.10.1, snmpd v2c) ── vl20 bridge: r20 (unregistered), r21 (registered)

The router's snmpd serves its real kernel ARP table (IP-MIB); the switch's serves the bridge's
real forwarding table through the pass_persist helper. The community and the v3 keys are random
per lab. Namespaces are `ipg-<token>-…` and `destroy()` removes them with every process in them.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import netns

SWITCH_IP, ROUTER_IP, SENSOR_IP = "198.18.10.3", "198.18.10.1", "198.18.10.2"
LAN, ROUTED = "198.18.10.0/24", "198.18.20.0/24"
AGENT = Path(__file__).with_name("bridge_agent.py")
# host namespace suffix -> (switch port it hangs on, IP); hub hosts hang on the hub bridge.
HOSTS = {
    "h1": ("swp3", "198.18.10.11"),
    "h2": ("swp4", "198.18.10.12"),
    "moved": ("swp5", "198.18.10.13"),
}
HUB_HOSTS = {f"hb{n}": f"198.18.10.{20 + n}" for n in range(1, 5)}
ROUTED_HOSTS = {"r20": "198.18.20.10", "r21": "198.18.20.11"}
# Agents with a real device's bad habits (tests/lab/snmp_responder.py), on the router's address.
ODD_PORTS = {"unordered": 1161, "loop": 1162, "endless": 1163, "cisco": 1164, "toobig": 1167}
ODD_EXTRA = {"toobig": ["--fdb", "150"]}  # a forwarding table that takes many requests
# Recorded walks served by the same responder: name -> port (tests/scanners/snmp_walks/NAME).
RECORDED_PORTS = {"huawei_s5735_l2mam": 1166}
WALKS = Path(__file__).resolve().parents[1] / "scanners" / "snmp_walks"
# net-snmp's snmpd with Debian's default view (/etc/snmp/snmpd.conf: systemonly) for the community
SYSTEMONLY_PORT = 1168
# The SNMPv3 Catalyst (snmpd proxying contexts to the "cisco" responder) and its VLAN contexts.
CISCO_V3_PORT, CISCO_V3_CONTEXTS = 1165, (10, 20)
# snmpd with one SNMPv3 user per privacy protocol: user -> (auth, net-snmp's priv name, ipguard's)
CIPHERS_PORT = 1169
CIPHER_USERS = {
    "des-md5": ("MD5", "DES", "des"),
    "des-sha": ("SHA", "DES", "des"),
    "aes192-sha": ("SHA", "AES-192", "aes192"),
    "aes256-sha": ("SHA", "AES-256", "aes256"),
    "aes256-md5": ("MD5", "AES-256", "aes256"),
    "aes192c-sha": ("SHA", "AES-192-C", "aes192c"),
    "aes256c-sha": ("SHA", "AES-256-C", "aes256c"),
    "aes256c-md5": ("MD5", "AES-256-C", "aes256c"),
    "aes256-sha256": ("SHA-256", "AES-256", "aes256"),
}
_HELLO = (
    "import socket,time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "for _ in range(3):\n"
    "    s.sendto(b'hello', ('{gateway}', 9)); time.sleep(0.2)\n"
)


@dataclass
class SnmpLab:
    """A built SNMP lab: namespace names, addresses, MACs and the agents' secrets."""

    token: str
    workdir: Path
    community: str = field(default_factory=lambda: "c-" + secrets.token_hex(8))
    v3_user: str = "ipguard"
    auth_key: str = field(default_factory=lambda: "a-" + secrets.token_hex(8))
    priv_key: str = field(default_factory=lambda: "p-" + secrets.token_hex(8))
    macs: dict[str, str] = field(default_factory=dict)  # host suffix -> MAC
    router_mac: str = ""  # the router's MAC on the switch
    outputs: list[str] = field(default_factory=list)  # what tests printed (for the secrets grep)

    def ns(self, name: str) -> str:
        """The namespace of a lab node, e.g. ns("router")."""
        return f"ipg-{self.token}-{name}"

    def nodes(self) -> list[str]:
        """Every node of the lab."""
        return ["sensor", "switch", "router", "hub", *HOSTS, *HUB_HOSTS, *ROUTED_HOSTS]

    def destroy(self) -> None:
        """Kill every process in the lab's namespaces and delete them."""
        netns.destroy([self.ns(name) for name in self.nodes()])

    def secrets(self) -> list[str]:
        """Every secret the lab's agents hold (for the grep of outputs and artefacts)."""
        return [self.community, self.auth_key, self.priv_key]

    def refresh(self) -> None:
        """Every host talks once, so the router's ARP and the switch's FDB know it."""
        jobs: list[tuple[list[str], str | None]] = []
        for name in [*HOSTS, *HUB_HOSTS, *ROUTED_HOSTS, "sensor"]:
            gateway = "198.18.20.1" if name in ROUTED_HOSTS else ROUTER_IP
            # One UDP datagram to the discard port: the ARP exchange before it is the point.
            argv = [sys.executable, "-c", _HELLO.format(gateway=gateway)]
            jobs.append((netns.exec_argv(self.ns(name), argv), None))
        netns.run_many(jobs, timeout=30)

    def ip_neigh(self) -> set[tuple[str, str]]:
        """(IP, MAC) of the router's kernel neighbour table, entries with a MAC."""
        out = netns.run(self.ns("router"), ["ip", "-4", "-j", "neigh", "show"]).stdout
        return {(e["dst"], e["lladdr"]) for e in json.loads(out) if e.get("lladdr")}

    def bridge_fdb(self) -> set[tuple[str, str]]:
        """(MAC, port name as the switch shows it) of the bridge's learned entries."""
        out = netns.run(self.ns("switch"), ["bridge", "-j", "fdb", "show", "br", "br0"]).stdout
        return {
            (e["mac"], f"Gi1/0/{e['ifname'][3:]}")
            for e in json.loads(out)
            if e.get("state") not in ("permanent", "static") and "self" not in e.get("flags", [])
        }


def _links(lab: SnmpLab) -> list[tuple[str, list[str]]]:
    """(namespace, `ip -batch` lines) building every link; run in order."""
    sw, rtr, hub = lab.ns("switch"), lab.ns("router"), lab.ns("hub")
    switch = ["link add br0 type bridge", "link set br0 up", f"addr add {SWITCH_IP}/24 dev br0"]
    attached = {"router": "swp1", "sensor": "swp2", **{h: p for h, (p, _ip) in HOSTS.items()}}
    for node, port in {**attached, "hub": "swp6"}.items():
        switch += [
            f"link add {port} type veth peer name eth0 netns {lab.ns(node)}",
            f"link set {port} master br0",
            f"link set {port} up",
        ]
    router = ["link add vl20 type bridge", "link set vl20 up", "addr add 198.18.20.1/24 dev vl20"]
    for index, name in enumerate(ROUTED_HOSTS):
        router += [
            f"link add r{index} type veth peer name eth0 netns {lab.ns(name)}",
            f"link set r{index} master vl20",
            f"link set r{index} up",
        ]
    hub_lines = ["link add hbr type bridge", "link set hbr up", "link set eth0 master hbr"]
    for index, name in enumerate(HUB_HOSTS):
        hub_lines += [
            f"link add p{index} type veth peer name eth0 netns {lab.ns(name)}",
            f"link set p{index} master hbr",
            f"link set p{index} up",
        ]
    return [(sw, switch), (rtr, router), (hub, hub_lines)]


def _addresses(lab: SnmpLab) -> list[tuple[str, list[str]]]:
    plan = {
        "router": f"{ROUTER_IP}/24",
        "sensor": f"{SENSOR_IP}/24",
        **{h: f"{ip}/24" for h, (_port, ip) in HOSTS.items()},
        **{h: f"{ip}/24" for h, ip in HUB_HOSTS.items()},
        **{h: f"{ip}/24" for h, ip in ROUTED_HOSTS.items()},
    }
    batches = []
    for node in lab.nodes():
        lines = ["link set lo up", "link set eth0 up"]
        if node in plan:
            lines.append(f"addr add {plan[node]} dev eth0")
        if node in ROUTED_HOSTS:
            lines.append("route add default via 198.18.20.1")
        elif node in plan and node != "router":
            lines.append(f"route add {ROUTED} via {ROUTER_IP}")
        if node == "switch":
            lines = ["link set lo up"]
        batches.append((lab.ns(node), lines))
    return batches


def _snmpd(lab: SnmpLab, node: str, config: str, port: int = 161) -> None:
    """Start net-snmp's snmpd in a node's namespace with `config`; wait for its UDP socket."""
    home = lab.workdir / f"{node}-{port}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "snmpd.conf").write_text(config)
    argv = [
        "env",
        f"SNMP_PERSISTENT_DIR={home}",
        "MIBS=",
        shutil.which("snmpd") or "/usr/sbin/snmpd",
        "-f",
        "-C",
        "-c",
        str(home / "snmpd.conf"),
        "-Lf",
        str(home / "snmpd.log"),
        "-p",
        str(home / "snmpd.pid"),
    ]
    subprocess.Popen(
        netns.exec_argv(lab.ns(node), argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listening = netns.run(lab.ns(node), ["ss", "-Hlun", f"sport = :{port}"], check=False)
        if listening.stdout.strip():
            return
        time.sleep(0.1)
    log = (home / "snmpd.log").read_text(errors="replace") if (home / "snmpd.log").exists() else ""
    raise netns.LabError(f"snmpd on {node} did not start: {log[-500:]}")


def start_agents(lab: SnmpLab) -> None:
    """The router's agent (v2c, kernel ARP) and the switch's (v3 authPriv, bridge FDB)."""
    _snmpd(
        lab,
        "router",
        f"agentAddress udp:{ROUTER_IP}:161\n"
        f"rocommunity {lab.community} {LAN}\n"
        "sysName lab-router\n",
    )
    helper = f"{sys.executable} {AGENT} br0"
    _snmpd(
        lab,
        "switch",
        f"agentAddress udp:{SWITCH_IP}:161\n"
        f"createUser {lab.v3_user} SHA {lab.auth_key} AES {lab.priv_key}\n"
        f"rouser {lab.v3_user} priv\n"
        "sysName lab-switch\n"
        f"pass_persist .1.3.6.1.2.1.17 {helper} bridge\n"
        f"pass_persist .1.3.6.1.2.1.31.1.1.1.1 {helper} ifname\n",
    )


def _start_systemonly(lab: SnmpLab) -> None:
    """The router's kernel tables behind Debian's default view: the system group only."""
    _snmpd(
        lab,
        "router",
        f"agentAddress udp:{ROUTER_IP}:{SYSTEMONLY_PORT}\n"
        "view systemonly included .1.3.6.1.2.1.1\n"
        "view systemonly included .1.3.6.1.2.1.25.1\n"
        f"rocommunity {lab.community} default -V systemonly\n",
        port=SYSTEMONLY_PORT,
    )


def _start_cisco_v3(lab: SnmpLab) -> None:
    """A Catalyst read over SNMPv3: net-snmp's snmpd (authPriv, one VACM entry for every
    context) serving context vlan-10 and vlan-20 by proxying each to the v2c Catalyst responder's
    community@VLAN instance. vtpVlanState also lists VLAN 1, for which no context exists: the
    agent answers that context's requests with a report of snmpUnknownContexts."""
    catalyst = f"{ROUTER_IP}:{ODD_PORTS['cisco']}"
    lines = [
        f"agentAddress udp:{ROUTER_IP}:{CISCO_V3_PORT}",
        f"createUser {lab.v3_user} SHA {lab.auth_key} AES {lab.priv_key}",
        f"group catalyst usm {lab.v3_user}",
        "view everything included .1",
        'access catalyst "" usm priv prefix everything none none',
        "sysName lab-catalyst-v3",
        "sysObjectID .1.3.6.1.4.1.9.1.716",
        f"proxy -v 2c -c {lab.community} {catalyst} .1.3.6.1.4.1.9.9.46",
        f"proxy -v 2c -c {lab.community} {catalyst} .1.3.6.1.2.1.31.1.1.1.1",
    ]
    lines += [
        f"proxy -Cn vlan-{vlan} -v 2c -c {lab.community}@{vlan} {catalyst} .1.3.6.1.2.1.17"
        for vlan in CISCO_V3_CONTEXTS
    ]
    _snmpd(lab, "router", "\n".join(lines) + "\n", port=CISCO_V3_PORT)


def _start_ciphers(lab: SnmpLab) -> None:
    """The router's system group for one SNMPv3 authPriv user per privacy protocol."""
    lines = [f"agentAddress udp:{ROUTER_IP}:{CIPHERS_PORT}", "sysName lab-ciphers"]
    for user, (auth, priv, _ours) in CIPHER_USERS.items():
        lines += [
            f"createUser {user} {auth} {lab.auth_key} {priv} {lab.priv_key}",
            f"rouser {user} priv",
        ]
    _snmpd(lab, "router", "\n".join(lines) + "\n", port=CIPHERS_PORT)


def _start_odd_agents(lab: SnmpLab) -> None:
    agents = [
        (["--mode", mode, *ODD_EXTRA.get(mode, [])], port) for mode, port in ODD_PORTS.items()
    ]
    agents += [(["--snmprec", str(WALKS / f"{n}.snmprec")], p) for n, p in RECORDED_PORTS.items()]
    for how, port in agents:
        argv = [sys.executable, "-m", "tests.lab.snmp_responder", "--listen", f"{ROUTER_IP}:{port}"]
        argv += ["--community", lab.community, *how]
        subprocess.Popen(
            netns.exec_argv(lab.ns("router"), argv),
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = netns.run(lab.ns("router"), ["ss", "-Hlun"], check=False).stdout
        if all(f":{port} " in out for _how, port in agents):
            return
        time.sleep(0.1)
    raise netns.LabError("the odd SNMP agents did not start")


@contextlib.contextmanager
def snmp_lab(workdir: Path) -> Iterator[SnmpLab]:
    """Build the lab, start its agents, let every host talk once; always torn down."""
    lab = SnmpLab(token="s" + secrets.token_hex(3), workdir=workdir)
    try:
        netns.batch_netns([f"netns add {lab.ns(node)}" for node in lab.nodes()])
        for ns, lines in _links(lab):
            netns.run_many([(netns.ip_batch_argv(ns), "\n".join(lines) + "\n")])
        netns.run_many(
            [(netns.ip_batch_argv(ns), "\n".join(lines) + "\n") for ns, lines in _addresses(lab)]
        )
        netns.run(lab.ns("router"), ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for name in [*HOSTS, *HUB_HOSTS, *ROUTED_HOSTS, "sensor"]:
            out = netns.run(lab.ns(name), ["cat", "/sys/class/net/eth0/address"]).stdout
            lab.macs[name] = out.strip()
        out = netns.run(lab.ns("router"), ["cat", "/sys/class/net/eth0/address"]).stdout
        lab.router_mac = out.strip()
        start_agents(lab)
        _start_odd_agents(lab)
        _start_cisco_v3(lab)
        _start_systemonly(lab)
        _start_ciphers(lab)
        lab.refresh()
        yield lab
    finally:
        lab.destroy()
