"""A sensor that vanishes mid-scan (power loss, a pulled cable) on a shared PostgreSQL ledger.

The database server and the sensor are two lab namespaces joined by a veth pair; the sensor holds
its site's scan lock over TCP, then goes silent (nftables drops everything in its namespace, as a
machine without power answers nothing). Another sensor of the site must get the lock within the
next cron period, not after the server's TCP defaults (over two hours) have passed.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time

import pytest

from ipguard.errors import LockHeld
from ipguard.ledger.locks import scan_lock
from ipguard.ledger.store import Store
from tests.lab import netns
from tests.lab.fixtures import requires_lab
from tests.pg import pg_bin, postgres_cluster, socket_url

SERVER, SENSOR = "198.18.99.1", "198.18.99.2"
HOLD = """
import sys, time
from ipguard.ledger.locks import scan_lock
from ipguard.ledger.store import Store
with scan_lock(Store(sys.argv[1]), "north"):
    print("locked", flush=True)
    time.sleep(300)
"""
BLACKOUT = """
table inet ipg_blackout {
    chain incoming { type filter hook input priority -300; policy drop; }
    chain outgoing { type filter hook output priority -300; policy drop; }
}
"""


@requires_lab("nft", "runuser")
def test_a_sensor_that_vanishes_loses_its_site_lock_within_a_minute() -> None:
    # Before: the server kept the silent sensor's connection, and with it the advisory lock, for
    # the system's TCP keepalive time (7200 s): every cron scan of the site exited 3 for hours.
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries are needed")
    tag = secrets.token_hex(3)
    db_ns, sensor_ns = f"ipg-{tag}-db", f"ipg-{tag}-sensor"
    netns.batch_netns([f"netns add {db_ns}", f"netns add {sensor_ns}"])
    try:
        link = f"link add eth0 type veth peer name eth0 netns {sensor_ns}\n"
        netns.run_many([(netns.ip_batch_argv(db_ns), f"{link}addr add {SERVER}/24 dev eth0\n")])
        up = "link set eth0 up\nlink set lo up\n"
        netns.run_many(
            [
                (netns.ip_batch_argv(db_ns), up),
                (netns.ip_batch_argv(sensor_ns), f"addr add {SENSOR}/24 dev eth0\n{up}"),
            ]
        )
        with postgres_cluster(netns=db_ns, listen=SERVER) as server:
            _vanishing_sensor(server, sensor_ns)
    finally:
        netns.destroy([db_ns, sensor_ns])


def _vanishing_sensor(server: str, sensor_ns: str) -> None:
    import psycopg

    here = socket_url(f"{server}/postgres")  # this test reaches the server through its socket
    query = here.split("?", 1)[1]
    conninfo = " ".join(query.split("&")) + " user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute('CREATE DATABASE "ledger"')
    Store(socket_url(f"{server}/ledger")).close()  # migrated before the sensor starts
    holder = subprocess.Popen(
        netns.exec_argv(sensor_ns, [sys.executable, "-c", HOLD, f"{server}/ledger"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n", holder.stderr.read() if holder.stderr else ""
        store = Store(socket_url(f"{server}/ledger"))
        with pytest.raises(LockHeld), scan_lock(store, "north"):
            pass  # the lock is really held
        netns.run(sensor_ns, ["nft", "-f", "-"], input=BLACKOUT)
        holder.kill()  # its goodbye (FIN) is dropped: to the server it simply goes silent
        started = time.monotonic()
        with scan_lock(store, "north", wait=60):
            waited = time.monotonic() - started
        assert waited < 45, waited  # about 25 s: keepalive or tcp_user_timeout
        store.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)
