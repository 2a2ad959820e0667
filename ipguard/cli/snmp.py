"""`ipguard snmp walk HOST`: one switch or router read by hand, the way `snmpbulkwalk` is tried."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, replace
from enum import StrEnum
from typing import Annotated, Any

import typer

from ipguard.cli.context import state
from ipguard.cli.output import info, table
from ipguard.errors import InvalidValue, ScanError
from ipguard.escape import json_text
from ipguard.model import SnmpDevice, SnmpPoll

app = typer.Typer(help="Switches and routers over SNMP.", no_args_is_help=True)
# The environment variable a one-off walk reads its community from when given none.
WALK_COMMUNITY_ENV = "IPGUARD_SNMP_WALK_COMMUNITY"


class WalkFormat(StrEnum):
    """Output formats of `snmp walk`."""

    table = "table"
    json = "json"


class Version(StrEnum):
    """SNMP versions."""

    v1 = "1"
    v2c = "2c"
    v3 = "3"


@app.command()
def walk(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The agent's IP address.")],
    port: Annotated[int, typer.Option(help="UDP port.", min=1, max=65535)] = 161,
    version: Annotated[Version, typer.Option("--version", help="SNMP version.")] = Version.v2c,
    community: Annotated[
        str | None, typer.Option(help="Community (visible to other users in `ps`; prefer env).")
    ] = None,
    community_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the community.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="SNMPv3 user.")] = None,
    auth_proto: Annotated[str | None, typer.Option(help="SNMPv3 auth: md5, sha, sha256 …")] = None,
    auth_key_env: Annotated[str | None, typer.Option(help="Variable holding the auth key.")] = None,
    priv_proto: Annotated[
        str | None,
        typer.Option(help="SNMPv3 privacy: des, aes, aes192, aes256, aes192c or aes256c (Cisco)."),
    ] = None,
    priv_key_env: Annotated[str | None, typer.Option(help="Variable holding the priv key.")] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per request (not [snmp] timeout).", min=0.1)
    ] = 2.0,
    retries: Annotated[
        int, typer.Option(help="Retries per request (not [snmp] retries).", min=0, max=10)
    ] = 2,
    max_rows: Annotated[
        int, typer.Option(help="Rows of one column before it counts as endless.", min=1)
    ] = 1_000_000,
    fmt: Annotated[WalkFormat, typer.Option("--format", help="Output format.")] = WalkFormat.table,
) -> None:
    """Read one device's system group, ARP table, forwarding table and LLDP neighbours.

    Credentials come from the options, else from the `[[snmp.devices]]` entry with this host.
    """
    import ipaddress

    from ipguard.scanners.snmp import SnmpPoller, paused_gc
    from ipguard.scanners.snmp_secrets import credentials
    from ipguard.snmpconfig import protocol_name

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidValue(f"snmp walk: {host!r} is not an IP address") from None
    given: dict[str, Any] = {
        "user": user,
        "auth_proto": auth_proto and protocol_name(auth_proto),
        "auth_key_env": auth_key_env,
        "priv_proto": priv_proto and protocol_name(priv_proto),
        "priv_key_env": priv_key_env,
        "community_env": community_env,
    }
    if community is not None:
        os.environ[WALK_COMMUNITY_ENV] = community  # read back by this process only
        given["community_env"] = WALK_COMMUNITY_ENV
    # The configuration is read only when no credentials were given (they replace the entry).
    explicit = any(given.values()) or version != Version.v2c
    device = None if explicit else _configured(ctx, host)
    if device is None:
        device = SnmpDevice(host=host, name=host, port=port, version=version.value)
        device = replace(device, **{key: value for key, value in given.items() if value})
        if device.version != "3" and not device.community_env:
            raise InvalidValue("snmp walk: give --community-env VAR (or --community C)")
    device = replace(device, port=port if port != 161 else device.port, roles=("router", "switch"))
    poller = SnmpPoller([device], timeout=timeout, retries=retries, max_rows=max_rows)
    credentials(device)  # a missing variable or file is an input error, before any packet
    poll = poller.poll()[0]
    if not poll.answered and not (poll.arp or poll.fdb or poll.system.sys_name):
        raise ScanError(f"snmp walk: {poll.warning}")
    with paused_gc():  # a router's table is tens of thousands of rows, none in a cycle
        if fmt == WalkFormat.json:
            # One line: the indented form costs seconds to print for a router's table (hidden
            # characters are escaped all the same).
            sys.stdout.write(json_text(walk_json(poll), indent=None) + "\n")
        else:
            _print_tables(poll)
    if poll.warning:
        info(f"warning: {poll.warning}")
        raise typer.Exit(3)


def _configured(ctx: typer.Context, host: str) -> SnmpDevice | None:
    for device in state(ctx).settings().snmp.devices:
        if device.host == host:
            return device
    return None


def walk_json(poll: SnmpPoll) -> dict[str, Any]:
    """The `snmp walk --format json` document (README, "snmp walk")."""
    from ipguard.addresses import ip_sort_key

    # Rows built field by field: dataclasses.asdict deep-copies, seconds for a router's table.
    return {
        "device": asdict(poll.system),
        "arp": [
            {"ip": e.ip, "mac": e.mac, "if_index": e.if_index, "if_name": e.if_name}
            for e in sorted(poll.arp, key=lambda e: (ip_sort_key(e.ip), e.mac))
        ],
        "fdb": [
            {
                "mac": e.mac,
                "vlan": e.vlan,
                "port": e.port,
                "if_index": e.if_index,
                "if_name": e.if_name,
            }
            for e in sorted(poll.fdb, key=lambda e: (e.vlan or 0, e.port, e.mac))
        ],
        "lldp": [asdict(entry) for entry in poll.lldp],
    }


def _print_tables(poll: SnmpPoll) -> None:
    document = walk_json(poll)
    system = document["device"]
    table(("field", "value"), system.items(), title=f"device {poll.host}")
    for name, columns in (
        ("arp", ("ip", "mac", "if_index", "if_name")),
        ("fdb", ("mac", "vlan", "port", "if_index", "if_name")),
        ("lldp", ("local_if_name", "remote_chassis_id", "remote_port_id", "remote_sys_name")),
    ):
        rows = document[name]
        table(columns, ([row[column] for column in columns] for row in rows), title=name)
