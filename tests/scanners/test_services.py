"""Service scan with real nmap in the demo lab: the planted listeners, their ports and products."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipguard.errors import InvalidValue, ScopeError
from ipguard.model import ServiceObservation
from ipguard.scanners import nmapfacts
from ipguard.scanners import services as services_module
from ipguard.scanners.scope import Scope
from ipguard.scanners.servicephase import late_candidates
from ipguard.scanners.services import PortSpec, ServiceScan
from tests.lab.builder import Lab
from tests.lab.fixtures import requires_lab
from tests.lab.netns import inside

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab

Scanned = tuple[list[ServiceObservation], ServiceScan, list[tuple[int, int]]]


@pytest.fixture(scope="module")
def scanned(demo_lab: Lab) -> Scanned:
    """One scan of every LAN and routed host, with the scenario's own port list.

    Version intensity 0 and a generous per-port budget: this checks what nmap can name (tinyproxy
    needs about 20 s of probes); a scan's own budget is shorter (scanners.services.VERSION_BUDGET).
    The LAN and the routed hosts are two batches, scanned side by side. The version probes then
    run one nmap per open port, all at once (`workers` above the 18 open ports): a port that
    accepts and stays silent holds its own process for most of the budget, so the scan waits
    for its slowest port (about 35 s) rather than for the sum of them over two processes (100 s).
    """
    calls: list[tuple[int, int]] = []
    scope = Scope([demo_lab.subnet, *demo_lab.routed_subnets])
    lan = [h.ip for h in demo_lab.scenario.hosts if h.segment == "lan"]
    routed = [h.ip for h in demo_lab.scenario.hosts if h.segment == "routed"]
    scan = ServiceScan(
        scope,
        ports=demo_lab.scenario.ports,
        host_timeout=90,
        batch=len(set(lan)),
        workers=32,
        intensity=0,
        version_budget=60,
        progress=lambda done, total: calls.append((done, total)),
    )
    targets = lan + routed
    with inside(demo_lab.scanner_ns):
        found = scan.scan(targets)
    return found, scan, calls


@requires_lab("nmap")
def test_finds_exactly_the_planted_listeners(scanned: Scanned, demo_lab: Lab) -> None:
    found, scan, _ = scanned
    assert scan.timed_out == []
    seen: dict[str, set[int]] = {}
    for item in found:
        assert item.proto == "tcp"
        seen.setdefault(item.ip, set()).add(item.port)
    for host in demo_lab.scenario.hosts:
        if host.segment in ("lan", "routed"):
            assert seen.get(host.ip, set()) == host.open_ports(), host.name


@requires_lab("nmap")
def test_names_the_software_behind_the_ports(scanned: Scanned, demo_lab: Lab) -> None:
    found, _, _ = scanned
    by_port = {(item.ip, item.port): item for item in found}
    dns = by_port[(demo_lab.host("office-srv01").ip, 53)]
    assert (dns.service, dns.product, dns.version) == ("domain", "dnsmasq", "2.90")
    ssh = by_port[(demo_lab.host("math-pc01").ip, 22)]
    assert (ssh.service, ssh.product) == ("ssh", "OpenSSH")
    assert ssh.version.startswith("9.2p1")
    # nmap has no signature for tinyproxy 1.11; its reply's Server header names it.
    proxy = by_port[(demo_lab.host("physics-pc06").ip, 3128)]
    assert (proxy.product, proxy.version) == ("tinyproxy", "1.11.1")
    assert "tinyproxy" in proxy.banner
    socks = by_port[(demo_lab.host("math-pc08").ip, 1080)]
    assert socks.service == "socks5"
    assert "No authentication" in socks.banner
    telnet = by_port[(demo_lab.host("math-pc05").ip, 23)]
    assert "math-pc05 login:" in telnet.banner
    routed = by_port[(demo_lab.host("chem-srv01").ip, 80)]
    assert routed.service == "http"


@requires_lab("nmap")
def test_reports_progress_per_batch(scanned: Scanned, demo_lab: Lab) -> None:
    _, _, calls = scanned
    lan = len({h.ip for h in demo_lab.scenario.hosts if h.segment == "lan"})
    total = lan + len([h for h in demo_lab.scenario.hosts if h.segment == "routed"])
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert sorted(calls[1:]) in ([(3, total), (total, total)], [(lan, total), (total, total)])


@requires_lab("nmap")
def test_scans_udp_ports_when_asked(demo_lab: Lab) -> None:
    server = demo_lab.host("office-srv01").ip
    scan = ServiceScan(
        Scope([demo_lab.subnet]),
        ports="udp/53;udp/67",
        host_timeout=30,
        intensity=0,
        version_budget=60,
    )
    assert "-sU" in scan.arguments(1) and "U:53,67" in scan.arguments(1)
    with inside(demo_lab.scanner_ns):
        found = scan.scan([server])
    dns = [item for item in found if (item.proto, item.port) == ("udp", 53)]
    assert dns and dns[0].product == "dnsmasq"


def test_refuses_targets_outside_the_scope_before_running_nmap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_nmap() -> None:
        raise AssertionError("nmap must not start for an out-of-scope target")

    monkeypatch.setattr(services_module, "_port_scanner", no_nmap)
    scan = ServiceScan(Scope(["198.18.0.0/24"]), ports="tcp/22", host_timeout=5)
    with pytest.raises(ScopeError, match=r"198\.19\.50\.10 is outside"):
        scan.scan(["198.18.0.20", "198.19.50.10"])


@pytest.mark.parametrize(
    ("spec", "nmap"),
    [
        ("tcp/1-1024;tcp/3128;udp/161", "T:1-1024,3128,U:161"),
        ("tcp/22", "T:22"),
        ("udp/53;udp/67-68", "U:53,67-68"),
        ("tcp/1-1024;tcp/1080;tcp/3128;tcp/8080;tcp/8118", "T:1-1024,1080,3128,8080,8118"),
        ("tcp/80;tcp/79-81;TCP/1000-2000;tcp/2001", "T:79-81,1000-2001"),
    ],
)
def test_port_spec_becomes_nmaps(spec: str, nmap: str) -> None:
    assert PortSpec.parse(spec).nmap() == nmap


@pytest.mark.parametrize("spec", ["", "tcp/0", "tcp/70000", "sctp/80", "tcp/90-80", "22", "tcp/a"])
def test_bad_port_specs_are_refused(spec: str) -> None:
    with pytest.raises(InvalidValue):
        ServiceScan(Scope(["198.18.0.0/24"]), ports=spec, host_timeout=5)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or not Path("/usr/bin/nmap").exists(),
    reason="needs root, unshare and nmap at /usr/bin/nmap (hidden in a private mount namespace)",
)
def test_missing_nmap_is_tool_missing() -> None:
    """nmap hidden in a private mount namespace of a child process: ToolMissing with the fix."""
    code = (
        "import json\n"
        "from ipguard.scanners.scope import Scope\n"
        "from ipguard.scanners.services import ServiceScan\n"
        "try:\n"
        "    ServiceScan(Scope(['198.18.0.0/24']), ports='tcp/22', host_timeout=5)"
        ".scan(['198.18.0.20'])\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))\n"
    )
    script = f'mount --bind /dev/null /usr/bin/nmap && exec "{sys.executable}" -c "$0"'
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    ).stdout
    assert json.loads(out) == ["ToolMissing", "nmap is not installed: apt-get install nmap"]


def test_fast_pass_and_version_probes_share_the_rate_and_the_budget() -> None:
    scan = ServiceScan(
        Scope(["198.18.0.0/24"]), ports="tcp/1-1024", host_timeout=60, rate=1000, version_budget=3
    )
    fast = scan.arguments(30, versions=False, processes=4)
    assert "-sV" not in fast and "-p T:1-1024" in fast
    assert "--min-rate 125" in fast and "--max-rate 250" in fast  # a quarter of 1,000 each
    assert "--host-timeout 60000ms" in fast
    one = scan.arguments(1, versions=True, processes=2, port=("tcp", 8080))
    assert "-sV" in one and "-p T:8080" in one and "--max-rate 500" in one
    assert "--host-timeout 3000ms" in one


def test_a_service_that_answered_http_is_named_http_whatever_its_port() -> None:
    """nmap names an unrecognised service by its number (conf 3): tinyproxy on tcp/81 is
    `hosts2-ns` however HTTP its reply; a name the table gave stays when nothing answered."""
    xml = (
        '<nmaprun><host><address addr="198.18.0.13" addrtype="ipv4"/><ports>'
        '<port protocol="tcp" portid="81"><service name="hosts2-ns" method="table" conf="3" '
        'servicefp="SF-Port81-TCP:V=7.93%I=0%r(GetRequest,2A,&quot;HTTP/1\\.0\\x20400\\x20Bad'
        '\\x20Request\\r\\nServer:\\x20tinyproxy/1\\.11\\.1\\r\\n\\r\\n&quot;);"/></port>'
        "</ports></host></nmaprun>"
    )
    fingerprints, _ = nmapfacts.xml_facts(xml)
    table = {"state": "open", "name": "hosts2-ns", "conf": "3"}
    host = {"tcp": {81: table, 82: dict(table, name="xfer")}}
    seen = nmapfacts.port_observations("198.18.0.13", host, fingerprints)
    assert [(s.port, s.service, s.product, s.version) for s in seen] == [
        (81, "http", "tinyproxy", "1.11.1"),
        (82, "xfer", "", ""),
    ]


def test_late_proxy_candidates_are_what_versions_named_a_proxy_or_left_unnamed() -> None:
    """After the version probes, the proxy phase asks the ports they named HTTP, proxy or SOCKS,
    and those whose software nobody named (the budget ran out, now or in the baseline kept)."""
    named = [
        ServiceObservation("198.18.0.13", "tcp", 81, "hosts2-ns"),  # the budget ran out
        ServiceObservation("198.18.0.13", "tcp", 22, "ssh", "OpenSSH", "9.2p1"),
        ServiceObservation("198.18.0.14", "tcp", 800, "http", "tinyproxy", "1.11.1"),
        ServiceObservation("198.18.0.14", "tcp", 5000, "rtsp", "AirTunes"),
        ServiceObservation("198.18.0.14", "tcp", 25, "smtp", banner="mail.lab ESMTP"),
        ServiceObservation("198.18.0.14", "udp", 161, "snmp"),  # UDP relays nothing here
    ]
    assert late_candidates(named) == [("198.18.0.14", 800), ("198.18.0.13", 81)]
