"""`ipguard watch` against what a real LAN puts on the wire and what its destinations do: a
rogue DHCP server that refuses every client (DHCPNAK), and an alert receiver that never answers.

One lab for the module, its bridge flooding every frame (a mirror port); frames a test makes
itself are built by scapy and sent from a lab host's namespace, to explicit MACs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from tests.hardening.helpers import env
from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.watch.lab import IPGUARD, WATCH_CONFIG, as_hub, background, watch_scenario
from tests.watch.test_watch_lab import DEADLINE, Watching, watched

pytestmark = pytest.mark.lab
LAPTOP_MAC = "00:16:3e:00:00:95"
ATTACKER, ATTACKER_MAC = "198.18.0.66", "02:66:00:00:00:66"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable("dnsmasq", "arping")
    if reason:
        pytest.skip(reason)
    with Lab.build(watch_scenario()) as built:
        as_hub(built)
        yield built


@pytest.fixture
def watching(lab: Lab, tmp_path: Path) -> Iterator[Watching]:
    yield from watched(lab, tmp_path, WATCH_CONFIG.format(subnet=lab.subnet))


def sender(lab: Lab, host: str) -> Callable[[bytes], int]:
    """Send whole Ethernet frames from `host`'s eth0 (the socket closes with the function)."""
    with netns.inside(lab.ns(host)):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("eth0", 0))
    return sock.send


def until(condition: Callable[[], bool], what: str, again: Callable[[], object]) -> None:
    """Do `again` once a second until `condition` holds (DEADLINE)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        again()
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def init_reboot(mac: str, address: str) -> bytes:
    """A rebooted client asking to keep its lease (RFC 2131 INIT-REBOOT): a broadcast REQUEST."""
    return bytes(
        Ether(src=mac, dst=BROADCAST)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, chaddr=bytes.fromhex(mac.replace(":", "")), xid=0x5227)
        / DHCP(options=[("message-type", "request"), ("requested_addr", address), "end"])
    )


def test_a_rogue_server_refusing_every_client_is_rogue_dhcp(lab: Lab, watching: Watching) -> None:
    """An OpenWrt-based router plugged into the LAN: its dnsmasq is authoritative (OpenWrt's
    default), so it NAKs every rebooting client's lease from the real server, and never offers."""
    watching.start()
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file="]
    argv += ["--user=root", "--log-facility=-", "--interface=eth0", "--port=0"]
    argv += ["--dhcp-authoritative", "--dhcp-range=198.18.0.200,198.18.0.210"]
    argv += [f"--dhcp-leasefile={lab.workdir / 'openwrt.leases'}"]
    send = sender(lab, "laptop")
    with background(lab, "attacker", argv):

        def refused() -> bool:
            return any(f["kind"] == "rogue-dhcp" for f in watching.findings())

        until(
            refused,
            "the NAKing server's rogue-dhcp",
            lambda: send(init_reboot(LAPTOP_MAC, "198.18.0.30")),
        )
    (rogue,) = [f for f in watching.findings() if f["kind"] == "rogue-dhcp"]
    assert (rogue["ip"], rogue["mac"], rogue["severity"]) == (ATTACKER, ATTACKER_MAC, "critical")
    assert "refused" in rogue["summary"] and "(DHCPNAK)" in rogue["summary"]
    assert rogue["detail"]["naks"] >= 1 and rogue["detail"]["offered_ips"] == []
    code, err = watching.stop()
    assert code == 0, err


class Dribbler:
    """An alert receiver that accepts, then sends one byte of its answer a second and never
    finishes it (a hung proxy, an overloaded webhook): each read succeeds, so no read timeout
    ever fires. It lets go after `hold` seconds."""

    def __init__(self, lab: Lab, hold: float) -> None:
        with netns.inside(lab.scanner_ns):  # the watcher posts to 127.0.0.1 of its namespace
            self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.hold = hold
        self.accepted: list[float] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.5)
        end = time.monotonic() + self.hold
        held = []
        while time.monotonic() < end:
            try:
                client, _ = self.server.accept()
                self.accepted.append(time.monotonic())
                held.append(client)
            except TimeoutError:
                pass
            for client in held:
                with contextlib.suppress(OSError):
                    client.send(b"H")
        for client in held:
            client.close()
        self.server.close()


def test_an_alert_receiver_that_never_answers_does_not_stall_detection(
    lab: Lab, watching: Watching
) -> None:
    receiver = Dribbler(lab, hold=DEADLINE + 20)
    config = watching.files / "ipguard.toml"
    text = config.read_text().replace("alert_interval = 30", "alert_interval = 1")
    config.write_text(text + f'[alerts]\nurls = ["json://127.0.0.1:{receiver.port}/"]\n')
    watching.start()
    arping = ["arping", "-U", "-c", "1", "-i", "eth0", "-S"]
    lab.run("newcomer", [*arping, "198.18.0.91", "198.18.0.91"], check=False)
    watching.finding("unregistered-host", "198.18.0.91")
    until(lambda: bool(receiver.accepted), "the digest to reach the receiver", lambda: None)
    # The digest hangs; a newcomer's next address is still in the ledger within the deadline.
    lab.run("newcomer", [*arping, "198.18.0.92", "198.18.0.92"], check=False)
    watching.finding("unregistered-host", "198.18.0.92")
    began = time.monotonic()
    code, err = watching.stop()
    assert code == 0, err
    assert time.monotonic() - began < 15, "SIGTERM waited for the hung alert"
    assert "an alert digest has been sending for" in err
    assert "still being sent at exit and is abandoned" in err


def test_a_ledger_locked_by_another_writer_stalls_neither_the_watchdog_nor_the_findings(
    lab: Lab, watching: Watching
) -> None:
    """An import, a prune or an administrator's `sqlite3` shell holds the SQLite ledger's write
    lock for longer than systemd's watchdog: the watcher must go on listening and pinging (else
    systemd kills it as hung) and keep what it saw; stopped meanwhile, it must still stop well
    within systemd's stop timeout (90 s: it waited 30 s per write, four times), and what it kept
    is stored by the next watcher."""
    import sqlite3

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = Path(f"/tmp/ipg-notify-{os.getpid()}-{time.monotonic_ns()}.sock")
    notify.bind(str(path))
    notify.settimeout(0.5)
    pings: list[float] = []

    def listen() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                if b"WATCHDOG=1" in notify.recv(4096):
                    pings.append(time.monotonic())

    done = threading.Event()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        # systemd's watchdog at 4 s: a ping every 2 s, a loop stalled 4 s is killed.
        watching.start(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="4000000")
        holder = sqlite3.connect(watching.files / "ledger.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        locked_at = time.monotonic()
        arping = ["arping", "-U", "-c", "1", "-i", "eth0", "-S", "198.18.0.91", "198.18.0.91"]
        lab.run("newcomer", arping, check=False)
        time.sleep(10)
        stopping = time.monotonic()
        code, err = watching.stop()  # the ledger still locked
        stopped_in = time.monotonic() - stopping
        holder.execute("ROLLBACK")
        holder.close()
        watching.start()
        watching.finding("unregistered-host", "198.18.0.91")
        again, said = watching.stop()
    finally:
        done.set()
        listener.join(timeout=5)
        notify.close()
        path.unlink(missing_ok=True)
    assert code == 0 and again == 0, err + said
    assert stopped_in < 25, f"SIGTERM took {stopped_in:.0f} s with the ledger locked: {err}"
    assert "could not be closed" in err
    during = [locked_at, *(at for at in pings if locked_at < at < stopping), stopping]
    gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
    assert max(gaps) < 4.0, f"the watchdog went unpinged for {max(gaps):.1f} s: {err}"


@pytest.mark.parametrize(
    ("interface", "kind"), [("lo", "loopback"), ("tun0", "no link-layer header")]
)
def test_watch_refuses_an_interface_that_carries_no_ethernet(
    lab: Lab, tmp_path: Path, interface: str, kind: str
) -> None:
    """`--interface lo` or a VPN's tun0 (a typo, a wrong guess): no ARP or DHCP frame ever comes
    there, and a tunnel's packets have no Ethernet header to read claims from. The watcher listened
    forever, saying nothing; it must say so at once, recording no run."""
    if interface == "tun0":
        lab.run("scanner", ["ip", "tuntap", "add", "mode", "tun", "name", "tun0"])
    lab.run("scanner", ["ip", "link", "set", interface, "up"])
    (tmp_path / "ipguard.toml").write_text(WATCH_CONFIG.format(subnet=lab.subnet))
    argv = [
        IPGUARD,
        "--db",
        str(tmp_path / "ledger.db"),
        "--config",
        str(tmp_path / "ipguard.toml"),
    ]
    try:
        done = subprocess.run(
            netns.exec_argv(lab.scanner_ns, [*argv, "watch", "--quiet", "--interface", interface]),
            capture_output=True,
            text=True,
            env=env(tmp_path),
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ipguard watch --interface {interface} listened on instead of refusing it")
    finally:
        if interface == "tun0":
            lab.run("scanner", ["ip", "link", "del", "tun0"], check=False)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"error: interface {interface} is not an Ethernet interface")
    assert f"({kind})" in done.stderr and done.stderr.count("\n") == 1
    listed = subprocess.run(
        [*argv, "runs", "list", "--format", "json"],
        capture_output=True,
        text=True,
        env=env(tmp_path),
    )
    assert listed.stdout.strip() == "[]"


def test_a_sensor_whose_cable_is_pulled_says_so_and_when_it_is_back(
    lab: Lab, watching: Watching
) -> None:
    """The switch port goes down (a pulled cable, a port shut by the switch): the interface stays
    up but has no carrier, and nothing more arrives. Silence must not pass for a quiet LAN."""
    watching.start()
    lab.run(lab.switch_ns, ["ip", "link", "set", "p0", "down"])  # the scanner's switch port
    try:
        watching.wait(lambda: "eth0 has no link" in watching.stderr(), "the no-link warning", 20)
    finally:
        lab.run(lab.switch_ns, ["ip", "link", "set", "p0", "up"])
    watching.wait(lambda: "eth0 has its link again" in watching.stderr(), "the link's return", 20)
    arping = ["arping", "-U", "-c", "1", "-i", "eth0", "-S", "198.18.0.97", "198.18.0.97"]
    lab.run("newcomer", arping, check=False)
    watching.finding("unregistered-host", "198.18.0.97")
    code, err = watching.stop()
    assert code == 0, err
    assert err.count("has no link") == 1  # said once, not at every check


def test_the_gateway_claimed_for_the_broadcast_mac_is_a_spoof(lab: Lab, watching: Watching) -> None:
    """ARP naming ff:ff:ff:ff:ff:ff (or a multicast or zero MAC) for the gateway: Linux takes it
    into its cache like any other, so the PC's traffic to the gateway is flooded to every switch
    port, the attacker's too (or black-holed). The watcher took such a frame for "no device" and
    let it pass."""
    gateway, pc = "198.18.0.1", "198.18.0.20"
    watching.start()
    send = sender(lab, "attacker")
    poison = Ether(src=ATTACKER_MAC, dst=BROADCAST) / ARP(
        op=1, hwsrc=BROADCAST, psrc=gateway, hwdst="00:00:00:00:00:00", pdst=pc
    )

    def poisoned() -> bool:
        shown = lab.run("math-pc01", ["ip", "neigh", "show", gateway], check=False).stdout
        return BROADCAST in shown

    until(poisoned, "the PC's cache to take the broadcast MAC", lambda: send(bytes(poison)))
    spoof = watching.finding("ip-mac-mismatch", gateway, BROADCAST)
    assert spoof["severity"] == "critical"
    shown = json.loads(
        watching.cli("findings", "show", str(spoof["id"]), "--format", "json").stdout
    )
    assert ATTACKER_MAC in json.dumps(shown)  # the frame's source, the port to look at
    code, err = watching.stop()
    assert code == 0, err


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime")
def test_a_watcher_whose_clock_is_wrong_may_not_write_a_shared_ledger(
    lab: Lab, tmp_path: Path, postgres_server: str
) -> None:
    """A sensor whose hardware clock keeps China's local time read as UTC (eight hours ahead):
    scans refuse such a clock on a shared PostgreSQL ledger, and so must a watcher, whose every
    sighting and finding would be dated in the future in every sensor's history."""
    from tests.pg import create_database, socket_url

    url = socket_url(create_database(postgres_server))  # reachable from the lab's namespaces
    (tmp_path / "ipguard.toml").write_text(WATCH_CONFIG.format(subnet=lab.subnet))
    argv = [IPGUARD, "--db", url, "--config", str(tmp_path / "ipguard.toml")]
    skewed = ["faketime", "-f", "+8h", *argv, "watch", "--quiet"]
    try:
        done = subprocess.run(
            netns.exec_argv(lab.scanner_ns, skewed),
            capture_output=True,
            text=True,
            env=env(tmp_path, TZ="Asia/Shanghai"),
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a watcher whose clock is 8 h ahead watched on, writing the shared ledger")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: this sensor's clock (")
    assert "UTC) is 8 h ahead of the ledger server's (" in done.stderr
    assert done.stderr.rstrip().endswith("and start watching again")
    listed = subprocess.run(
        [*argv, "runs", "list", "--format", "json"],
        capture_output=True,
        text=True,
        env=env(tmp_path),
    )
    assert json.loads(listed.stdout) == []
