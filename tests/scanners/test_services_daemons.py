"""The scan's services, proxy and evidence phases against real daemons at their Debian defaults.

sshd (also on 2222), nginx (its default page, also on 8081, and a router's page on tcp/88),
vsftpd, and tinyproxy opened to the LAN on tcp/81: each started once for the module from the
package's own config file, with only what the lab needs changed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipguard.model import (
    EvidenceKind,
    KnownHost,
    PointsTo,
    ScanRequest,
    ScanResult,
    ServiceMode,
    ServiceObservation,
)
from ipguard.scanners.suite import NetworkScanner
from tests.lab import daemons
from tests.lab.builder import Lab
from tests.lab.fixtures import requires_lab
from tests.lab.netns import inside

pytestmark = pytest.mark.lab
SSH_HOST, WEB_HOST, FTP_HOST, PROXY_HOST = (
    "physics-pc02",
    "physics-pc03",
    "physics-pc04",
    "office-pc05",
)
# A proxy on a port of the default port list that nmap's port table names for something else.
PROXY_PORT = 81
HOSTS = (SSH_HOST, WEB_HOST, FTP_HOST, PROXY_HOST)
ROUTER_PORT = 88
ROUTER_PAGE = "<html><head><title>OpenWrt - LuCI</title></head><body></body></html>"
PORTS = "tcp/1-1024;tcp/2222;tcp/8081"


def sshd_plan(workdir: Path) -> daemons.DaemonPlan:
    """Debian's sshd_config, with its own host key and a second port as an administrator adds."""
    key = workdir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    conf = workdir / "sshd_config"
    text = Path("/etc/ssh/sshd_config").read_text()
    text += (
        f"HostKey {key}\n"  # the lab's own key, not the machine's
        f"PidFile {workdir / 'sshd.pid'}\n"  # one sshd per lab, not the machine's pid file
        "Port 22\nPort 2222\n"  # the second port: an administrator's 'hidden' ssh
    )
    return daemons.DaemonPlan(
        SSH_HOST,
        "sshd tcp/22",
        ("/usr/sbin/sshd", "-D", "-e", "-f", str(conf)),  # -D -e: foreground, log to the lab
        ready=(("tcp", 22), ("tcp", 2222)),
        files={str(conf): text},
    )


def nginx_plan(workdir: Path) -> daemons.DaemonPlan:
    """Debian's nginx.conf and default site, the site also on 8081 as an administrator adds, and
    a router's management page (an OpenWrt title) on tcp/88, a port nmap's table calls Kerberos."""
    site = Path("/etc/nginx/sites-available/default").read_text()
    site = site.replace("listen 80 default_server;", "listen 80 default_server;\n\tlisten 8081;")
    # The page in the config itself: nginx's workers (www-data) cannot read the lab's workdir.
    site += (
        f"server {{\n\tlisten {ROUTER_PORT};\n\tdefault_type text/html;\n"
        f"\tlocation / {{ return 200 '{ROUTER_PAGE}'; }}\n}}\n"
    )
    site_file = workdir / "nginx-site"
    conf = Path("/etc/nginx/nginx.conf").read_text()
    # One nginx per lab: its own pid file, its site instead of the machine's sites-enabled, its
    # logs in the lab's workdir rather than /var/log/nginx.
    conf = re.sub(r"^pid .*$", f"pid {workdir / 'nginx.pid'};", conf, flags=re.M)
    conf = conf.replace("/etc/nginx/sites-enabled/*", str(site_file))
    conf = re.sub(r"/var/log/nginx/", str(workdir) + "/nginx-", conf)
    conf_file = workdir / "nginx.conf"
    return daemons.DaemonPlan(
        WEB_HOST,
        "nginx tcp/80",
        # daemon off: in the foreground, so that the lab stops it.
        ("nginx", "-c", str(conf_file), "-g", "daemon off;"),
        ready=(("tcp", 80), ("tcp", 8081), ("tcp", ROUTER_PORT)),
        files={str(conf_file): conf, str(site_file): site},
    )


def vsftpd_plan(workdir: Path) -> daemons.DaemonPlan:
    """Debian's vsftpd.conf as it is (it listens on IPv6, which takes IPv4 too)."""
    conf = workdir / "vsftpd.conf"
    return daemons.DaemonPlan(
        FTP_HOST,
        "vsftpd tcp/21",
        ("vsftpd", str(conf)),
        ready=(("tcp6", 21),),
        files={str(conf): Path("/etc/vsftpd.conf").read_text()},
    )


def tinyproxy_plan(workdir: Path) -> daemons.DaemonPlan:
    """Debian's tinyproxy.conf, opened to the LAN on a port no proxy list holds, as users hide it.

    Its User/Group, LogFile and PidFile lines go (the lab runs it as root in the foreground, -d,
    logging to its log); Port becomes 81; Allow is opened to the lab's range (Debian: localhost).
    """
    kept = [
        line
        for line in Path("/etc/tinyproxy/tinyproxy.conf").read_text().splitlines()
        if not re.match(r"(User|Group|LogFile|PidFile|Port) ", line)
    ]
    text = "\n".join([*kept, f"Port {PROXY_PORT}", "Allow 198.18.0.0/15", ""])
    conf = workdir / "tinyproxy.conf"
    return daemons.DaemonPlan(
        PROXY_HOST,
        f"tinyproxy tcp/{PROXY_PORT}",
        ("tinyproxy", "-d", "-c", str(conf)),
        ready=(("tcp", PROXY_PORT),),
        files={str(conf): text},
    )


@pytest.fixture(scope="module")
def real_daemons(demo_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """sshd, nginx, vsftpd and tinyproxy started once for the module on free demo hosts."""
    workdir = tmp_path_factory.mktemp("daemons")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # what Debian's unit creates for sshd
    plans = [sshd_plan(workdir), nginx_plan(workdir), vsftpd_plan(workdir), tinyproxy_plan(workdir)]
    started: list[daemons.Daemon] = []
    try:
        for plan in plans:
            started.append(daemons.start(plan, demo_lab.host(plan.host).ns, workdir))
        daemons.wait_ready(started)
        yield demo_lab
    finally:
        daemons.stop(started)


def scan(lab: Lab, hosts: tuple[str, ...], known: dict[str, KnownHost] | None) -> ScanResult:
    """One scan of `hosts`, as `ipguard scan` runs it: sweep, services, proxy, evidence
    (`known`: the baseline of an incremental service scan)."""
    request = ScanRequest(
        site="lab",
        interface="eth0",
        subnets=tuple(f"{lab.host(host).ip}/32" for host in hosts),
        ports=PORTS,
        phases=("sweep", "services", "proxy", "evidence"),
        known_services=known,
    )
    with inside(lab.scanner_ns):
        return NetworkScanner().collect(request, None)


@pytest.fixture(scope="module")
def scanned(real_daemons: Lab) -> ScanResult:
    """One full scan of the four hosts."""
    return scan(real_daemons, HOSTS, None)


def relayed(result: ScanResult, ip: str, port: int) -> set[str]:
    return {v.method for v in result.proxies if (v.ip, v.port) == (ip, port) and v.relays}


def ports_of(result: ScanResult, lab: Lab, host: str) -> dict[int, ServiceObservation]:
    return {s.port: s for s in result.services if s.ip == lab.host(host).ip}


@requires_lab("nmap")
def test_a_proxy_on_a_port_nmap_names_otherwise_is_asked(
    scanned: ScanResult, demo_lab: Lab
) -> None:
    """tinyproxy on tcp/81, which nmap's port table calls hosts2-ns, is asked and relays.

    The fast pass names the port by its number; tinyproxy stays silent to nmap's first probe
    for 6 s and its version probes outlast the budget, so the port stays unidentified: a port
    nobody could name is asked whether it relays (it was not, before).
    """
    assert list(ports_of(scanned, demo_lab, PROXY_HOST)) == [PROXY_PORT]
    ip = demo_lab.host(PROXY_HOST).ip
    assert relayed(scanned, ip, PROXY_PORT) == {"http-connect", "http-get"}, scanned.proxies


@requires_lab("nmap")
def test_the_incremental_run_after_it_asks_the_proxy_again(
    scanned: ScanResult, demo_lab: Lab
) -> None:
    """The next run keeps the baseline's names for the unchanged host (no version probes), and
    a port nobody named is still asked: the open proxy does not come and go with the mode."""
    ip = demo_lab.host(PROXY_HOST).ip
    mac = next(o.mac for o in scanned.observations if o.ip == ip)
    known = {ip: KnownHost(mac, tuple(s for s in scanned.services if s.ip == ip))}
    again = scan(demo_lab, (PROXY_HOST,), known)
    assert again.service_mode == ServiceMode.INCREMENTAL and again.services_rescanned == 0
    assert relayed(again, ip, PROXY_PORT) == {"http-connect", "http-get"}, again.proxies


@requires_lab("nmap")
def test_stock_daemons_are_found_and_named_on_any_port(scanned: ScanResult, demo_lab: Lab) -> None:
    """sshd on 22 and 2222, vsftpd on 21: found by the fast pass and named by their banners
    within the version budget; nginx's ports found (a web server is silent until asked, and nmap
    asks only after 6 s: under load its name may miss the budget). Nothing there relays."""
    ssh, web, ftp = (ports_of(scanned, demo_lab, host) for host in (SSH_HOST, WEB_HOST, FTP_HOST))
    assert {port: (s.service, s.product) for port, s in ssh.items()} == {
        22: ("ssh", "OpenSSH"),
        2222: ("ssh", "OpenSSH"),
    }
    assert {port: (s.service, s.product) for port, s in ftp.items()} == {21: ("ftp", "vsftpd")}
    assert sorted(web) == [80, ROUTER_PORT, 8081]
    assert not [v for v in scanned.proxies if v.relays and v.ip != demo_lab.host(PROXY_HOST).ip]


@requires_lab("nmap")
def test_a_management_page_on_a_port_nmap_names_otherwise_is_read(
    scanned: ScanResult, demo_lab: Lab
) -> None:
    """The router page on tcp/88 (nmap's table: kerberos-sec) is read once versions are done;
    nginx's default page, on 80 and 8081, is no router."""
    ip = demo_lab.host(WEB_HOST).ip
    titles = [(e.ip, e.kind, e.points_to, e.detail) for e in scanned.evidence]
    assert titles == [
        (ip, EvidenceKind.HTTP_TITLE, PointsTo.ROUTER, f"tcp/{ROUTER_PORT}: OpenWrt - LuCI")
    ]
