"""The scale lab: a scanner namespace facing one responder that impersonates up to 65,536 hosts.

Two namespaces joined by a direct veth pair (both ends named eth0): the scanner side holds an
address in the subnet (or, for the routed lab, a /30 link and a route through a gateway the
responder impersonates); the responder side holds no address at all and runs
`tests.lab.scale_responder`, which answers ARP and ICMP echo for the live addresses, each from its
own MAC (`responder_mac`).

    with scale_lab(live=10_000, subnet="198.19.0.0/16") as lab:
        with inside(lab.scanner_ns):
            result = ArpSweep(lab.interface, Scope([lab.subnet])).sweep(...)
        assert result.live == set(lab.live)

Tests get it through the `scale_lab_factory` fixture, which skips when the lab cannot be built
(not root, `ip` or `nft` missing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.lab import netns
from tests.lab.scale_responder import MAX_ADDRESSES, responder_mac

__all__ = [
    "ScaleLab",
    "add_loss",
    "lab_unavailable",
    "link_loss",
    "remove_loss",
    "responder_mac",
    "scale_lab",
    "scale_lab_factory",
]

LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
INTERFACE = "eth0"
# The routed lab's scanner↔gateway link: whichever of these does not overlap the swept subnet.
ROUTED_LINKS = ("198.18.255.252/30", "198.19.255.252/30")


def lab_unavailable(*tools: str) -> str | None:
    """Why the scale lab cannot run here (not root, a tool missing), or None when it can."""
    if os.geteuid() != 0:
        return "the scale lab needs root (network namespaces, raw sockets)"
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            return f"the scale lab needs `{tool}`, which is not installed"
    return None


@dataclass
class ScaleLab:
    """A running scale lab: where the scanner sits and who is supposed to answer."""

    scanner_ns: str
    responder_ns: str
    subnet: str
    scanner_ip: str
    live: tuple[str, ...]  # sorted by address
    second_mac: tuple[str, ...]  # live addresses that also answer from responder_mac(ip, 1)
    repeat: tuple[str, ...]  # live addresses that send each reply twice
    gateway: str | None = None  # routed lab: the next hop the responder impersonates
    interface: str = INTERFACE
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stats_path: Path | None = field(default=None, repr=False)

    @staticmethod
    def mac_for(ip: str, variant: int = 0) -> str:
        """The MAC the responder answers from for `ip` (variant 1: the duplicate's second MAC)."""
        return responder_mac(ip, variant)

    def responder_stats(self) -> dict[str, int]:
        """The responder's counters now: requests seen, replies sent, losses, kernel drops."""
        assert self._process is not None and self._stats_path is not None
        before = self._stats_path.stat().st_mtime_ns if self._stats_path.exists() else 0
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if self._stats_path.exists() and self._stats_path.stat().st_mtime_ns != before:
                break
            time.sleep(0.01)
        stats: dict[str, int] = json.loads(self._stats_path.read_text())
        return stats

    def run(self, argv: list[str], *, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """Run a command in the scanner namespace (e.g. arp-scan), capturing its output."""
        return netns.run(self.scanner_ns, argv, timeout=timeout, check=False)


@contextlib.contextmanager
def scale_lab(
    *,
    subnet: str = "198.19.0.0/16",
    live: int | Collection[str] = 10_000,
    second_mac: int | Collection[str] = 0,
    repeat: int | Collection[str] = 0,
    loss: float = 0.0,
    delay: float = 0.0,
    ttl: int = 64,
    routed: bool = False,
    seed: int = 1,
) -> Iterator[ScaleLab]:
    """Build a scale lab, start its responder, yield it, and always tear it all down.

    `live` is a count of addresses picked at random (seeded) or the addresses themselves;
    `second_mac` and `repeat` likewise pick among the live ones. `loss` is the probability that
    the responder leaves one reply unsent, `delay` holds every reply back that many seconds, `ttl`
    is the TTL of echo replies. `routed` puts the subnet behind a gateway instead of on the
    scanner's link (for the ICMP sweep: no neighbour entry per target).
    """
    reason = lab_unavailable()
    if reason:
        raise netns.LabError(reason)
    net = ipaddress.IPv4Network(subnet)
    if not net.subnet_of(LAB_NETWORK) or net.num_addresses > MAX_ADDRESSES:
        raise ValueError(f"{subnet}: the scale lab uses at most a /16 inside {LAB_NETWORK}")
    rng = random.Random(seed)
    scanner_ip, scanner_cidr, gateway, hosts = _addressing(net, routed)
    live_offsets = _pick(net, hosts, live, rng)
    second_offsets = _pick(net, live_offsets, second_mac, rng)
    repeat_offsets = _pick(net, live_offsets, repeat, rng)

    tag = f"{os.getpid() % 0xFFFF:04x}{secrets.token_hex(2)}"
    scan_ns, resp_ns = f"ipg-{tag}-scan", f"ipg-{tag}-resp"
    workdir = Path(tempfile.mkdtemp(prefix=f"ipg-{tag}-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        netns.batch_netns([f"netns add {scan_ns}", f"netns add {resp_ns}"])
        _build_link(scan_ns, resp_ns, scanner_cidr, gateway, subnet)
        spec = {
            "interface": INTERFACE,
            "subnet": str(net),
            "live": sorted(live_offsets),
            "second_mac": sorted(second_offsets),
            "repeat": sorted(repeat_offsets),
            "loss": loss,
            "delay": delay,
            "ttl": ttl,
            "gateway": gateway,
            "seed": seed,
            "stats_path": str(workdir / "stats.json"),
            "parent": os.getpid(),
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        process = _start_responder(resp_ns, workdir)
        yield ScaleLab(
            scanner_ns=scan_ns,
            responder_ns=resp_ns,
            subnet=str(net),
            scanner_ip=scanner_ip,
            live=_addresses(net, live_offsets),
            second_mac=_addresses(net, second_offsets),
            repeat=_addresses(net, repeat_offsets),
            gateway=gateway,
            _process=process,
            _stats_path=workdir / "stats.json",
        )
    finally:
        if process is not None:
            _stop(process)
        netns.destroy([scan_ns, resp_ns])
        shutil.rmtree(workdir, ignore_errors=True)


def add_loss(ns: str, percent: float, *, device: str = INTERFACE, hook: str = "ingress") -> None:
    """Drop `percent` % of the frames crossing `device` in namespace `ns`, at random (nftables).

    hook "ingress" drops what arrives (replies, on the scanner side), "egress" what leaves (probes).
    Note that packet sockets bound to all protocols (libpcap: arp-scan, nmap) see an arriving frame
    before the ingress hook drops it; "egress" loss affects every scanner alike.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"loss must be a percentage, not {percent}")
    if hook not in ("ingress", "egress"):
        raise ValueError(f"hook must be ingress or egress, not {hook!r}")
    threshold = round(percent * 100)  # in 1/10,000ths: 2 % → 200, 0.25 % → 25
    rules = f"""
table netdev ipg_loss_{hook} {{
    chain {hook} {{
        type filter hook {hook} device {device} priority 0; policy accept;
        numgen random mod 10000 < {threshold} drop
    }}
}}
"""
    netns.run(ns, ["nft", "-f", "-"], input=rules)


def remove_loss(ns: str, *, hook: str = "ingress") -> None:
    """Remove the loss `add_loss` put on `ns` (nothing happens when there is none)."""
    netns.run(ns, ["nft", "delete", "table", "netdev", f"ipg_loss_{hook}"], check=False)


@contextlib.contextmanager
def link_loss(
    ns: str, percent: float, *, device: str = INTERFACE, hook: str = "ingress"
) -> Iterator[None]:
    """Random loss on `device` in `ns` for the duration of the block."""
    add_loss(ns, percent, device=device, hook=hook)
    try:
        yield
    finally:
        remove_loss(ns, hook=hook)


@pytest.fixture
def scale_lab_factory() -> Iterator[Callable[..., ScaleLab]]:
    """A function building scale labs (same arguments as `scale_lab`); all torn down after the test.

    Skips the test when the lab cannot run here.
    """
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:

        def build(**kwargs: Any) -> ScaleLab:
            return stack.enter_context(scale_lab(**kwargs))

        yield build


def _addressing(net: ipaddress.IPv4Network, routed: bool) -> tuple[str, str, str | None, range]:
    """The scanner's address (and CIDR), its gateway when routed, and the offsets hosts may use."""
    if routed:
        link = next(
            ipaddress.IPv4Network(c)
            for c in ROUTED_LINKS
            if not ipaddress.IPv4Network(c).overlaps(net)
        )
        scanner_ip = str(link[1])
        return (
            scanner_ip,
            f"{scanner_ip}/{link.prefixlen}",
            str(link[2]),
            range(1, net.num_addresses - 1),
        )
    scanner_ip = str(net[-2])
    # The scanner holds the last host address.
    return scanner_ip, f"{scanner_ip}/{net.prefixlen}", None, range(1, net.num_addresses - 2)


def _pick(
    net: ipaddress.IPv4Network,
    among: Collection[int],
    wanted: int | Collection[str],
    rng: random.Random,
) -> set[int]:
    """Offsets into `net`: `wanted` of `among` at random, or the offsets of the given addresses."""
    if isinstance(wanted, int):
        if wanted > len(among):
            raise ValueError(f"cannot pick {wanted} addresses among {len(among)} in {net}")
        return set(rng.sample(sorted(among), wanted))
    offsets = {int(ipaddress.IPv4Address(ip)) - int(net.network_address) for ip in wanted}
    strays = [ip for ip in wanted if ipaddress.IPv4Address(ip) not in net]
    if strays:
        raise ValueError(f"{', '.join(strays)} not in {net}")
    return offsets


def _addresses(net: ipaddress.IPv4Network, offsets: Collection[int]) -> tuple[str, ...]:
    return tuple(str(net[o]) for o in sorted(offsets))


def _build_link(
    scan_ns: str, resp_ns: str, scanner_cidr: str, gateway: str | None, subnet: str
) -> None:
    """The veth pair: made in the scanner namespace, its peer sent straight to the responder's."""
    quiet = [
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ]
    netns.run_many(
        [(netns.exec_argv(scan_ns, quiet), None), (netns.exec_argv(resp_ns, quiet), None)]
    )
    scanner = [
        f"link add {INTERFACE} type veth peer name {INTERFACE} netns {resp_ns}",
        f"addr add {scanner_cidr} dev {INTERFACE}",
        f"link set {INTERFACE} up",
        "link set lo up",
    ]
    if gateway:
        scanner.append(f"route add {subnet} via {gateway} dev {INTERFACE}")
    netns.run_many([(netns.ip_batch_argv(scan_ns), "\n".join(scanner) + "\n")])
    # The responder's end carries no address and no kernel ARP (the responder answers from user
    # space): without `arp off` the kernel would look up a route for every request it is shown,
    # work done on the sending CPU of whichever tool is sweeping.
    responder = [f"link set {INTERFACE} arp off up", "link set lo up"]
    netns.run_many([(netns.ip_batch_argv(resp_ns), "\n".join(responder) + "\n")])


def _start_responder(resp_ns: str, workdir: Path) -> subprocess.Popen[bytes]:
    argv = netns.exec_argv(
        resp_ns, [sys.executable, "-m", "tests.lab.scale_responder", str(workdir / "spec.json")]
    )
    with open(workdir / "responder.err", "wb") as err:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
        )
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.strip() == b"ready":
                return process
        if process.poll() is not None:
            break
    _stop(process)
    detail = (workdir / "responder.err").read_text(errors="replace").strip()[-2000:]
    raise netns.LabError(f"the scale responder did not start in {resp_ns}: {detail or 'no output'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()
