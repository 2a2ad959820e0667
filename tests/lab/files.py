"""The files ipguard needs to scan a lab: its ledger (CSV) and its configuration (ipguard.toml).

Both depend only on the scenario, never on the run id, so a lab's ledger is the same on every run.
The ledger holds the legitimate part of the scenario: every registered device, including the ones
that are absent from the network; rogue and unregistered hosts are, by definition, not in it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.lab.scenario import Registration, Scenario

LEDGER_COLUMNS = (
    "ip",
    "mac",
    "hostname",
    "owner",
    "department",
    "location",
    "switch_port",
    "asset_tag",
    "roles",
    "allowed_services",
    "status",
    "isolated",
    "guest_until",
    "approval_ref",
    "notes",
    "site",
)
HOSTNAME_RULE = "^{department}-{asset_tag}$"
DEFAULT_ALLOWED_SERVICES = ("tcp/22",)


def ledger_row(reg: Registration) -> dict[str, str]:
    """One registration as a CSV row in ipguard's ledger format."""
    return {
        "ip": reg.ip,
        "mac": reg.mac,
        "hostname": reg.hostname,
        "owner": reg.owner,
        "department": reg.department,
        "location": reg.location,
        "switch_port": reg.switch_port,
        "asset_tag": reg.asset_tag,
        "roles": ";".join(reg.roles),
        "allowed_services": ";".join(reg.allowed_services),
        "status": reg.status,
        "isolated": "true" if reg.isolated else "false",
        "guest_until": reg.guest_until,
        "approval_ref": reg.approval_ref,
        "notes": reg.notes,
        "site": reg.site,
        "ipv6": ";".join(reg.ipv6),
    }


def write_ledger_csv(scenario: Scenario, path: str | Path) -> Path:
    """Write the scenario's ledger as UTF-8 CSV with the header row ipguard expects."""
    path = Path(path)
    registrations = scenario.registrations()
    # The ipv6 column only in labs that register static IPv6 addresses (the IPv6 lab).
    columns = list(LEDGER_COLUMNS)
    if any(reg.ipv6 for reg in registrations):
        columns.insert(1, "ipv6")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for reg in registrations:
            writer.writerow(ledger_row(reg))
    return path


def config_text(scenario: Scenario, *, interface: str = "eth0") -> str:
    """ipguard.toml for scanning the lab from its scanner namespace."""
    # Sensors of other segments scan with --subnet, which must lie inside the configured subnets.
    sensed = [scenario.segment(sensor.segment).cidr for sensor in scenario.sensors]
    subnets = [scenario.subnet, *scenario.routed_subnets, *sensed]
    dns = [scenario.dns_server] if scenario.dns_server else []
    # json.dumps gives TOML-compatible basic strings and arrays for these simple values.
    return "\n".join(
        [
            f"# ipguard configuration for the lab scenario {scenario.name!r} (tests.lab)",
            "[scan]",
            f"interface = {json.dumps(interface)}",
            f"subnets = {json.dumps(subnets)}",
            *(
                ["# a lab of virtual links in one machine: faster than a real network (README)"]
                if scenario.rate != 2000
                else []
            ),
            f"rate = {scenario.rate}",
            "retries = 1",
            "timeout = 1.0",
            "services = true",
            f"ports = {json.dumps(scenario.ports)}",
            'site = "lab"',
            "",
            "[names]",
            f"dns_servers = {json.dumps(dns)}",
            "",
            "[policy]",
            f"default_allowed_services = {json.dumps(list(DEFAULT_ALLOWED_SERVICES))}",
            f"hostname_rule = {json.dumps(HOSTNAME_RULE)}",
            "",
        ]
    )


def write_config(scenario: Scenario, path: str | Path, *, interface: str = "eth0") -> Path:
    """Write :func:`config_text` to ``path``."""
    path = Path(path)
    path.write_text(config_text(scenario, interface=interface), encoding="utf-8")
    return path
