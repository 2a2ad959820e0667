"""Build a :class:`~tests.lab.scenario.Scenario` into a live lab network, change it, tear it down.

Layout: one switch namespace holds a Linux bridge per segment (multicast snooping off, so SSDP
multicast reaches every port); the scanner and every host get their own namespace with ``eth0``
(and ``eth1`` for routers) on veth pairs created directly inside the lab namespaces. Nothing is
created in the root namespace, so the lab has no path to the machine's real networks at all.

    with Lab.build(demo()) as lab:
        lab.run("scanner", ["arp-scan", "-I", "eth0", lab.subnet])
"""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.lab import daemons, files, netns
from tests.lab.netns import LabError
from tests.lab.scenario import ExpectedFinding, Host, Scenario

MULTICAST = "224.0.0.0/4"


@dataclass(frozen=True)
class LabHost:
    """A host as it is on the lab network right now."""

    name: str
    ns: str
    ip: str
    mac: str


def workdir_for(run_id: str) -> Path:
    """Where a lab keeps daemon configs, logs and leases (removed at teardown)."""
    return Path(tempfile.gettempdir()) / f"ipg-lab-{run_id}"


def destroy(namespaces: Sequence[str], workdir: str | Path | None) -> None:
    """Tear down a lab known only by its namespaces and workdir (e.g. from a state file)."""
    netns.destroy(namespaces)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


class Lab:
    """A lab network built from a scenario; always torn down by :meth:`teardown` or ``with``."""

    def __init__(self, scenario: Scenario, run_id: str) -> None:
        self.id = run_id
        self.scenario = scenario
        self.workdir = workdir_for(run_id)
        self.switch_ns = f"{netns.PREFIX}{run_id}-sw"
        self.scanner_ns = f"{netns.PREFIX}{run_id}-scan"
        self.scanner_interface = "eth0"
        self._sensor_ns = {
            s.segment: f"{netns.PREFIX}{run_id}-scan-{s.segment}" for s in scenario.sensors
        }
        self._host_ns = {h.name: f"{netns.PREFIX}{run_id}-{h.name}" for h in scenario.hosts}
        # Switch-side ports: p0 is the scanner's, s{k} sensor k's; host i has p{i} (eth0) and
        # q{i} (eth1).
        self._switch_ports = {h.name: i for i, h in enumerate(scenario.hosts, 1)}
        self.daemons: list[daemons.Daemon] = []
        self._made_workdir = False  # never remove a directory some other lab made
        self._torn_down = False

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, scenario: Scenario, *, run_id: str | None = None) -> Lab:
        """Build ``scenario``; on any failure (or Ctrl-C) everything created so far is removed."""
        run_id = run_id or secrets.token_hex(3)
        if any(name.startswith(f"{netns.PREFIX}{run_id}-") for name in netns.existing()):
            raise LabError(
                f"lab id {run_id} is already in use: pick another or run `python -m tests.lab down`"
            )
        lab = cls(scenario, run_id)
        try:
            lab._build()
        except BaseException:
            lab.teardown()
            raise
        return lab

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of this lab: switch, scanner, sensors, then one per host."""
        return [self.switch_ns, self.scanner_ns, *self._sensor_ns.values(), *self._host_ns.values()]

    def _build(self) -> None:
        self.workdir.mkdir(mode=0o700)
        self._made_workdir = True
        netns.batch_netns([f"netns add {ns}" for ns in self.namespaces])
        netns.run_many(self._sysctl_jobs())
        netns.run_many([(netns.ip_batch_argv(self.switch_ns), self._switch_batch())])
        netns.run_many([(netns.ip_batch_argv(ns), text) for ns, text in self._address_batches()])
        nat = [
            (
                netns.exec_argv(self._host_ns[h.name], ["nft", "-f", "-"]),
                _nat_ruleset(h, self.scenario),
            )
            for h in self.scenario.hosts
            if h.router and h.router.nat
        ]
        netns.run_many(nat)
        for host in self.scenario.hosts:
            for daemon_plan in daemons.plan(host, self.scenario, self.workdir):
                self.daemons.append(
                    daemons.start(daemon_plan, self._host_ns[host.name], self.workdir)
                )
        daemons.wait_ready(self.daemons)

    def _sysctl_jobs(self) -> list[tuple[list[str], str | None]]:
        # IPv6 off everywhere: no router solicitations, DAD or MLD noise in captures and scans.
        # Set before any interface exists so that new interfaces inherit it from "default".
        quiet = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        jobs: list[tuple[list[str], str | None]] = []
        for ns in [self.switch_ns, self.scanner_ns, *self._sensor_ns.values()]:
            jobs.append((netns.exec_argv(ns, ["sysctl", "-qw", *quiet]), None))
        for host in self.scenario.hosts:
            extra = ["net.ipv4.ip_forward=1"] if host.router else []
            jobs.append(
                (netns.exec_argv(self._host_ns[host.name], ["sysctl", "-qw", *quiet, *extra]), None)
            )
        return jobs

    def _switch_batch(self) -> str:
        bridge = {seg.name: f"br{i}" for i, seg in enumerate(self.scenario.segments)}
        lines = []
        for name in bridge.values():
            lines += [
                f"link add {name} type bridge mcast_snooping 0 stp_state 0",
                f"link set {name} up",
            ]
        scanner = self.scenario.scanner
        legs = [("p0", self.scanner_ns, "eth0", scanner.mac, self.scenario.segments[0].name)]
        for k, sensor in enumerate(self.scenario.sensors, 1):
            legs.append(
                (f"s{k}", self._sensor_ns[sensor.segment], "eth0", sensor.mac, sensor.segment)
            )
        for host in self.scenario.hosts:
            i, ns = self._switch_ports[host.name], self._host_ns[host.name]
            legs.append((f"p{i}", ns, "eth0", host.mac, host.segment))
            if host.router:
                legs.append((f"q{i}", ns, "eth1", host.router.mac, host.router.segment))
        for port, ns, peer, mac, segment in legs:
            lines += [
                f"link add {port} type veth peer name {peer} address {mac} netns {ns}",
                f"link set {port} master {bridge[segment]} up",
            ]
        return "\n".join(lines) + "\n"

    def _address_batches(self) -> list[tuple[str, str]]:
        scenario = self.scenario
        lan = scenario.segments[0]
        scanner = [
            "link set lo up",
            "link set eth0 up",
            f"addr add {scenario.scanner.ip}/{lan.prefixlen} dev eth0",
        ]
        # The scanner routes only to lab subnets (no default route): anything else is unreachable.
        for host in scenario.hosts:
            if host.router and not host.router.nat:
                scanner.append(
                    f"route add {scenario.segment(host.router.segment).cidr} via {host.ip}"
                )
        scanner.append(f"route add {MULTICAST} dev eth0")  # SSDP M-SEARCH leaves through eth0
        batches = [(self.scanner_ns, "\n".join(scanner) + "\n")]
        for sensor in scenario.sensors:  # each sees its own segment only: no routes at all
            own = scenario.segment(sensor.segment)
            lines = [
                "link set lo up",
                "link set eth0 up",
                f"addr add {sensor.ip}/{own.prefixlen} dev eth0",
                f"route add {MULTICAST} dev eth0",
            ]
            batches.append((self._sensor_ns[sensor.segment], "\n".join(lines) + "\n"))
        for host in scenario.hosts:
            seg = scenario.segment(host.segment)
            lines = [
                "link set lo up",
                "link set eth0 up",
                f"addr add {host.ip}/{seg.prefixlen} dev eth0",
            ]
            if host.router:
                inner = scenario.segment(host.router.segment)
                lines += [
                    "link set eth1 up",
                    f"addr add {host.router.ip}/{inner.prefixlen} dev eth1",
                ]
            if host.gateway:
                lines.append(f"route add default via {host.gateway}")
            batches.append((self._host_ns[host.name], "\n".join(lines) + "\n"))
        return batches

    # -- using ------------------------------------------------------------------------------

    def sensor_ns(self, segment: str) -> str:
        """The namespace that scans ``segment``: the scanner's for the first, else its sensor's."""
        if segment == self.scenario.segments[0].name:
            return self.scanner_ns
        if segment not in self._sensor_ns:
            raise KeyError(f"lab {self.id} has no sensor on segment {segment!r}")
        return self._sensor_ns[segment]

    @property
    def scanner_ip(self) -> str:
        """The scanner's address on the LAN."""
        return self.scenario.scanner.ip

    @property
    def subnet(self) -> str:
        """The scanned local subnet, e.g. ``198.18.0.0/24``."""
        return self.scenario.subnet

    @property
    def routed_subnets(self) -> list[str]:
        """Subnets the scanner reaches through the legitimate gateway."""
        return self.scenario.routed_subnets

    @property
    def dns_server(self) -> str | None:
        """The lab DNS server's address (None if the scenario has none)."""
        return self.scenario.dns_server

    def host(self, name: str) -> LabHost:
        """The host called ``name`` with its current address; KeyError once removed."""
        host = self.scenario.host(name)
        return LabHost(host.name, self._host_ns[host.name], host.ip, host.mac)

    @property
    def hosts(self) -> list[LabHost]:
        """Every host currently on the network."""
        return [self.host(h.name) for h in self.scenario.hosts]

    def ns(self, name_or_ns: str) -> str:
        """Namespace of ``"scanner"``, a host name (removed ones too) or a namespace of this lab."""
        if name_or_ns == "scanner":
            return self.scanner_ns
        if name_or_ns in self._host_ns:
            return self._host_ns[name_or_ns]
        if name_or_ns in self.namespaces:
            return name_or_ns
        raise KeyError(f"lab {self.id} has no host or namespace {name_or_ns!r}")

    def run(
        self,
        name_or_ns: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a lab namespace (``"scanner"``, a host name or a namespace name)."""
        return netns.run(self.ns(name_or_ns), argv, timeout=timeout, check=check, input=input)

    def expected_findings(self) -> set[ExpectedFinding]:
        """Findings ipguard should report on the lab as it stands now (after any mutations)."""
        return self.scenario.expected_findings()

    def write_ledger_csv(self, path: str | Path) -> Path:
        """Write the ledger of the scenario's legitimate devices in ipguard's CSV format."""
        return files.write_ledger_csv(self.scenario, path)

    def write_config(self, path: str | Path) -> Path:
        """Write an ipguard.toml that scans this lab from the scanner namespace."""
        return files.write_config(self.scenario, path, interface=self.scanner_interface)

    def state(self) -> dict[str, Any]:
        """What ``python -m tests.lab`` records about a running lab (JSON-serialisable)."""
        return {
            "id": self.id,
            "scenario": self.scenario.name,
            "namespaces": self.namespaces,
            "switch_ns": self.switch_ns,
            "scanner_ns": self.scanner_ns,
            "sensors": dict(self._sensor_ns),
            "interface": self.scanner_interface,
            "scanner_ip": self.scanner_ip,
            "subnet": self.subnet,
            "routed_subnets": self.routed_subnets,
            "dns_server": self.dns_server,
            "workdir": str(self.workdir),
            "files": sorted(str(p) for p in self.workdir.iterdir())
            if self.workdir.exists()
            else [],
            "hosts": {h.name: dataclasses.asdict(h) for h in self.hosts},
        }

    # -- changing (between two scans) -------------------------------------------------------

    def move_host(self, name: str, new_ip: str | None = None) -> None:
        """Give host ``name`` a new address on its segment (default: ``moves_to``); MAC stays."""
        host = self.scenario.host(name)
        new_ip = new_ip or host.moves_to
        if new_ip is None:
            raise LabError(f"{name} has no moves_to address in the scenario: pass new_ip")
        seg = self.scenario.segment(host.segment)
        if ipaddress.ip_address(new_ip) not in ipaddress.ip_network(seg.cidr):
            raise LabError(f"{new_ip} is not on {name}'s segment {seg.cidr}")
        lines = ["addr flush dev eth0", f"addr add {new_ip}/{seg.prefixlen} dev eth0"]
        if host.gateway:
            lines.append(f"route replace default via {host.gateway}")
        netns.run_many([(netns.ip_batch_argv(self._host_ns[name]), "\n".join(lines) + "\n")])
        expect = [e for e in host.expect if e[0] != "mac-moved"]
        reg = host.registration
        if reg and reg.mac == host.mac and reg.ip != new_ip:
            expect.append(("mac-moved", None))
        self.scenario = self.scenario.with_host(
            dataclasses.replace(host, ip=new_ip, expect=tuple(expect))
        )

    def stop_service(self, name: str, port: int) -> None:
        """Stop the daemon serving TCP ``port`` on host ``name``."""
        host = self.scenario.host(name)
        stopping = [d for d in self.daemons if d.plan.host == name and d.plan.service_port == port]
        if not stopping:
            raise LabError(f"{name} runs no service on tcp/{port}")
        daemons.stop(stopping)
        self.daemons = [d for d in self.daemons if d not in stopping]
        services = tuple(s for s in host.services if s.port != port)
        expect = tuple(e for e in host.expect if e[1] != port)
        changed = dataclasses.replace(host, services=services, expect=expect)
        if any(d.plan.argv[0] == "dnsmasq" for d in stopping):  # its DNS and DHCP are one process
            expect = tuple(e for e in expect if e[0] != "rogue-dhcp")
            changed = dataclasses.replace(changed, dns=False, dhcp=None, expect=expect)
        self.scenario = self.scenario.with_host(changed)

    def remove_host(self, name: str) -> None:
        """Unplug host ``name``: its switch ports go down, its registrations become absent."""
        host = self.scenario.host(name)
        i = self._switch_ports[name]
        lines = [f"link set p{i} down"] + ([f"link set q{i} down"] if host.router else [])
        netns.run_many([(netns.ip_batch_argv(self.switch_ns), "\n".join(lines) + "\n")])
        self.scenario = self.scenario.without_host(name)

    # -- tearing down -----------------------------------------------------------------------

    def teardown(self) -> None:
        """Stop every daemon, delete every namespace and the workdir; safe to call again."""
        if self._torn_down:
            return
        try:
            daemons.stop(self.daemons)
        finally:
            destroy(self.namespaces, self.workdir if self._made_workdir else None)
        self._torn_down = True

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()


def _nat_ruleset(host: Host, scenario: Scenario) -> str:
    """nftables masquerade for traffic from the router's inside segment leaving through eth0."""
    assert host.router is not None
    inner = scenario.segment(host.router.segment).cidr
    return (
        "table ip nat {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    ip saddr {inner} oifname "eth0" masquerade\n'
        "  }\n"
        "}\n"
    )
