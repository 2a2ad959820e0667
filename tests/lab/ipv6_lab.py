"""The IPv6 lab: who may configure hosts over IPv6 on one link, with real daemons at their defaults.

The lab switches IPv6 off everywhere; :func:`enable_ipv6` turns it back on for the scanner and the
hosts of this scenario only (their ``eth0``, link-local addresses from their MACs), and starts:

- ``office-gw01``: Debian's ``radvd`` with the least config it runs with (interface, one prefix
  inside ``[scan] subnets``), registered with role router (no finding: the control);
- ``math-pc60``: a second ``radvd`` on a registered PC without role router, announcing a ULA
  prefix (a laptop sharing its connection): ``rogue-ra``;
- ``physics-pc61``: THC-IPv6's ``fake_router6``, a real attack tool, twice: behind a hop-by-hop
  header (``-H``) and behind a one-shot fragment header (``-F``), the ways past a switch's RA
  Guard: ``rogue-ra`` naming both (``"evasion"``);
- ``chem-pc62``: ``dnsmasq`` as a DHCPv6 server on a PC without role dhcp-server: ``rogue-dhcp``
  with family 6.

And hosts that take addresses from them, for neighbour discovery (all registered but one):

- ``math-pc63``: the kernel's SLAAC (EUI-64) from the routers' advertisements;
- ``physics-pc64`` and ``chem-pc65``: SLAAC with privacy extensions (``use_tempaddr=2``): they
  answer from a temporary address; ``chem-pc65`` is a Windows PC as the link sees one: it does
  not answer an echo sent to a multicast group (``net.ipv6.icmp.echo_ignore_multicast=1``);
- ``office-pc66``: the registered static ``2001:db8:20::66`` (and SLAAC): nothing to say;
- ``math-pc67``: SLAAC, plus ``2001:db8:20::68``, the registered static IPv6 of ``math-pc68``
  (absent): ``ip-mac-mismatch``;
- ``stranger-69``: unregistered, SLAAC: ``unregistered-host``.

:func:`hold_a_duplicate` (the scan's lab, not the watcher's) then gives ``physics-pc64`` the
static address of ``office-pc66`` with duplicate address detection off: two MACs answer for one
IPv6 address, ``duplicate-ip``; and ``math-pc63`` the router's link-local address: ``duplicate-ip``,
critical (the gateway).

The scanner holds ``2001:db8:20::2`` (a monitoring box has a static address), so that discovery
echoes from a global source too.

Lab IPv6 addresses come only from 2001:db8::/32 and fd00::/8, inside the lab's namespaces.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.lab import daemons, netns
from tests.lab.builder import Lab
from tests.lab.scenario import Registration, Scenario
from tests.lab.scenarios import LAN, _scanner, device, lan_ip, mac_for, stranger

PREFIX = "2001:db8:20::/64"  # the registered router's, inside [scan] subnets
ROGUE_PREFIX = "fd00:60::/64"
ATTACK_PREFIX = "2001:db8:61::/64"
DHCP6_NET, DHCP6_FIRST, DHCP6_LAST = "fd00:62::62/64", "fd00:62::100", "fd00:62::1ff"
ROUTER, RADVD_ROGUE, ATTACKER, DHCP6_ROGUE = "office-gw01", "math-pc60", "physics-pc61", "chem-pc62"
SLAAC, PRIVACY = ("math-pc63",), ("physics-pc64", "chem-pc65")
STATIC, STATIC_IP = "office-pc66", "2001:db8:20::66"
TAKER, OWNER, TAKEN_IP = "math-pc67", "math-pc68", "2001:db8:20::68"
STRANGER = "stranger-69"
ATTACK_FLAGS = ("-H", "-F")  # fake_router6's extension headers: hop-by-hop, fragment
ATTACK_EVASION = ["fragment", "hop-by-hop"]  # what the rogue-ra's detail names
DOUBLE = "physics-pc64"  # holds STATIC_IP too, DAD off (hold_a_duplicate)
IMPOSTOR = "math-pc63"  # holds the router's link-local address, DAD off (hold_a_duplicate)
SCANNER_IP = "2001:db8:20::2/64"
SYSCTLS = (
    "net.ipv6.conf.eth0.disable_ipv6=0",
    "net.ipv6.conf.all.forwarding=1",  # routers forward; radvd warns without it
)
HOST_SYSCTLS = ("net.ipv6.conf.eth0.disable_ipv6=0",)  # a host: SLAAC from what it hears
PRIVACY_SYSCTLS = ("net.ipv6.conf.eth0.use_tempaddr=2", *HOST_SYSCTLS)  # before IPv6 is on
# Windows answers no echo to ff02::1, while its stack still sends the errors RFC 8200 demands.
SILENT_TO_MULTICAST = "chem-pc65"
SILENT_SYSCTLS = ("net.ipv6.icmp.echo_ignore_multicast=1", *PRIVACY_SYSCTLS)


def ipv6_routers() -> Scenario:
    """The registered router and the three rogues, each a registered IPv4 host of the LAN."""
    hosts = (
        device(ROUTER, lan_ip(1), "王芳", roles=("router", "gateway"), gateway=None),
        device(RADVD_ROGUE, lan_ip(60), f"owner of {RADVD_ROGUE}", gateway=None),
        device(ATTACKER, lan_ip(61), f"owner of {ATTACKER}", gateway=None),
        device(DHCP6_ROGUE, lan_ip(62), f"owner of {DHCP6_ROGUE}", gateway=None),
        *(device(name, lan_ip(int(name[-2:])), f"owner of {name}") for name in SLAAC + PRIVACY),
        device(STATIC, lan_ip(66), f"owner of {STATIC}", ipv6=(STATIC_IP,)),
        device(TAKER, lan_ip(67), f"owner of {TAKER}"),
        stranger(STRANGER, lan_ip(69), "02:66:00:00:00:69"),
    )
    owner = Registration(
        ip=lan_ip(68), mac=mac_for(lan_ip(68)), hostname=OWNER, owner=f"owner of {OWNER}",
        department="math", asset_tag="pc68", ipv6=(TAKEN_IP,),
    )  # fmt: skip
    return Scenario(name="ipv6", segments=(LAN,), scanner=_scanner(), hosts=hosts, absent=(owner,))


def address_hosts() -> tuple[str, ...]:
    """The hosts that configure addresses from the advertisements they hear (not routers)."""
    return (*SLAAC, *PRIVACY, STATIC, TAKER, STRANGER)


def eui64_link_local(mac: str) -> str:
    """The link-local address the kernel derives from ``mac`` (RFC 4291 appendix A)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    words = [octets[0] << 8 | octets[1], octets[2] << 8 | 0xFF, 0xFE << 8 | octets[3]]
    words.append(octets[4] << 8 | octets[5])
    return "fe80::" + ":".join(f"{word:x}" for word in words)


def enable_ipv6(lab: Lab) -> None:
    """IPv6 on for the scanner and this scenario's hosts; start radvd, fake_router6, dnsmasq.

    The daemons join ``lab.daemons``, so the lab's teardown stops them.
    """
    wanted = {ROUTER, RADVD_ROGUE, ATTACKER, DHCP6_ROGUE}
    for ns in [lab.scanner_ns, *(lab.host(name).ns for name in sorted(wanted))]:
        netns.run(ns, ["sysctl", "-qw", *SYSCTLS])
    for name in address_hosts():  # on before the routers start: their first RAs configure them
        sysctls = PRIVACY_SYSCTLS if name in PRIVACY else HOST_SYSCTLS
        sysctls = SILENT_SYSCTLS if name == SILENT_TO_MULTICAST else sysctls
        netns.run(lab.host(name).ns, ["sysctl", "-qw", *sysctls])
    for name, address in ((DHCP6_ROGUE, DHCP6_NET), (STATIC, f"{STATIC_IP}/64"),
                          (TAKER, f"{TAKEN_IP}/64"), ("", SCANNER_IP)):  # fmt: skip
        ns = lab.host(name).ns if name else lab.scanner_ns
        netns.run(ns, ["ip", "-6", "addr", "add", address, "dev", "eth0"])
    every = [*sorted(wanted), *address_hosts()]
    _wait_for_addresses([lab.scanner_ns, *(lab.host(name).ns for name in every)])
    work = lab.workdir
    plans = [
        _radvd(ROUTER, PREFIX, work),
        _radvd(RADVD_ROGUE, ROGUE_PREFIX, work),
        # Behind a hop-by-hop header, and behind a one-shot fragment header: past RA Guard.
        *(
            daemons.DaemonPlan(
                ATTACKER, f"fake_router6 {flag}", (_fake_router6(), flag, "eth0", ATTACK_PREFIX), ()
            )
            for flag in ATTACK_FLAGS
        ),
        _dnsmasq6(
            DHCP6_ROGUE,
            f"--dhcp-range={DHCP6_FIRST},{DHCP6_LAST}",
            f"--dhcp-leasefile={work / (DHCP6_ROGUE + '.leases')}",
        ),
    ]
    started = [daemons.start(plan, lab.host(plan.host).ns, work) for plan in plans]
    lab.daemons.extend(started)
    daemons.wait_ready(started)
    time.sleep(1.0)  # radvd and fake_router6 have no socket to wait for: give them a second
    for daemon in started:
        if daemon.popen.poll() is not None:
            raise netns.LabError(f"{daemon.describe()} exited:\n{daemon.log_tail()}")
    # SLAAC from the registered radvd (and a temporary address where privacy is on), past DAD.
    slaac = "inet6 " + PREFIX.split("::")[0] + ":0:"  # 2001:db8:20:0:<interface id>
    hosts = [lab.host(name).ns for name in address_hosts()]
    _wait_for_addresses(hosts, timeout=20.0, wanted=slaac)
    _wait_for_addresses([lab.host(name).ns for name in PRIVACY], timeout=20.0, wanted="temporary")


def hold_a_duplicate(lab: Lab) -> None:
    """``physics-pc64`` takes ``office-pc66``'s static address with DAD off (``nodad``).

    The kernel's duplicate address detection keeps a second holder from using an address in use
    (its NS from :: is answered, the address fails), so two MACs answer for one IPv6 address only
    where DAD is off: a device that skips it, or a host whose address was set while the other was
    away. Added once ``office-pc66`` holds the address (its own DAD is long over), so both keep it
    and both answer a Neighbor Solicitation for it. A privacy host: it still answers the scanner's
    echo from its temporary address (RFC 6724 rule 7), which the discovery test checks.
    """
    ns = lab.host(DOUBLE).ns
    netns.run(ns, ["ip", "-6", "addr", "add", f"{STATIC_IP}/64", "dev", "eth0", "nodad"])
    # And ``math-pc63`` holds the registered router's link-local address, where its RAs send
    # every host's default route: the IPv6 gateway impersonated.
    gateway = eui64_link_local(lab.host(ROUTER).mac)
    netns.run(lab.host(IMPOSTOR).ns, ["ip", "-6", "addr", "add", f"{gateway}/64", "dev", "eth0",
                                     "nodad"])  # fmt: skip


def _radvd(host: str, prefix: str, work: Path) -> daemons.DaemonPlan:
    """radvd with Debian's defaults: the least config it runs with (interface and a prefix)."""
    conf = work / f"{host}-radvd.conf"
    text = f"interface eth0 {{\n    AdvSendAdvert on;\n    prefix {prefix} {{\n    }};\n}};\n"
    argv = ("radvd", "--nodaemon", "-C", str(conf), "-p", str(work / f"{host}-radvd.pid"), "-m",
            "stderr")  # fmt: skip
    return daemons.DaemonPlan(host, "radvd", argv, ready=(), files={str(conf): text})


def _dnsmasq6(
    host: str, *options: str, interfaces: tuple[str, ...] = ("eth0",)
) -> daemons.DaemonPlan:
    """dnsmasq for DHCPv6 at its defaults: no DNS, no config file, in the foreground."""
    argv = ("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts",
            "--no-resolv", "--pid-file=", "--user=root", "--log-facility=-", "--port=0",
            *(f"--interface={name}" for name in interfaces), *options)  # fmt: skip
    return daemons.DaemonPlan(host, "dnsmasq dhcpv6", argv, ready=(("udp6", 547),))


@dataclass(frozen=True)
class RelayedLink:
    """A client link whose DHCPv6 server sits behind the gateway's relay agent (RFC 8415 19)."""

    scanner_ns: str
    router_mac: str  # the gateway: relays on the client link
    server_mac: str  # the DHCPv6 server, on the link behind the gateway


@contextlib.contextmanager
def relayed_dhcp6(work: Path) -> Iterator[RelayedLink]:
    """The scanner's link (fd00:a::/64), a gateway relaying DHCPv6 with dnsmasq's relay to a
    dnsmasq server on fd00:b::/64: the way a campus gives addresses from one central server."""
    tag = f"{os.getpid() % 0xFFFF:04x}{secrets.token_hex(2)}"
    scan_ns, router_ns, server_ns = (f"ipg-{tag}-{name}" for name in ("r6scan", "r6gw", "r6srv"))
    router_mac, server_mac = "02:6c:00:00:00:fe", "02:6c:00:00:01:02"
    started: list[daemons.Daemon] = []
    try:
        netns.batch_netns([f"netns add {ns}" for ns in (scan_ns, router_ns, server_ns)])
        made = [
            (scan_ns, f"link add eth0 address 02:6c:00:00:00:01 type veth peer name eth0 netns "
                      f"{router_ns}"),
            (router_ns, f"link add eth1 type veth peer name eth0 netns {server_ns}"),
        ]  # fmt: skip
        for ns, line in made:  # every link first: IPv6 is switched on for those there
            netns.run_many([(netns.ip_batch_argv(ns), line + "\n")])
        configured = {
            scan_ns: [],
            router_ns: [f"link set eth0 address {router_mac}", "addr add fd00:a::1/64 dev eth0",
                        "addr add fd00:b::1/64 dev eth1", "link set eth1 up"],
            server_ns: [f"link set eth0 address {server_mac}", "addr add fd00:b::2/64 dev eth0"],
        }  # fmt: skip
        for ns, lines in configured.items():
            netns.run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"])
            lines = [*lines, "link set lo up", "link set eth0 up"]
            if ns == server_ns:
                lines.append("route add fd00:a::/64 via fd00:b::1")
            netns.run_many([(netns.ip_batch_argv(ns), "\n".join(lines) + "\n")])
        netns.run(router_ns, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        # Past DAD on every interface: a tentative address binds nothing.
        _wait_for_addresses([scan_ns, router_ns, server_ns], dev=())
        plans = [
            (server_ns, _dnsmasq6("r6srv", "--dhcp-range=fd00:a::100,fd00:a::1ff",
                                  f"--dhcp-leasefile={work / 'r6srv.leases'}")),
            (router_ns, _dnsmasq6("r6gw", "--dhcp-relay=fd00:a::1,fd00:b::2",
                                  interfaces=("eth0", "eth1"))),
        ]  # fmt: skip
        started += [daemons.start(plan, ns, work) for ns, plan in plans]
        daemons.wait_ready(started)
        yield RelayedLink(scan_ns, router_mac, server_mac)
    finally:
        daemons.stop(started)
        netns.destroy([scan_ns, router_ns, server_ns])


def _fake_router6() -> str:
    """Debian names THC-IPv6's tools atk6-*; upstream builds name them plainly."""
    return shutil.which("atk6-fake_router6") or "fake_router6"


def _wait_for_addresses(
    namespaces: list[str],
    timeout: float = 10.0,
    wanted: str = "inet6 fe80::",
    dev: tuple[str, ...] = ("dev", "eth0"),
) -> None:
    """Until ``wanted`` shows and duplicate address detection is over (on ``dev``, () for every
    interface): a tentative address neither sends nor answers."""
    deadline = time.monotonic() + timeout
    for ns in namespaces:
        while True:
            shown = netns.run(ns, ["ip", "-6", "addr", "show", *dev]).stdout
            if "inet6 fe80::" in shown and wanted in shown and "tentative" not in shown:
                break
            if time.monotonic() > deadline:
                raise netns.LabError(f"{ns}: IPv6 addresses still tentative:\n{shown}")
            time.sleep(0.1)


@dataclass(frozen=True)
class ManyHosts:
    """A link with ``count`` IPv6 hosts: a scanner namespace and one namespace of macvlans."""

    scanner_ns: str
    hosts_ns: str
    macs: tuple[str, ...]  # one per host; each host's only address is its link-local one

    @property
    def link_locals(self) -> set[str]:
        """Every host's address (EUI-64 link-local from its MAC)."""
        return {eui64_link_local(mac) for mac in self.macs}


@contextlib.contextmanager
def many_hosts(count: int = 1000, *, scanner_ip: str = "198.18.0.2/24") -> Iterator[ManyHosts]:
    """Build ``count`` real IPv6 hosts cheaply, yield them, always tear everything down.

    One veth pair joins the scanner's ``eth0`` to the hosts' namespace, where each host is a
    macvlan of the peer with its own MAC and the kernel's link-local address (DAD at its
    defaults): every host answers echo and Neighbor Solicitations from the kernel, as a PC does.
    The peer itself has IPv6 off (it is the wire, not a host).

    Each host knows the scanner's MAC beforehand (a permanent neighbour entry): the kernel's
    neighbour table is shared by every namespace and holds 1,024 resolvable entries (gc_thresh3,
    a root-namespace setting the lab must not change), so a thousand hosts resolving the scanner
    at once would overflow it, which real hosts, each with a table of its own, never do.
    """
    if not 1 <= count <= 4000:
        raise ValueError(f"count must be 1..4000, not {count}")
    tag = f"{os.getpid() % 0xFFFF:04x}{secrets.token_hex(2)}"
    scan_ns, hosts_ns = f"ipg-{tag}-v6scan", f"ipg-{tag}-v6hosts"
    macs = tuple(f"02:6b:00:00:{n >> 8:02x}:{n & 0xFF:02x}" for n in range(1, count + 1))
    scanner_mac = "02:6b:ff:00:00:02"
    scanner_ll = eui64_link_local(scanner_mac)
    try:
        netns.batch_netns([f"netns add {scan_ns}", f"netns add {hosts_ns}"])
        scanner = [
            f"link add eth0 address {scanner_mac} type veth peer name eth0 netns {hosts_ns}",
            *([f"addr add {scanner_ip} dev eth0"] if scanner_ip else []),  # "": IPv6 only
            "link set eth0 up",
            "link set lo up",
        ]
        netns.run_many([(netns.ip_batch_argv(scan_ns), "\n".join(scanner) + "\n")])
        netns.run(hosts_ns, ["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
        lines = ["link set eth0 up"]
        for k, mac in enumerate(macs):
            lines.append(f"link add link eth0 name h{k} address {mac} type macvlan mode bridge")
            lines.append(f"link set h{k} up")
            lines.append(f"neigh replace {scanner_ll} lladdr {scanner_mac} dev h{k} nud permanent")
        netns.run_many([(netns.ip_batch_argv(hosts_ns), "\n".join(lines) + "\n")], timeout=120)
        _wait_for_addresses_of([scan_ns, hosts_ns], count)
        yield ManyHosts(scan_ns, hosts_ns, macs)
    finally:
        netns.destroy([scan_ns, hosts_ns])


def _wait_for_addresses_of(namespaces: list[str], count: int, timeout: float = 60.0) -> None:
    """Until every link-local address is past DAD (``count`` of them among the hosts)."""
    deadline = time.monotonic() + timeout
    for ns in namespaces:
        while True:
            shown = netns.run(ns, ["ip", "-6", "-o", "addr", "show", "scope", "link"]).stdout
            ready = shown.count("inet6 fe80::") - shown.count("tentative")
            if "tentative" not in shown and ready >= (1 if "scan" in ns else count):
                break
            if time.monotonic() > deadline:
                raise netns.LabError(f"{ns}: {ready} link-local addresses ready, not {count}")
            time.sleep(0.2)
