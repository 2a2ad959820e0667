"""A watcher whose PostgreSQL server goes silent (its host powered off, a network partition).

A server that restarts closes its connections and refuses new ones: the watcher notices at once.
A server that vanishes answers nothing: each write waited for TCP's own timeouts (minutes), with
the capture and systemd's watchdog stopped meanwhile. The server and the sensor are two lab
namespaces joined by a veth pair; nftables drops the server's IP traffic (ARP still flows, so the
watcher still hears the link); frames come from the server's namespace.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.helpers import env
from tests.lab import netns
from tests.lab.fixtures import requires_lab
from tests.pg import pg_bin, postgres_cluster, socket_url
from tests.watch.lab import IPGUARD

SERVER, SENSOR = "198.18.98.1", "198.18.98.2"
SERVER_MAC = "02:18:98:00:00:01"
BLACKOUT = """
table inet ipg_blackout {
    chain incoming { type filter hook input priority -300; policy drop; }
    chain outgoing { type filter hook output priority -300; policy drop; }
}
"""


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[str, str]]:
    """The database server's namespace and the sensor's, on one veth pair (torn down after)."""
    tag = secrets.token_hex(3)
    db_ns, sensor_ns = f"ipg-{tag}-db", f"ipg-{tag}-sensor"
    netns.batch_netns([f"netns add {db_ns}", f"netns add {sensor_ns}"])
    try:
        link = f"link add eth0 address {SERVER_MAC} type veth peer name eth0 netns {sensor_ns}\n"
        netns.run_many([(netns.ip_batch_argv(db_ns), f"{link}addr add {SERVER}/24 dev eth0\n")])
        up = "link set eth0 up\nlink set lo up\n"
        netns.run_many(
            [
                (netns.ip_batch_argv(db_ns), up),
                (netns.ip_batch_argv(sensor_ns), f"addr add {SENSOR}/24 dev eth0\n{up}"),
            ]
        )
        yield db_ns, sensor_ns
    finally:
        netns.destroy([db_ns, sensor_ns])


def announce(sock: socket.socket, ip: str) -> None:
    """A gratuitous ARP from the server's NIC for `ip`."""
    mac = bytes.fromhex(SERVER_MAC.replace(":", ""))
    address = socket.inet_aton(ip)
    sock.send(b"\xff" * 6 + mac + bytes.fromhex("0806000108000604" "0001") + mac + address
              + bytes(6) + address)  # fmt: skip


@requires_lab("nft", "runuser")
def test_a_silent_ledger_server_stalls_neither_the_capture_nor_the_watchdog(
    tmp_path: Path,
) -> None:
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries are needed")
    with two_hosts() as (db_ns, sensor_ns), postgres_cluster(netns=db_ns, listen=SERVER) as server:
        import psycopg

        here = socket_url(f"{server}/postgres")  # the test reaches the server by its socket
        conninfo = " ".join(here.split("?", 1)[1].split("&")) + " user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute('CREATE DATABASE "ledger"')
        _watch_through_a_blackout(tmp_path, db_ns, sensor_ns, f"{server}/ledger")


def _watch_through_a_blackout(tmp_path: Path, db_ns: str, sensor_ns: str, url: str) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\ninterface = "eth0"\nsubnets = ["198.18.98.0/24"]\nsite = "lab"\n')
    argv = [IPGUARD, "--db", url, "--config", str(config)]
    here = [IPGUARD, "--db", socket_url(url), "--config", str(config)]

    def unregistered() -> set[str]:
        done = subprocess.run([*here, "findings", "list", "--format", "json"], env=env(tmp_path),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        return (
            {f["ip"] for f in json.loads(done.stdout)["findings"]}
            if done.returncode == 0
            else set()
        )

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = Path(f"/tmp/ipg-notify-{os.getpid()}-{time.monotonic_ns()}.sock")
    notify.bind(str(path))
    notify.settimeout(0.5)
    pings: list[float] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                if b"WATCHDOG=1" in notify.recv(4096):
                    pings.append(time.monotonic())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    with netns.inside(db_ns):
        frames = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    frames.bind(("eth0", 0))
    stderr = (tmp_path / "watch.stderr").open("w")
    watcher = subprocess.Popen(
        netns.exec_argv(sensor_ns, [*argv, "watch"]),
        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        # systemd's watchdog at 12 s (the unit's is 30 s): a ping every 6 s.
        env=env(tmp_path, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="12000000"),
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        while "198.18.98.50" not in unregistered() and time.monotonic() < end:
            announce(frames, "198.18.98.50")
            time.sleep(1.0)
        assert "198.18.98.50" in unregistered(), (tmp_path / "watch.stderr").read_text()
        netns.run(db_ns, ["nft", "-f", "-"], input=BLACKOUT)
        silent_at = time.monotonic()
        for second in range(14):
            announce(frames, "198.18.98.51")
            time.sleep(1.0)
            if second == 7:  # kept on disk by now, not held in a TCP wait
                spooled = list((tmp_path / "state").glob("ipguard/spool/*/watch-*.json"))
        lit_at = time.monotonic()
        netns.run(db_ns, ["nft", "delete", "table", "inet", "ipg_blackout"])
        end = time.monotonic() + 60
        while "198.18.98.51" not in unregistered() and time.monotonic() < end:
            time.sleep(1.0)
        assert "198.18.98.51" in unregistered(), (tmp_path / "watch.stderr").read_text()
        watcher.terminate()
        assert watcher.wait(timeout=60) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(timeout=30)
        done.set()
        listener.join(timeout=5)
        notify.close()
        path.unlink(missing_ok=True)
        frames.close()
        stderr.close()
    said = (tmp_path / "watch.stderr").read_text()
    during = [silent_at, *(at for at in pings if silent_at < at < lit_at), lit_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
    assert spooled, f"nothing was spooled 8 s into the server's silence: {said}"
    assert max(gaps) < 12.0, f"the watchdog went unpinged for {max(gaps):.1f} s: {said}"
