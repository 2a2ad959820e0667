"""Section: IPv6 discovery of a link with 1,000 hosts, against THC-IPv6's alive6 and nmap.

    python -m bench --only ipv6

Needs root, `ip`, `atk6-alive6` (Debian's thc-ipv6) and `nmap`. The link is
`tests.lab.ipv6_lab.many_hosts`: a scanner namespace on a veth pair whose peer carries 1,000
macvlans in one namespace, each a real host of the kernel with its own MAC and link-local address.

Each tool's wall time (median of the runs) and the hosts it found (distinct link-local addresses
of the lab's hosts among what it printed or observed):
- ipguard's discovery (`scanners.ipv6disc.NdpSweep`) in this process, inside the scanner
  namespace: the sweep's own time, at the default rate (2,000 a second), retries and timeout;
- `ipguard scan --phases ipv6` as a command, with `ra_wait = 1` (its shortest): what a person
  runs, with the interpreter's start-up, the ledger, the RS/DHCPv6 window and the findings (every
  host is an unregistered-host: the ledger is empty), after one scan that created the database;
- `atk6-alive6 eth0 ff02::1`: an echo to all nodes, then its fixed wait for replies;
- `nmap -6 -sn --script targets-ipv6-multicast-echo`: the same echo from nmap's script engine.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Log, Section, Target, ipguard_in, run_child, table
from ipguard.scanners.ipv6disc import NdpSweep
from ipguard.scanners.scope import Scope
from tests.lab import netns
from tests.lab.ipv6_lab import ManyHosts, many_hosts

HOSTS = 1000
SUBNET = "198.18.0.0/24"  # the scanner's IPv4 link: the ipv6 phase runs only on a link in scope
LIMIT = 120.0
LINK_LOCAL = re.compile(r"\b(fe80::[0-9a-f:]+)")


def _tools(link: ManyHosts, work: Path) -> dict[str, Callable[[], tuple[float, set[str]]]]:
    """Each tool as one run: (wall seconds, link-local addresses found)."""

    def ipguard_sweep() -> tuple[float, set[str]]:
        with netns.inside(link.scanner_ns):
            result = NdpSweep("eth0", Scope([SUBNET])).discover()
        return result.duration, {seen.ip for seen in result.observations}

    def ipguard_scan() -> tuple[float, set[str]]:
        done = ipguard_in(work, "scan", "--phases", "ipv6", "--format", "json",
                          ns=link.scanner_ns, timeout=LIMIT)  # fmt: skip
        findings = json.loads(done.stdout)["findings"]
        return done.wall, {f["ip"] for f in findings if f["kind"] == "unregistered-host"}

    def command(argv: list[str]) -> Callable[[], tuple[float, set[str]]]:
        def one() -> tuple[float, set[str]]:
            done = run_child(netns.exec_argv(link.scanner_ns, argv), timeout=LIMIT)
            return done.wall, set(LINK_LOCAL.findall(done.stdout))

        return one

    alive6 = shutil.which("atk6-alive6") or "alive6"
    script = "targets-ipv6-multicast-echo"
    nmap = ["nmap", "-6", "-sn", "-n", "-e", "eth0", "--script", script]
    nmap += ["--script-args", f"{script}.interface=eth0"]
    return {
        "ipguard discovery (NdpSweep, in-process)": ipguard_sweep,
        "ipguard scan --phases ipv6 (ra_wait 1 s)": ipguard_scan,
        "atk6-alive6 eth0 ff02::1": command([alive6, "eth0", "ff02::1"]),
        f"nmap -6 -sn --script {script}": command(nmap),
    }


def _config(work: Path) -> None:
    (work / "ipguard.toml").write_text(
        f'[scan]\ninterface = "eth0"\nsubnets = ["{SUBNET}"]\nra_wait = 1.0\nsite = "bench"\n'
    )


def ipv6_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Discovery of 1,000 IPv6 hosts: ipguard, alive6 and nmap, time and hosts found."""
    measured: dict[str, list[tuple[float, int]]] = {}
    with many_hosts(HOSTS) as link, tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        work = Path(tmp)
        _config(work)
        present = link.link_locals
        tools = _tools(link, work)
        # Not measured: the first scan creates the ledger database (the startup section times that).
        tools["ipguard scan --phases ipv6 (ra_wait 1 s)"]()
        for name, tool in tools.items():
            for k in range(runs):
                wall, found = tool()
                measured.setdefault(name, []).append((wall, len(found & present)))
                log(f"ipv6 {name} run {k + 1}/{runs}: {len(found & present)} hosts in {wall:.2f} s")
                time.sleep(1.0)  # the hosts' echo replies of one run must not reach the next
    rows, medians = [], {}
    for name, results in measured.items():
        wall = statistics.median(w for w, _ in results)
        hosts = int(statistics.median(n for _, n in results))
        medians[name] = (wall, hosts)
        spread = f"{min(n for _, n in results)}–{max(n for _, n in results)}"
        rows.append([name, f"{wall:.2f}", f"{hosts}/{HOSTS}", spread, str(len(results))])
    ours, scan = (
        medians["ipguard discovery (NdpSweep, in-process)"],
        medians["ipguard scan --phases ipv6 (ra_wait 1 s)"],
    )
    alive = medians["atk6-alive6 eth0 ff02::1"]
    met = ours[1] >= alive[1] and ours[0] <= alive[0] and scan[0] <= alive[0]
    text = "\n\n".join(
        [
            table(["tool", "wall s (median)", "hosts found", "min–max", "runs"], rows, "lrrrr"),
            f"{HOSTS} IPv6 hosts on one link (tests.lab.ipv6_lab.many_hosts: macvlans of one veth "
            "peer, each a kernel host with its own MAC and link-local address; each knows the "
            "scanner's MAC beforehand, because the kernel's neighbour table, shared by every "
            "namespace, holds 1,024 resolvable entries). Hosts found: distinct link-local "
            "addresses of the lab's hosts in each tool's output. ipguard's discovery is timed "
            "in-process (the sweep's own duration); the scan row is the whole command with its "
            "interpreter, ledger, 1 s RS/DHCPv6 window and findings.",
        ]
    )
    return Section(
        name="ipv6",
        title="IPv6 discovery, 1,000 hosts on one link, vs alive6 and nmap (issue 16)",
        markdown=text,
        targets=[
            Target(
                "IPv6 discovery at least as fast as alive6, same hosts found",
                f"≤ alive6's time ({alive[0]:.2f} s), ≥ its hosts ({alive[1]}/{HOSTS})",
                f"discovery {ours[0]:.2f} s, {ours[1]}/{HOSTS}; "
                f"scan command {scan[0]:.2f} s, {scan[1]}/{HOSTS}",
                met,
            )
        ],
        data={"medians": {name: list(value) for name, value in medians.items()}},
    )
