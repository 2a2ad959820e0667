"""The processes that give lab hosts their behaviour, and how the builder knows they are ready.

:func:`plan` turns a :class:`~tests.lab.scenario.Host` into :class:`DaemonPlan` s (argv, config
files, the sockets that mean "ready"); :func:`start` runs one inside the host's namespace; and
:func:`wait_ready` polls each daemon's sockets in ``/proc/PID/net`` until bound, with a deadline.
Reading the socket table instead of connecting keeps readiness checks packet-free, and checking the
process's namespace first keeps a root-namespace socket on the same port from fooling us.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import netns
from tests.lab.scenario import Host, Scenario, Service
from tests.lab.ssdp import description_xml

REPO = Path(__file__).resolve().parents[2]
LAB_REVERSE_ZONES = ("18.198.in-addr.arpa", "19.198.in-addr.arpa")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class DaemonPlan:
    """What to run for one behaviour of one host."""

    host: str
    what: str
    argv: tuple[str, ...]
    ready: tuple[tuple[str, int], ...]
    service_port: int | None = None
    files: dict[str, str] = field(default_factory=dict, hash=False)
    env: dict[str, str] = field(default_factory=dict, hash=False)
    # Also ready only once its log says this (a bound socket can come before serving starts).
    ready_log: str = ""


@dataclass(eq=False)
class Daemon:
    """A process the lab started inside a host namespace."""

    plan: DaemonPlan
    ns: str
    popen: subprocess.Popen[bytes]
    log: Path

    def describe(self) -> str:
        """Human description for error messages, e.g. ``http-proxy tcp/3128 on physics-pc06``."""
        return f"{self.plan.what} on {self.plan.host}"

    def log_tail(self, lines: int = 8) -> str:
        """The last lines the daemon wrote, to explain why it failed."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def plan(host: Host, scenario: Scenario, workdir: Path) -> list[DaemonPlan]:
    """Every daemon ``host`` needs: its services, DNS/DHCP (one dnsmasq, or Kea…) and SSDP."""
    plans = [_service_plan(host, service, workdir) for service in host.services]
    dnsmasq_dhcp = host.dhcp is not None and host.dhcp.kind == "dnsmasq"
    if host.dns or dnsmasq_dhcp:
        plans.append(_dnsmasq_plan(host, scenario, workdir))
    if host.dhcp is not None and host.dhcp.kind == "kea":
        plans.append(_kea_plan(host, scenario, workdir))
    if host.dhcp is not None and host.dhcp.kind == "isc":
        plans.append(_isc_plan(host, scenario, workdir))
    if host.dhcp is not None and host.dhcp.kind == "unicast":
        plans.append(_unicast_plan(host, scenario))
    if host.ssdp:
        s = host.ssdp
        argv = [
            "--ip",
            host.ip,
            "--location",
            f"http://{host.ip}:{s.http_port}/rootDesc.xml",
            "--server",
            s.server,
            "--uuid",
            s.uuid,
        ]
        for kind in s.device_types:
            argv += ["--st", kind]
        plans.append(
            DaemonPlan(
                host.name,
                "ssdp udp/1900",
                (*_python("tests.lab.ssdp"), *argv),
                ready=(("udp", 1900),),
            )
        )
    return plans


def _python(module: str) -> tuple[str, ...]:
    return (sys.executable, "-B", "-m", module)


def _service_plan(host: Host, service: Service, workdir: Path) -> DaemonPlan:
    port = service.port
    ready = (("tcp", port),)
    what = f"{service.kind} tcp/{port}"
    if service.kind == "banner":
        argv = (
            *_python("tests.lab.listener"),
            "banner",
            "--port",
            str(port),
            "--text",
            service.text,
        )
        return DaemonPlan(host.name, what, argv, ready, port)
    if service.kind == "http":
        argv = (
            *_python("tests.lab.listener"),
            "http",
            "--port",
            str(port),
            "--title",
            service.text,
        )
        files: dict[str, str] = {}
        if host.ssdp and host.ssdp.http_port == port:
            s = host.ssdp
            desc = workdir / f"{host.name}-rootDesc.xml"
            files[str(desc)] = description_xml(
                device_types=s.device_types,
                manufacturer=s.manufacturer,
                model=s.model,
                friendly_name=s.friendly_name,
                uuid=s.uuid,
            )
            argv += ("--file", f"/rootDesc.xml={desc}", "--server", s.server)
        return DaemonPlan(host.name, what, argv, ready, port, files)
    if service.kind == "socat":
        banner = workdir / f"{host.name}-{port}.banner"
        text = service.text.encode().decode("unicode_escape")
        # fork: serve every connection, as the login service it stands for does (socat's default
        # is to serve one and exit).
        argv = ("socat", f"TCP-LISTEN:{port},fork", f"OPEN:{banner},rdonly")
        return DaemonPlan(host.name, what, argv, ready, port, {str(banner): text})
    if service.kind == "http-proxy":
        conf = workdir / f"{host.name}-tinyproxy.conf"
        # Debian's tinyproxy.conf without its User/Group, LogFile and PidFile (the lab runs it as
        # root in the foreground, -d, logging to its log) and with the one change that makes it
        # the planted finding: Allow opened to the LAN (Debian allows 127.0.0.1 only). No Listen
        # line: tinyproxy binds every address, so it survives move_host.
        text = (
            f"Port {port}\nTimeout 600\n"
            'DefaultErrorFile "/usr/share/tinyproxy/default.html"\n'
            'StatFile "/usr/share/tinyproxy/stats.html"\n'
            "LogLevel Info\nMaxClients 100\nAllow 198.18.0.0/15\n"
            'ViaProxyName "tinyproxy"\n'
        )
        return DaemonPlan(
            host.name, what, ("tinyproxy", "-d", "-c", str(conf)), ready, port, {str(conf): text}
        )
    if service.kind == "socks":
        # --allow: network safety, the proxy never connects outside the lab range.
        argv = (*_python("tests.lab.socks"), "--port", str(port), "--allow", "198.18.0.0/15")
        return DaemonPlan(host.name, what, argv, ready, port)
    raise ValueError(f"{host.name}: unknown service kind {service.kind!r}")


def _dnsmasq_plan(host: Host, scenario: Scenario, workdir: Path) -> DaemonPlan:
    """One dnsmasq per host for its DNS names and/or DHCP, at its defaults (it pings
    an address before offering it)."""
    argv = [
        "dnsmasq",
        "--keep-in-foreground",  # the lab runs and stops it (otherwise as a daemon would run)
        # Ignore the machine's config files: /etc/dnsmasq.conf, /etc/hosts, /etc/resolv.conf.
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--pid-file=",  # no pid file outside the lab
        "--user=root",  # its lease file lives in the lab's root-only workdir
        "--log-facility=-",  # to the lab's log of it, not the machine's syslog
        "--interface=eth0",
    ]
    ready: list[tuple[str, int]] = []
    what = []
    if host.dns:
        # The lab's reverse zones answered here (NXDOMAIN for unnamed addresses): without upstream
        # servers dnsmasq would otherwise fail them and resolvers retry for seconds.
        argv += [f"--local=/{zone}/" for zone in LAB_REVERSE_ZONES]
        argv += [f"--host-record={name},{ip}" for name, ip in scenario.dns_records()]
        ready.append(("tcp", 53))
        what.append("dns")
    else:
        # A DHCP-only device of the scenario: DNS off, so its planted finding stays rogue-dhcp
        # alone (an open tcp/53 would add an unexpected-service finding).
        argv.append("--port=0")
    if host.dhcp:
        argv += [
            f"--dhcp-range={host.dhcp.first},{host.dhcp.last}",
            f"--dhcp-leasefile={workdir / (host.name + '.leases')}",
        ]
        if host.dhcp.router:  # the admin's gateway (dnsmasq's default router is itself)
            argv.append(f"--dhcp-option=option:router,{host.dhcp.router}")
        if host.dhcp.reply_delay:  # the variant: a server that answers this late
            argv.append(f"--dhcp-reply-delay={host.dhcp.reply_delay}")
        ready.append(("udp", 67))
        what.append("dhcp")
    return DaemonPlan(
        host.name, "dnsmasq " + "+".join(what), tuple(argv), tuple(ready), 53 if host.dns else None
    )


def _kea_plan(host: Host, scenario: Scenario, workdir: Path) -> DaemonPlan:
    """ISC Kea's DHCPv4 server with the least config it runs with: interface, subnet, pool.

    Debian's kea-dhcp4.conf minus its control socket (under /run) and examples; the lease file
    and Kea's pid and lock files (KEA_PIDFILE_DIR, KEA_LOCKFILE_DIR, as Debian's unit sets the
    latter) go to the lab's workdir. Runs in the foreground as ``kea-dhcp4 -c FILE`` does.
    """
    assert host.dhcp is not None
    subnet: dict[str, object] = {
        "subnet": scenario.segment(host.segment).cidr,
        "pools": [{"pool": f"{host.dhcp.first} - {host.dhcp.last}"}],
    }
    if host.dhcp.router:
        subnet["option-data"] = [{"name": "routers", "data": host.dhcp.router}]
    config = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["eth0"]},
            "lease-database": {
                "type": "memfile",
                "name": str(workdir / f"{host.name}.kea-leases4.csv"),
            },
            "subnet4": [subnet],
        }
    }
    conf = workdir / f"{host.name}-kea-dhcp4.conf"
    dirs = {"KEA_PIDFILE_DIR": str(workdir), "KEA_LOCKFILE_DIR": str(workdir)}
    return DaemonPlan(
        host.name,
        "kea-dhcp4 udp/67",
        ("kea-dhcp4", "-c", str(conf)),
        ready=(("udp", 67),),
        files={str(conf): json.dumps(config, indent=2)},
        env=dirs,
        # Kea binds udp/67 a moment before its raw socket: a DISCOVER in between goes unanswered.
        ready_log="DHCP4_STARTED",
    )


def _isc_plan(host: Host, scenario: Scenario, workdir: Path) -> DaemonPlan:
    """ISC dhcpd: Debian's own dhcpd.conf, read from the package, plus the subnet it serves.

    Its lease and pid files go to the lab's workdir; ``-f`` keeps it in the foreground so that
    the lab stops it, ``-4`` and the interface as Debian's /etc/default/isc-dhcp-server gives them.
    """
    assert host.dhcp is not None
    segment = scenario.segment(host.segment)
    network = ipaddress.ip_network(segment.cidr)
    text = Path("/etc/dhcp/dhcpd.conf").read_text()
    text += f"\nsubnet {network.network_address} netmask {network.netmask} {{\n"
    text += f"  range {host.dhcp.first} {host.dhcp.last};\n"
    if host.dhcp.router:
        text += f"  option routers {host.dhcp.router};\n"
    text += "}\n"
    conf, leases = workdir / f"{host.name}-dhcpd.conf", workdir / f"{host.name}-dhcpd.leases"
    argv = ("dhcpd", "-f", "-4", "-cf", str(conf), "-lf", str(leases), "-pf", "/dev/null", "eth0")
    return DaemonPlan(
        host.name,
        "dhcpd udp/67",
        argv,
        ready=(("udp", 67),),
        files={str(conf): text, str(leases): ""},
    )


def _unicast_plan(host: Host, scenario: Scenario) -> DaemonPlan:
    """The small DHCP server that unicasts its OFFER to the client's MAC."""
    assert host.dhcp is not None
    argv = [
        *_python("tests.lab.dhcp_unicast"),
        "--ip",
        host.ip,
        "--prefix",
        str(scenario.segment(host.segment).prefixlen),
        "--first",
        host.dhcp.first,
        "--last",
        host.dhcp.last,
    ]
    if host.dhcp.router:
        argv += ["--router", host.dhcp.router]
    return DaemonPlan(host.name, "dhcp-unicast udp/67", tuple(argv), ready=(("udp", 67),))


def start(daemon_plan: DaemonPlan, ns: str, workdir: Path) -> Daemon:
    """Write the plan's files and start its process inside ``ns``, logging to the workdir."""
    for path, text in daemon_plan.files.items():
        Path(path).write_text(text)
    slug = daemon_plan.what.replace(" ", "-").replace("/", "")
    log = workdir / f"{daemon_plan.host}-{slug}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **daemon_plan.env)
    with open(log, "ab") as out:
        # A new session keeps a terminal's Ctrl-C away from the daemons: the lab stops them.
        popen = subprocess.Popen(
            netns.exec_argv(ns, daemon_plan.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    return Daemon(daemon_plan, ns, popen, log)


def wait_ready(daemons: list[Daemon], *, timeout: float = 15.0) -> None:
    """Wait until every daemon has bound its sockets; raise LabError if one exits or is too slow."""
    pending = [(d, proto, port) for d in daemons for proto, port in d.plan.ready]
    idents = {d.ns: netns.identity(netns.NETNS_DIR / d.ns) for d in daemons}
    deadline = time.monotonic() + timeout
    while pending:
        for daemon, proto, port in list(pending):
            if daemon.popen.poll() is not None:
                raise netns.LabError(
                    f"{daemon.describe()} exited with status {daemon.popen.returncode}:\n"
                    f"{daemon.log_tail()}"
                )
            if _bound(daemon.popen.pid, idents[daemon.ns], proto, port) and _logged(daemon):
                pending.remove((daemon, proto, port))
        if not pending:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{d.describe()} ({proto}/{port})" for d, proto, port in pending)
            raise netns.LabError(f"not listening after {timeout:.0f} s: {waiting}")
        time.sleep(0.02)


def _logged(daemon: Daemon) -> bool:
    """Whether the daemon's log holds its ``ready_log`` text (always, when it has none)."""
    wanted = daemon.plan.ready_log
    return not wanted or wanted in daemon.log.read_text(errors="replace")


def _bound(pid: int, ns_ident: tuple[int, int], proto: str, port: int) -> bool:
    """Whether process ``pid`` itself holds a socket bound to ``proto``/``port`` (TCP: listening).

    Owning the socket matters: a second daemon on a taken port must not look ready because the
    first one is listening.
    """
    try:
        if netns.identity(f"/proc/{pid}/ns/net") != ns_ident:
            return False  # still before `ip netns exec` switched namespaces
        table = Path(f"/proc/{pid}/net/{proto}").read_text()
    except OSError:
        return False
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and (proto.startswith("udp") or fields[3] == TCP_LISTEN):
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def stop(daemons: list[Daemon], *, grace: float = 2.0) -> None:
    """SIGTERM all daemons at once, then reap them, killing any that outlive ``grace`` seconds."""
    for daemon in daemons:
        if daemon.popen.poll() is None:
            daemon.popen.terminate()
    deadline = time.monotonic() + grace
    for daemon in daemons:
        try:
            daemon.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            daemon.popen.kill()
            daemon.popen.wait(timeout=grace)
