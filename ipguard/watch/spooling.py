"""What a watcher judged while the ledger was unavailable, kept on disk until it is stored.

Each batch the ledger refused is a `watch-*.json` file in the ledger's spool directory
(ipguard.spool): its time, findings, sightings, DHCP offers and fingerprints. The watcher stores
the files itself, oldest first, once the ledger answers again, or when it starts (after a kill -9
during the outage). Scans leave these files alone: they store only `run-*.json`.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ipguard import spool
from ipguard.model import Finding, FindingKind, ScanResult, Severity
from ipguard.scanners.passive import DhcpClient
from ipguard.watch.verdicts import Verdicts

FORMAT = 1
PREFIX = "watch-"


def keep(url: str, site: str, run_id: int, now: datetime, verdicts: Verdicts) -> Path:
    """Write one judged batch to the spool; SpoolError when no spool directory takes it."""
    result = ScanResult(observations=tuple(verdicts.sightings), dhcp_offers=tuple(verdicts.offers))
    document = {
        "format": FORMAT,
        "site": site,
        "run_id": run_id,
        "at": now.isoformat(),
        "findings": [_finding_json(finding) for finding in verdicts.findings],
        "result": spool.result_json(result),
        "clients": [dataclasses.asdict(client) for client in verdicts.clients.values()],
        "ops": [[ip, mac, ops] for (ip, mac), ops in verdicts.ops.items()],
        "senders": [[ip, mac, macs] for (ip, mac), macs in verdicts.senders.items()],
    }
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    return spool.write(url, f"{PREFIX}{site}-{stamp}-{secrets.token_hex(4)}.json", document)


def pending(url: str, site: str) -> list[tuple[Path, datetime, Verdicts]]:
    """The batches of `site` waiting in the spool, oldest first (unreadable files are left)."""
    found = []
    for directory in spool.directories(url):
        try:
            paths = sorted(directory.glob(f"{PREFIX}*.json"))
        except OSError:
            continue
        for path in paths:
            try:
                data = json.loads(path.read_bytes())
                if data.get("format") != FORMAT or data.get("site") != site:
                    continue
                found.append((path, datetime.fromisoformat(data["at"]), _verdicts(data)))
            except spool.UNREADABLE:  # `[]` too: a damaged file never stops the watcher
                continue
    return sorted(found, key=lambda item: item[1])


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "ip": finding.ip,
        "mac": finding.mac,
        "port": finding.port,
        "summary": finding.summary,
        "detail": json.loads(json.dumps(finding.detail, default=str)),
    }


def _verdicts(data: Mapping[str, Any]) -> Verdicts:
    result = spool.result_from_json(data["result"])
    clients = [
        DhcpClient(**{**item, "parameters": tuple(item["parameters"])}) for item in data["clients"]
    ]
    return Verdicts(
        findings=[
            Finding(
                FindingKind(item["kind"]),
                Severity(item["severity"]),
                item["ip"],
                item["mac"],
                item["port"],
                item["summary"],
                item["detail"],
            )
            for item in data["findings"]
        ],
        sightings=list(result.observations),
        offers=list(result.dhcp_offers),
        clients={client.mac: client for client in clients},
        ops={(ip, mac): list(ops) for ip, mac, ops in data["ops"]},
        senders={(ip, mac): list(macs) for ip, mac, macs in data.get("senders", [])},
    )
