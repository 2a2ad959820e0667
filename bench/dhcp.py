"""Section: DHCP detection rate, each kind of lab DHCP server over 20 consecutive scans.

    python -m bench --only dhcp

The DHCP lab (tests.lab.dhcp_lab: the authorised dnsmasq plus two stock dnsmasq, ISC Kea, a
dnsmasq answering after 4 s and a server that unicasts its OFFER, all on one link) is built, its
ledger imported, and `ipguard scan --no-services` runs 20 times in the lab's scanner namespace.
Each scan must report every rogue as `rogue-dhcp` (and never the authorised server); the offer
latencies come from the findings' `seconds_to_offer`. The scans run back to back: each probe has
a new client MAC, and dnsmasq pings again for nearly every one (a 0 s minimum for a dnsmasq row is
a scan that met its recent-ping cache, PING_CACHE_TIME 30 s).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Log, Section, Target, ipguard_in, table

SCANS = 20
SCAN_LIMIT = 300.0


def _scans(log: Log) -> tuple[list[dict[str, list[float]]], list[str], str]:
    """Per scan, the first-offer latencies of every server reported as rogue-dhcp, by host name."""
    from tests.lab.builder import Lab
    from tests.lab.dhcp_lab import VARIANTS, dhcp_servers

    found: list[dict[str, list[float]]] = []
    with Lab.build(dhcp_servers()) as lab, tempfile.TemporaryDirectory(prefix="ipg-bench-") as tmp:
        work = Path(tmp)
        lab.write_ledger_csv(work / "ledger.csv")
        lab.write_config(work / "ipguard.toml")
        ipguard_in(work, "ledger", "import", str(work / "ledger.csv"))
        names = {host.ip: host.name for host in lab.hosts}
        for k in range(SCANS):
            scan = ipguard_in(
                work,
                "scan",
                "--no-services",
                "--format",
                "json",
                ns=lab.scanner_ns,
                timeout=SCAN_LIMIT,
            )
            findings = json.loads(scan.stdout)["findings"]
            seen = {
                names.get(f["ip"], f["ip"]): f["detail"].get("seconds_to_offer") or []
                for f in findings
                if f["kind"] == "rogue-dhcp"
            }
            found.append(seen)
            log(f"dhcp scan {k + 1}/{SCANS}: {len(seen)} rogue servers in {scan.wall:.1f} s")
        authorised = next(h.name for h in lab.hosts if h.name not in VARIANTS)
    return found, list(VARIANTS), authorised


def dhcp_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Detection counts and offer latencies of every lab DHCP server over 20 scans."""
    found, variants, authorised = _scans(log)
    from tests.lab.dhcp_lab import VARIANTS

    rows = []
    counts = {}
    for name in [*variants, authorised]:
        hits = [scan[name] for scan in found if name in scan]
        counts[name] = len(hits)
        first = [min(latencies) for latencies in hits if latencies]
        kind, delay, _octet = VARIANTS.get(name, ("dnsmasq (authorised)", 0, 0))
        what = f"{kind}, --dhcp-reply-delay={delay}" if delay else kind
        spread = (
            f"{min(first):.2f} / {statistics.median(first):.2f} / {max(first):.2f}"
            if first
            else "–"
        )
        rows.append([name, what, f"{len(hits)}/{len(found)}", spread])
    detected = all(counts[name] == len(found) for name in variants)
    clean = counts[authorised] == 0
    measured = ", ".join(f"{name} {counts[name]}/{len(found)}" for name in variants)
    text = "\n\n".join(
        [
            table(
                ["server", "kind", "reported rogue-dhcp", "first offer s (min / median / max)"],
                rows,
                "llrr",
            ),
            f"{len(found)} consecutive `ipguard scan --no-services` runs of the DHCP lab "
            "(tests.lab.dhcp_lab), back to back, default `dhcp_wait` (6 s); the number of runs "
            f"per measurement does not apply. The authorised server ({authorised}) must never be "
            "reported. Latency: seconds from the probe's first DISCOVER to the server's first "
            "OFFER, from the findings' `seconds_to_offer`.",
        ]
    )
    return Section(
        name="dhcp",
        title="6. DHCP detection rate, each lab DHCP server over 20 scans",
        markdown=text,
        targets=[
            Target(
                "every DHCP server variant reported as rogue-dhcp",
                f"{len(found)}/{len(found)} scans each, authorised server never",
                f"{measured}; authorised {counts[authorised]}",
                detected and clean,
            )
        ],
        data={"scans": found},
    )
