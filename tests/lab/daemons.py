"""The processes that give lab hosts their behaviour, and how the builder knows they are ready.

:func:`plan` turns a :class:`~tests.lab.scenario.Host` into :class:`DaemonPlan` s (argv, config
files, the sockets that mean "ready"); :func:`start` runs one inside the host's namespace; and
:func:`wait_ready` polls each daemon's sockets in ``/proc/PID/net`` until bound, with a deadline.
Reading the socket table instead of connecting keeps readiness checks packet-free, and checking the
process's namespace first keeps a root-namespace socket on the same port from fooling us.
"""

from __future__ import annotations

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
    """Every daemon ``host`` needs: its services, DNS/DHCP (one dnsmasq) and SSDP."""
    plans = [_service_plan(host, service, workdir) for service in host.services]
    if host.dns or host.dhcp:
        plans.append(_dnsmasq_plan(host, scenario, workdir))
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
        argv = ("socat", "-T", "10", f"TCP-LISTEN:{port},fork,reuseaddr", f"OPEN:{banner},rdonly")
        return DaemonPlan(host.name, what, argv, ready, port, {str(banner): text})
    if service.kind == "http-proxy":
        conf = workdir / f"{host.name}-tinyproxy.conf"
        # No Listen line: tinyproxy binds every address, so it survives move_host.
        text = (
            f"Port {port}\nAllow 198.18.0.0/15\nTimeout 30\nMaxClients 50\nLogLevel Info\n"
            'ViaProxyName "tinyproxy"\n'
        )
        return DaemonPlan(
            host.name, what, ("tinyproxy", "-d", "-c", str(conf)), ready, port, {str(conf): text}
        )
    if service.kind == "socks":
        argv = (*_python("tests.lab.socks"), "--port", str(port), "--allow", "198.18.0.0/15")
        return DaemonPlan(host.name, what, argv, ready, port)
    raise ValueError(f"{host.name}: unknown service kind {service.kind!r}")


def _dnsmasq_plan(host: Host, scenario: Scenario, workdir: Path) -> DaemonPlan:
    """One dnsmasq per host for its DNS names and/or DHCP, ignoring every system config file."""
    argv = [
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--pid-file=",
        "--user=root",
        "--group=root",
        "--log-facility=-",
        "--interface=eth0",
        "--bind-interfaces",
    ]
    ready: list[tuple[str, int]] = []
    what = []
    if host.dns:
        # --local answers the lab's reverse zones authoritatively (NXDOMAIN for unnamed addresses)
        # instead of "no upstream" failures that make resolvers retry for seconds.
        argv += [
            "--port=53",
            "--domain-needed",
            *(f"--local=/{zone}/" for zone in LAB_REVERSE_ZONES),
        ]
        argv += [f"--host-record={name},{ip}" for name, ip in scenario.dns_records()]
        ready.append(("tcp", 53))
        what.append("dns")
    else:
        argv.append("--port=0")
    if host.dhcp:
        argv += [
            f"--dhcp-range={host.dhcp.first},{host.dhcp.last},1h",
            f"--dhcp-leasefile={workdir / (host.name + '.leases')}",
            "--no-ping",
        ]
        if host.dhcp.router:
            argv.append(f"--dhcp-option=option:router,{host.dhcp.router}")
        ready.append(("udp", 67))
        what.append("dhcp")
    return DaemonPlan(
        host.name, "dnsmasq " + "+".join(what), tuple(argv), tuple(ready), 53 if host.dns else None
    )


def start(daemon_plan: DaemonPlan, ns: str, workdir: Path) -> Daemon:
    """Write the plan's files and start its process inside ``ns``, logging to the workdir."""
    for path, text in daemon_plan.files.items():
        Path(path).write_text(text)
    slug = daemon_plan.what.replace(" ", "-").replace("/", "")
    log = workdir / f"{daemon_plan.host}-{slug}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
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
            if _bound(daemon.popen.pid, idents[daemon.ns], proto, port):
                pending.remove((daemon, proto, port))
        if not pending:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{d.describe()} ({proto}/{port})" for d, proto, port in pending)
            raise netns.LabError(f"not listening after {timeout:.0f} s: {waiting}")
        time.sleep(0.02)


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
        if local_port == port and (proto == "udp" or fields[3] == TCP_LISTEN):
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
