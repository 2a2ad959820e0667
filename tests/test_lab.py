"""Acceptance tests of the lab network: every planted behaviour is really there, seen with plain
tools from inside the scanner namespace, and building/tearing down leaves the machine as it was."""

from __future__ import annotations

import csv
import dataclasses
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netaddr
import pytest

from tests.lab import daemons, netns
from tests.lab.builder import Lab, destroy, workdir_for
from tests.lab.files import LEDGER_COLUMNS, write_config, write_ledger_csv
from tests.lab.fixtures import LabFactory, lab_unavailable, requires_lab
from tests.lab.netns import LabError, inside
from tests.lab.scenario import FINDING_KINDS, LAB_NETWORK, ROLES, Scenario, Service
from tests.lab.scenarios import demo, small
from tests.lab.ssdp import GROUP

REPO = Path(__file__).resolve().parents[1]
needs_lab = requires_lab("nmap", "arp-scan", "curl")
ARP_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\t([0-9a-f:]{17})\t", re.M)


def arp_scan(lab: Lab, *targets: str) -> set[tuple[str, str]]:
    """(ip, mac) of every ARP reply the scanner gets, duplicates included."""
    out = lab.run(
        "scanner", ["arp-scan", "-I", "eth0", "--retry=3", *(targets or (lab.subnet,))]
    ).stdout
    return set(ARP_LINE.findall(out))


def curl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run("scanner", ["curl", "-sS", "-m", "5", *args], check=False)


# -- the scenario itself (no root needed) ----------------------------------------------------------


def test_demo_expects_every_finding_kind_a_single_scan_can_raise() -> None:
    kinds = {kind for kind, *_ in demo().expected_findings()}
    # mac-moved needs a second scan after move_host; out-of-pool, stale-registration and
    # guest-expired need pools, time or guests; the SNMP and IPv6 kinds have labs of their own.
    assert kinds == FINDING_KINDS - {
        "mac-moved",
        "out-of-pool",
        "stale-registration",
        "guest-expired",
        "wrong-port",
        "unmanaged-switch",
        "rogue-ra",
    }


def test_kind_and_role_names_are_ipguards() -> None:
    from ipguard.model import FindingKind, Role

    assert {k.value for k in FindingKind} == FINDING_KINDS
    assert {r.value for r in Role} == set(ROLES)


def test_unexpected_service_annotations_match_the_ledger() -> None:
    for host in demo().hosts:
        if host.registration is None:
            continue
        allowed = {*host.registration.allowed_services, "tcp/22"}
        # A port that relays is reported once, as open-proxy, not also as unexpected-service.
        relaying = {p for kind, p in host.expect if kind == "open-proxy"}
        unexpected = {
            p for p in host.open_ports() if f"tcp/{p}" not in allowed and p not in relaying
        }
        assert unexpected == {p for kind, p in host.expect if kind == "unexpected-service"}, (
            host.name
        )


def test_addresses_names_and_vendor() -> None:
    scenario = demo()
    lab = Lab(scenario, "0a1b2c")  # not built: only to see the interface names it would use
    pairs = re.findall(r"link add (\S+) .*peer name (\S+)", lab._switch_batch())
    assert pairs and max(len(name) for pair in pairs for name in pair) <= 15
    for host in scenario.hosts:
        assert ipaddress.ip_address(host.ip) in LAB_NETWORK
        if host.registration and host.dns_name == host.registration.hostname:
            assert host.dns_name == f"{host.registration.department}-{host.registration.asset_tag}"
    ap = scenario.host("tplink-ap")
    assert "TP-LINK" in netaddr.EUI(ap.mac).oui.registration().org


def test_ledger_and_config_files(tmp_path: Path) -> None:
    scenario = demo()
    with write_ledger_csv(scenario, tmp_path / "ledger.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == LEDGER_COLUMNS
    by_ip = {row[0]: dict(zip(LEDGER_COLUMNS, row, strict=True)) for row in rows[1:]}
    # The thief squats on the address of a registered device that is switched off.
    assert by_ip["198.18.0.45"]["hostname"] == "math-pc09"
    assert by_ip["198.18.0.50"]["status"] == "suspended"
    assert by_ip["198.18.0.51"]["isolated"] == "true"
    assert "dhcp-server" in by_ip["198.18.0.3"]["roles"].split(";")
    assert "198.18.0.90" not in by_ip and "198.18.0.60" not in by_ip
    config = tomllib.loads(write_config(scenario, tmp_path / "ipguard.toml").read_text())
    assert config["scan"]["subnets"] == ["198.18.0.0/24", "198.19.0.0/24"]
    assert config["names"]["dns_servers"] == ["198.18.0.3"]
    assert config["policy"]["hostname_rule"] == "^{department}-{asset_tag}$"
    # The demo's rate is its own (virtual links: see DEMO_RATE); other labs keep the default.
    assert config["scan"]["rate"] == 20_000
    small_config = write_config(small(), tmp_path / "small.toml").read_text()
    assert tomllib.loads(small_config)["scan"]["rate"] == 2000


def test_lab_tests_skip_with_a_reason_without_root_or_tools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in str(lab_unavailable())
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        shutil, "which", lambda tool: None if tool == "tinyproxy" else f"/usr/bin/{tool}"
    )
    assert "needs tinyproxy" in str(lab_unavailable("nmap"))


# -- the demo lab, seen from the scanner -----------------------------------------------------------


@needs_lab
def test_arp_scan_sees_every_lan_host_and_both_duplicate_macs(demo_lab: Lab) -> None:
    seen = arp_scan(demo_lab)
    expected = {(h.ip, h.mac) for h in demo_lab.scenario.hosts if h.segment == "lan"}
    assert seen == expected
    assert {mac for ip, mac in seen if ip == "198.18.0.40"} == {
        "02:18:00:00:00:40",
        "02:66:00:00:00:40",
    }


@needs_lab
def test_open_ports_are_the_planted_services(demo_lab: Lab) -> None:
    hosts = [h for h in demo_lab.scenario.hosts if h.segment in ("lan", "routed")]
    ports = "1-1024,1080,3128,8080,8118"  # the lab config's scan ports
    syn_scan = ["nmap", "-n", "-Pn", "-sS", "--max-retries", "1", "--open", "-oG", "-", "-p", ports]
    out = demo_lab.run("scanner", [*syn_scan, *sorted({h.ip for h in hosts})]).stdout
    seen = {
        m[0]: {int(p) for p in re.findall(r"(\d+)/open/tcp", m[1])}
        for m in re.findall(r"Host: (\S+) .*Ports: (.*)", out)
    }
    expected = {h.ip: h.open_ports() for h in hosts if h.open_ports()}
    assert seen == expected


@needs_lab
def test_tinyproxy_relays_get_and_connect(demo_lab: Lab) -> None:
    proxy = f"http://{demo_lab.host('physics-pc06').ip}:3128"
    web = demo_lab.host("office-web01").ip
    assert "School of Science" in curl(demo_lab, "-x", proxy, f"http://{web}/").stdout
    telnet = demo_lab.host("math-pc05").ip
    relayed = demo_lab.run(
        "scanner",
        ["curl", "-sS", "-m", "3", "-p", "-x", proxy, f"telnet://{telnet}:23"],
        check=False,
        input="",
    )
    assert "math-pc05 login:" in relayed.stdout


@needs_lab
def test_socks_proxy_relays_socks4_and_socks5_inside_the_lab_only(demo_lab: Lab) -> None:
    socks = f"{demo_lab.host('math-pc08').ip}:1080"
    chem = demo_lab.host("chem-srv01").ip
    assert "Chemistry" in curl(demo_lab, "--socks5", socks, f"http://{chem}/").stdout
    assert "Chemistry" in curl(demo_lab, "--socks4", socks, f"http://{chem}/").stdout
    # The proxy refuses targets outside 198.18.0.0/15 itself (here its own loopback): no connection.
    refused = curl(demo_lab, "--socks5", socks, "http://127.0.0.1/")
    assert refused.returncode == 97 and "(2)" in refused.stderr


@needs_lab
def test_dhcp_discover_sees_authorised_and_rogue_offers(demo_lab: Lab) -> None:
    script = ["--script", "broadcast-dhcp-discover"]
    # 6 s: both dnsmasq servers ping an address before offering it, about 3 s.
    args = ["--script-args", "broadcast-dhcp-discover.timeout=6"]
    out = demo_lab.run("scanner", ["nmap", "-e", "eth0", *script, *args]).stdout
    servers = set(re.findall(r"Server Identifier: (\S+)", out))
    assert servers == {demo_lab.host("office-srv01").ip, demo_lab.host("physics-pc07").ip}


@needs_lab
def test_reverse_dns_returns_the_planted_names(demo_lab: Lab) -> None:
    list_scan = ["nmap", "-sL", "--dns-servers", str(demo_lab.dns_server)]
    out = demo_lab.run("scanner", [*list_scan, demo_lab.subnet, *demo_lab.routed_subnets]).stdout
    names = {ip: name for name, ip in re.findall(r"Nmap scan report for (\S+) \((\S+)\)", out)}
    assert names == {ip: name for name, ip in demo_lab.scenario.dns_records()}
    assert names["198.18.0.37"] == "zhangwei-laptop"  # breaks ^{department}-{asset_tag}$


@needs_lab
def test_gateway_routes_to_the_routed_subnet(demo_lab: Lab) -> None:
    out = demo_lab.run("scanner", ["nmap", "-sn", "-n", "-PE", "198.19.0.0/27"]).stdout
    up = set(re.findall(r"Nmap scan report for (\S+)", out))
    assert up == {"198.19.0.1", "198.19.0.10", "198.19.0.11", "198.19.0.20"}


@needs_lab
def test_nat_router_hides_the_host_behind_it(demo_lab: Lab) -> None:
    with inside(demo_lab.scanner_ns):
        listener = socket.create_server((demo_lab.scanner_ip, 0))
    peers: list[str] = []
    with listener:
        listener.settimeout(5)
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, peer = listener.accept()
            peers.append(peer[0])
            conn.close()

        accepting = threading.Thread(target=accept)
        accepting.start()
        demo_lab.run(
            "hidden-pc",
            ["curl", "-sS", "-m", "3", f"http://{demo_lab.scanner_ip}:{port}/"],
            check=False,
        )
        accepting.join(timeout=6)
    assert peers == [demo_lab.host("rogue-nat").ip]
    # From the LAN the hidden segment is unreachable (no route) and its MAC never answers ARP.
    assert curl(demo_lab, f"http://{demo_lab.host('hidden-pc').ip}:22/").returncode == 7


@needs_lab
def test_ssdp_responder_answers_m_search(demo_lab: Lab) -> None:
    ap = demo_lab.host("tplink-ap")
    search = (
        f'M-SEARCH * HTTP/1.1\r\nHOST: {GROUP}:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
        "ST: urn:schemas-upnp-org:device:WLANAccessPointDevice:1\r\n\r\n"
    )
    with inside(demo_lab.scanner_ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(search.encode(), (GROUP, 1900))
        reply, (sender, _port) = sock.recvfrom(2048)
    headers = dict(line.split(": ", 1) for line in reply.decode().split("\r\n")[1:] if ": " in line)
    assert sender == ap.ip
    assert headers["ST"] == "urn:schemas-upnp-org:device:WLANAccessPointDevice:1"
    assert "UPnP/1.0" in headers["SERVER"]
    description = curl(demo_lab, headers["LOCATION"]).stdout
    assert "InternetGatewayDevice:1" in description and "TL-WR840N" in description
    assert "<title>TL-WR840N</title>" in curl(demo_lab, f"http://{ap.ip}/").stdout


@needs_lab
def test_inside_moves_the_thread_sockets_and_subprocesses(demo_lab: Lab) -> None:
    def current() -> tuple[int, int]:
        return netns.identity("/proc/thread-self/ns/net")

    root = current()
    seen: dict[str, tuple[int, int]] = {}
    go = threading.Event()

    def record(key: str) -> None:
        go.wait(5)
        seen[key] = current()

    earlier = threading.Thread(target=record, args=("earlier",))
    earlier.start()
    with inside(demo_lab.scanner_ns):
        assert current() == netns.identity(netns.NETNS_DIR / demo_lab.scanner_ns)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((demo_lab.scanner_ip, 0))  # this address exists only in the lab
        addr = subprocess.run(
            ["ip", "-br", "-4", "addr", "show", "eth0"], capture_output=True, text=True
        ).stdout
        assert demo_lab.scanner_ip in addr
        later = threading.Thread(target=record, args=("later",))  # Linux: new threads inherit it
        later.start()
        go.set()
        earlier.join()
        later.join()
    assert current() == root
    assert seen == {"earlier": root, "later": netns.identity(netns.NETNS_DIR / demo_lab.scanner_ns)}
    with sock:  # still a lab socket after the block
        sock.settimeout(3)
        sock.connect((demo_lab.host("office-web01").ip, 22))
        assert sock.recv(64).startswith(b"SSH-2.0-")
    with pytest.raises(ZeroDivisionError), inside(demo_lab.scanner_ns):
        1 / 0  # noqa: B018
    assert current() == root


# -- changing a lab --------------------------------------------------------------------------------


@needs_lab
def test_move_stop_and_remove_between_scans(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = lab_factory(small())
    targets = ("198.18.0.20", "198.18.0.21", "198.18.0.88", "198.18.0.90")
    ledger_before = lab.write_ledger_csv(tmp_path / "before.csv").read_text()
    pc01 = lab.host("math-pc01")
    lab.move_host("math-pc01", "198.18.0.88")
    lab.stop_service("math-pc02", 80)
    lab.remove_host("visitor")
    assert arp_scan(lab, *targets) == {
        ("198.18.0.88", pc01.mac),
        ("198.18.0.21", lab.host("math-pc02").mac),
    }
    assert lab.host("math-pc01").ip == "198.18.0.88"
    assert curl(lab, "http://198.18.0.21/").returncode == 7  # connection refused
    assert lab.expected_findings() == {("mac-moved", "198.18.0.88", pc01.mac, None)}
    assert lab.write_ledger_csv(tmp_path / "after.csv").read_text() == ledger_before
    with pytest.raises(KeyError):
        lab.host("visitor")


# -- safety: nothing leaks, nothing is left --------------------------------------------------------


def _root_snapshot() -> dict[str, object]:
    """The root namespace's links, addresses, routes and nftables rules (lifetimes dropped)."""
    snap: dict[str, object] = {}
    for what in ("link", "addr", "route"):
        data = json.loads(
            subprocess.run(["ip", "-j", what], capture_output=True, text=True, check=True).stdout
        )
        for iface in data:
            for addr in iface.get("addr_info", []):
                addr.pop("valid_life_time", None)
                addr.pop("preferred_life_time", None)
        snap[what] = data
    snap["nft"] = subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, check=True
    ).stdout
    return snap


def _lab_leftovers(run_id: str) -> list[str]:
    left = [ns for ns in netns.existing() if ns.startswith(f"{netns.PREFIX}{run_id}-")]
    return left + ([str(workdir_for(run_id))] if workdir_for(run_id).exists() else [])


@needs_lab
def test_root_namespace_is_untouched_and_nothing_is_left() -> None:
    before = _root_snapshot()
    run_id = secrets.token_hex(3)
    with Lab.build(demo(), run_id=run_id) as lab:
        assert len(arp_scan(lab, "198.18.0.1", "198.18.0.90")) == 2
    assert _lab_leftovers(run_id) == []
    assert _root_snapshot() == before


@needs_lab
def test_two_labs_coexist_without_crosstalk(lab_factory: LabFactory) -> None:
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: lab_factory(small()), range(2))
    assert a.id != b.id and not set(a.namespaces) & set(b.namespaces)
    b.remove_host("visitor")
    targets = ("198.18.0.20", "198.18.0.21", "198.18.0.90")
    assert (
        len(arp_scan(a, *targets)) == 3
    )  # one reply each: B's identical hosts are not on A's wire
    assert len(arp_scan(b, *targets)) == 2


def _broken(scenario: Scenario) -> Scenario:
    """The same scenario, but one host runs two listeners on one port: the second cannot start."""
    host = scenario.hosts[0]
    clash = dataclasses.replace(host, services=(*host.services, Service(22, "banner")))
    return scenario.with_host(clash)


@needs_lab
def test_failed_build_tears_down_what_it_made() -> None:
    run_id = secrets.token_hex(3)
    with pytest.raises(LabError, match="exited"):
        Lab.build(_broken(small()), run_id=run_id).teardown()  # teardown: only if it did not fail
    assert _lab_leftovers(run_id) == []


@needs_lab
def test_interrupted_build_tears_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(daemons, "wait_ready", interrupt)
    run_id = secrets.token_hex(3)
    with pytest.raises(KeyboardInterrupt):
        Lab.build(demo(), run_id=run_id).teardown()  # teardown: only if it was not interrupted
    assert _lab_leftovers(run_id) == []


def _lab_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lab", *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Output of ``proc`` up to and including ``marker`` (or all there is after ``timeout`` s)."""
    assert proc.stdout is not None
    fd, output = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in output and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        chunk = os.read(fd, 4096) if ready else b""
        if ready and not chunk:
            break  # the process closed its output
        output += chunk
    return output.decode()


def _stop_cli(proc: subprocess.Popen[str], state: Path) -> None:
    """If a test failed half-way: stop the CLI gracefully, and remove the lab it recorded."""
    if proc.poll() is None:
        proc.terminate()  # SIGTERM tears the lab down
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if state.exists():
        recorded = json.loads(state.read_text())
        destroy(recorded["namespaces"], recorded["workdir"])


@needs_lab
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_foreground_cli_tears_down_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    state = tmp_path / "lab.json"
    proc = _lab_cli("up", "--scenario", "small", "--state", str(state), "--foreground")
    try:
        output = _read_until(proc, "lab is up;", timeout=30)
        assert "lab is up;" in output, output
        run_id = json.loads(state.read_text())["id"]
        assert _lab_leftovers(run_id)
        proc.send_signal(sig)
        proc.wait(timeout=20)
        rest = _read_until(proc, "torn down", timeout=1)
    finally:
        _stop_cli(proc, state)
    assert proc.returncode == 130 and f"lab {run_id} torn down" in rest
    assert _lab_leftovers(run_id) == [] and not state.exists()


@needs_lab
def test_cli_up_ledger_config_down(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    up = _lab_cli("up", "--scenario", "small", "--state", str(state))
    assert up.communicate(timeout=60)[0] and up.returncode == 0
    run_id = json.loads(state.read_text())["id"]
    try:
        assert _lab_leftovers(run_id)  # `up` returned and the lab stayed up
        for command, name in (("ledger", "ledger.csv"), ("config", "ipguard.toml")):
            proc = _lab_cli(command, str(tmp_path / name), "--state", str(state))
            assert proc.communicate(timeout=30) and proc.returncode == 0
        assert (tmp_path / "ledger.csv").read_text().startswith(",".join(LEDGER_COLUMNS))
        assert tomllib.loads((tmp_path / "ipguard.toml").read_text())["scan"]["subnets"] == [
            "198.18.0.0/24"
        ]
        again = _lab_cli("up", "--scenario", "small", "--state", str(state))
        assert "already up" in again.communicate(timeout=30)[0] and again.returncode == 2
    finally:
        down = _lab_cli("down", "--state", str(state))
        down.communicate(timeout=60)
    assert down.returncode == 0 and _lab_leftovers(run_id) == [] and not state.exists()


@needs_lab
def test_down_removes_the_leftovers_of_a_killed_cli(tmp_path: Path) -> None:
    state = tmp_path / "lab.json"
    proc = _lab_cli("up", "--scenario", "small", "--state", str(state), "--foreground")
    try:
        assert "lab is up;" in _read_until(proc, "lab is up;", timeout=30)
        run_id = json.loads(state.read_text())["id"]
        proc.kill()  # SIGKILL: no chance to clean up, daemons keep running in the namespaces
        proc.wait(timeout=10)
        assert _lab_leftovers(run_id)
        down = _lab_cli("down", "--id", run_id)
        assert f"lab {run_id} torn down" in down.communicate(timeout=60)[0]
    finally:
        _stop_cli(proc, state)
    assert _lab_leftovers(run_id) == []
