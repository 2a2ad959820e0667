"""Section snmp: ipguard's SNMP polling side by side with net-snmp's `snmpbulkwalk`, and at scale.

    python -m bench --only snmp

In one lab namespace (loopback only):
- a router: net-snmp's snmpd serving the namespace's real kernel ARP table, 25,000 entries;
- 50 switches: tests/lab/snmp_responder.py agents, each with a 1,000-MAC Q-BRIDGE table.

Side by side (issue 15: within 1.5x): `ipguard snmp walk` of the router, and of one switch,
against `snmpget` of the system group and `snmpbulkwalk` of each column it read, the fallback
tables included, one after the other (what a script would do), at whichever of -Cr10, -Cr50 and
-Cr100 is fastest on that agent.
At scale (< 10 s, < 200 MB): one process polls the router and the 50 switches at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Log, Section, Target, ipguard_argv, run_child, table
from tests.lab import netns

ROUTER_ARP = 25_000
SWITCHES, SWITCH_FDB = 50, 1_000
FIRST_SWITCH_PORT = 2001
WITHIN = 1.5
SCALE_SECONDS, SCALE_MB = 10.0, 200.0
# What `ipguard snmp walk` reads (scanners.snmp, roles router and switch), for snmpbulkwalk to read
# the same: the system group by GET, then these columns (LLDP: the ones the parser reads) …
SYSTEM = ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0")
COLUMNS = (
    "1.3.6.1.2.1.31.1.1.1.1",
    "1.3.6.1.2.1.2.2.1.2",
    "1.3.6.1.2.1.4.35.1.4",
    "1.3.6.1.2.1.4.35.1.6",
    "1.3.6.1.2.1.17.1.4.1.2",
    "1.3.6.1.2.1.17.7.1.4.2.1.3",
    "1.3.6.1.2.1.17.7.1.2.2.1.2",
    "1.3.6.1.2.1.17.7.1.2.2.1.3",
    *(f"1.0.8802.1.1.2.1.3.7.1.{n}" for n in (2, 3, 4)),
    *(f"1.0.8802.1.1.2.1.4.1.1.{n}" for n in (4, 5, 6, 7, 9)),
)
# … and the fallbacks it walks when the first table is empty: ipNetToMediaTable when
# ipNetToPhysicalTable is (the switch), dot1dTpFdbTable when dot1qTpFdbTable is (the router),
# and on a Huawei (neither bench agent is one) hwDynFdbTable when both are.
MEDIA_COLUMNS = ("1.3.6.1.2.1.4.22.1.2", "1.3.6.1.2.1.4.22.1.4")
BRIDGE_COLUMNS = ("1.3.6.1.2.1.17.4.3.1.2", "1.3.6.1.2.1.17.4.3.1.3")
HUAWEI_COLUMNS = ("1.3.6.1.4.1.2011.5.25.42.2.1.3.1.4",)  # hwDynFdbPort: Huawei, both empty
# ipguard asks for 10 rows of a column, then twice as many each request up to 100; snmpbulkwalk
# asks for the same number every time, and which number is fastest depends on the agent (past the
# end of a short column it must compute rows nobody reads: after ifDescr, net-snmp's slow
# atTable). It is timed at its default (10), 50 and 100, and the fastest is the one compared.
NET_SNMP_REPETITIONS = (10, 50, 100)
_POLL = """
import json, sys, time
from ipguard.model import SnmpDevice
from ipguard.scanners.snmp import SnmpPoller
devices = [SnmpDevice(**d) for d in json.load(open(sys.argv[1]))]
started = time.perf_counter()
polls = SnmpPoller(devices, timeout=5.0, retries=1).poll()
print(json.dumps({"seconds": time.perf_counter() - started,
                  "answered": sum(p.answered for p in polls),
                  "arp": sum(len(p.arp) for p in polls), "fdb": sum(len(p.fdb) for p in polls),
                  "warnings": [p.warning for p in polls if p.warning]}))
"""


@contextlib.contextmanager
def _agents(workdir: Path, community: str) -> Iterator[str]:
    """The namespace with the router's snmpd and the switches' responders; always torn down."""
    ns = f"ipg-{secrets.token_hex(3)}-snmpbench"
    netns.batch_netns([f"netns add {ns}"])
    try:
        lines = ["link set lo up", "link add d0 type veth peer name d1", "link set d0 up"]
        lines += ["link set d1 up", "addr add 198.18.128.1/17 dev d0"]
        for n in range(ROUTER_ARP):
            value = (198 << 24 | 18 << 16 | 128 << 8) + n + 2
            ip = ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))
            lladdr = f"02:01:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}:01"
            lines.append(f"neigh add {ip} lladdr {lladdr} dev d0 nud permanent")
        netns.run_many([(netns.ip_batch_argv(ns), "\n".join(lines) + "\n")], timeout=120)
        conf = workdir / "snmpd.conf"
        conf.write_text(f"agentAddress udp:127.0.0.1:161\nrocommunity {community} 127.0.0.1\n")
        snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
        argv = ["env", f"SNMP_PERSISTENT_DIR={workdir}", "MIBS=", snmpd, "-f", "-C", "-c"]
        argv += [str(conf), "-Lf", str(workdir / "snmpd.log")]
        _spawn(ns, argv)
        for port in range(FIRST_SWITCH_PORT, FIRST_SWITCH_PORT + SWITCHES):
            _spawn(ns, [sys.executable, "-m", "tests.lab.snmp_responder", "--listen",
                        f"127.0.0.1:{port}", "--community", community, "--rows", "28",
                        "--fdb", str(SWITCH_FDB)])  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            bound = netns.run(ns, ["ss", "-Hlun"], check=False).stdout
            if bound.count("127.0.0.1:") >= SWITCHES + 1:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the bench's SNMP agents did not start")
        yield ns
    finally:
        netns.destroy([ns])


def _spawn(ns: str, argv: list[str]) -> None:
    subprocess.Popen(
        netns.exec_argv(ns, argv),
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _side_by_side(
    ns: str, port: int, env: dict[str, str], runs: int
) -> tuple[float, float, int, int]:
    """Median wall seconds of `ipguard snmp walk`, and of snmpget + snmpbulkwalk of what it read
    at net-snmp's fastest max-repetitions; the rows walked and that max-repetitions.

    The net-snmp commands run one after the other, each with its own start-up, as a script
    would run them; ipguard's start-up is counted the same way (a fresh process per walk).
    """
    ours: list[float] = []
    theirs: dict[int, list[float]] = {repetitions: [] for repetitions in NET_SNMP_REPETITIONS}
    rows = 0
    walk = ipguard_argv("snmp", "walk", "127.0.0.1", "--port", str(port), "--community-env")
    # One untimed walk first: snmpd fills its ARP cache on the first request, and whichever
    # tool came first would pay for it.
    run_child(netns.exec_argv(ns, [*walk, "C", "--format", "json"]), env=env)
    for _ in range(runs):
        child = run_child(netns.exec_argv(ns, [*walk, "C", "--format", "json"]), env=env)
        if child.returncode != 0:
            raise RuntimeError(f"ipguard snmp walk failed: {child.stderr[-300:]}")
        document = json.loads(child.stdout)
        rows = len(document["arp"]) + len(document["fdb"])
        ours.append(child.wall)
        for repetitions, times in theirs.items():
            times.append(_net_snmp(ns, port, env, _columns(document), repetitions))
    best = min(theirs, key=lambda repetitions: statistics.median(theirs[repetitions]))
    return statistics.median(ours), statistics.median(theirs[best]), rows, best


def _net_snmp(
    ns: str, port: int, env: dict[str, str], columns: tuple[str, ...], repetitions: int
) -> float:
    """Wall seconds of snmpget of the system group, then snmpbulkwalk of each column."""
    started = time.perf_counter()
    net_snmp = ["-m", "", "-v2c", "-c", env["C"], "-On", f"127.0.0.1:{port}"]
    subprocess.run(
        netns.exec_argv(ns, ["snmpget", *net_snmp, *SYSTEM]),
        capture_output=True, check=True, env=env,
    )  # fmt: skip
    for column in columns:
        subprocess.run(
            netns.exec_argv(ns, ["snmpbulkwalk", f"-Cr{repetitions}", *net_snmp, column]),
            capture_output=True, check=True, env=env,
        )  # fmt: skip
    return time.perf_counter() - started


def _columns(document: dict[str, Any]) -> tuple[str, ...]:
    """The columns ipguard walked for this device, fallbacks included (it walks a fallback table
    only when the first one came back empty)."""
    # Both bench agents fill the first table whenever they have rows (snmpd's ARP table is
    # ipNetToPhysicalTable, the responders' FDB is Q-BRIDGE).
    huawei = document["device"]["sys_object_id"].startswith("1.3.6.1.4.1.2011.")
    return (
        COLUMNS
        + (() if document["arp"] else MEDIA_COLUMNS)
        + (() if document["fdb"] else BRIDGE_COLUMNS)
        + (HUAWEI_COLUMNS if huawei and not document["fdb"] else ())
    )


def snmp_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Section snmp."""
    community = "bench-" + secrets.token_hex(6)
    env = {**os.environ, "C": community, "MIBS": ""}
    with (
        tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp,
        _agents(Path(tmp), community) as ns,
    ):
        router = _side_by_side(ns, 161, env, runs)
        switch = _side_by_side(ns, FIRST_SWITCH_PORT, env, runs)
        for name, (mine, net_snmp, _rows, repetitions) in (("router", router), ("switch", switch)):
            theirs = f"net-snmp -Cr{repetitions} {net_snmp:.2f} s"
            log(f"{name}: ipguard {mine:.2f} s, {theirs}: {mine / net_snmp:.2f}x")
        devices = [
            {"host": "127.0.0.1", "name": "router", "community_env": "C", "roles": ["router"]}
        ]
        devices += [
            {"host": "127.0.0.1", "port": port, "name": f"sw{port}", "community_env": "C",
             "roles": ["switch"]}
            for port in range(FIRST_SWITCH_PORT, FIRST_SWITCH_PORT + SWITCHES)
        ]  # fmt: skip
        (Path(tmp) / "devices.json").write_text(json.dumps(devices))
        scale = run_child(
            netns.exec_argv(ns, [sys.executable, "-c", _POLL, str(Path(tmp) / "devices.json")]),
            env=env,
        )
        if scale.returncode != 0:
            raise RuntimeError(f"the scale poll failed: {scale.stderr[-500:]}")
        polled = json.loads(scale.stdout)
        log(f"scale: {scale.wall:.2f} s, {scale.maxrss_mb:.0f} MB, {polled}")
    rows = [
        ("router, 25,000 ARP entries", f"{router[0]:.2f} s", f"{router[1]:.2f} s (-Cr{router[3]})",
         f"{router[0] / router[1]:.2f}x"),
        ("switch, 1,000 FDB entries", f"{switch[0]:.2f} s", f"{switch[1]:.2f} s (-Cr{switch[3]})",
         f"{switch[0] / switch[1]:.2f}x"),
    ]  # fmt: skip
    markdown = table(
        (
            "device",
            "`ipguard snmp walk`",
            "`snmpget` + `snmpbulkwalk` (same tables, fastest -Cr)",
            "ratio",
        ),
        rows,
    )
    markdown += (
        f"\n\nAt scale: 1 router ({ROUTER_ARP:,} ARP) + {SWITCHES} switches ({SWITCH_FDB:,} FDB "
        f"each) polled by one process in {scale.wall:.2f} s wall, peak {scale.maxrss_mb:.0f} MB; "
        f"{polled['answered']} devices answered, {polled['arp']:,} ARP and {polled['fdb']:,} FDB "
        "rows (the switches are tests/lab/snmp_responder.py agents on the same 2 cores)."
    )
    return Section(
        name="snmp",
        title="SNMP polling (issue 15)",
        markdown=markdown,
        targets=[
            Target(
                "router walk vs snmpbulkwalk",
                f"<= {WITHIN}x",
                rows[0][3],
                router[0] <= WITHIN * router[1],
            ),
            Target(
                "switch walk vs snmpbulkwalk",
                f"<= {WITHIN}x",
                rows[1][3],
                switch[0] <= WITHIN * switch[1],
            ),
            Target(
                "51 devices polled",
                f"< {SCALE_SECONDS:.0f} s, < {SCALE_MB:.0f} MB",
                f"{scale.wall:.2f} s, {scale.maxrss_mb:.0f} MB",
                scale.wall < SCALE_SECONDS and scale.maxrss_mb < SCALE_MB,
            ),
        ],
        data={
            "router": router,
            "switch": switch,
            "scale": polled,
            "scale_wall": scale.wall,
            "scale_mb": scale.maxrss_mb,
        },
    )
