"""The `[snmp]` section of ipguard.toml: `[[snmp.devices]]`, the switches and routers to poll.

    [[snmp.devices]]
    host = "10.20.0.1"          # polled because it is listed: a listed device is authorised
    name = "core-1"             # the switch name in ledger switch_port values: "core-1:Gi1/0/3"
    version = "2c"
    community_env = "IPGUARD_SNMP_COMMUNITY"     # or community_file = "/etc/ipguard/community"
    roles = ["router", "switch"]

Secrets are never accepted in the file itself, only the environment variable or (mode 600) file
that holds them; no error message repeats a value that could be one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ipguard.errors import ConfigError
from ipguard.model import SnmpDevice

ROLES = ("router", "switch")
SECRET_KEYS = ("community", "auth_key", "priv_key", "password", "auth_password", "priv_password")
AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
# DES and AES-128 (RFC 3414, 3826); AES-192/256 with net-snmp's key extension (Blumenthal) or,
# ending in c, Cisco's (Reeder): scanners.snmp_usm.PRIV_PROTOCOLS
PRIV_PROTOCOLS = ("des", "aes", "aes192", "aes256", "aes192c", "aes256c")
_DEVICE_KEYS = {item.name for item in fields(SnmpDevice)}
# How net-snmp (snmpd.conf createUser, snmpwalk -a/-x) and switch manuals spell the protocols
_PROTOCOL_ALIASES = {"sha1": "sha", "aes128": "aes"}


def protocol_name(text: str) -> str:
    """An auth or priv protocol as ipguard names it: `SHA-256` → `sha256`, `AES-256-C` → `aes256c`.

    (As snmpd.conf, net-snmp's -a/-x and switch manuals spell them.)
    """
    name = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _PROTOCOL_ALIASES.get(name, name)


@dataclass(frozen=True)
class SnmpSettings:
    """[snmp]: the devices, and how patient to be with each."""

    devices: tuple[SnmpDevice, ...] = ()
    timeout: float = 2.0  # seconds per request
    retries: int = 2


def parse_snmp(table: Mapping[str, Any], source: str) -> SnmpSettings:
    """[snmp] and its [[snmp.devices]] tables."""
    result = SnmpSettings()
    timeout, retries = result.timeout, result.retries
    devices: list[SnmpDevice] = []
    for key, value in table.items():
        if key == "devices":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise ConfigError(f"{source}: snmp.devices must be tables, like [[snmp.devices]]")
            devices = [
                _device(item, f"{source}: snmp.devices[{n}]") for n, item in enumerate(value)
            ]
        elif key == "timeout":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
                raise ConfigError(f"{source}: snmp.timeout = {value!r}: a number of seconds, 0-60")
            timeout = float(value)
        elif key == "retries":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
                raise ConfigError(f"{source}: snmp.retries = {value!r}: a whole number, 0-10")
            retries = value
        else:
            raise ConfigError(
                f"{source}: unknown key snmp.{key} (known: devices, retries, timeout)"
            )
    names = [device.name for device in devices]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{source}: snmp.devices: two devices are named {name!r}")
    return SnmpSettings(tuple(devices), timeout, retries)


def _device(item: Mapping[str, Any], where: str) -> SnmpDevice:
    for key in item:
        if key in SECRET_KEYS:
            raise ConfigError(
                f"{where}.{key}: secrets are not accepted in the configuration file; "
                f"give {key.split('_')[0]}_env (an environment variable) or "
                f"{key.split('_')[0]}_file (a mode-600 file) instead"
            )
        if key not in _DEVICE_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key} (known: {', '.join(sorted(_DEVICE_KEYS))})"
            )
    values: dict[str, Any] = {}
    for key, value in item.items():
        if key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise ConfigError(f"{where}.port = {value!r}: a UDP port, 1-65535")
            values[key] = value
        elif key == "version":
            text = str(value).lower()
            if text not in ("1", "2c", "3"):
                raise ConfigError(f'{where}.version = {value!r}: must be "1", "2c" or "3"')
            values[key] = text
        elif key == "roles":
            if not isinstance(value, list) or not value or any(role not in ROLES for role in value):
                raise ConfigError(f"{where}.roles = {value!r}: a list of {', '.join(ROLES)}")
            values[key] = tuple(value)
        elif not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}.{key}: expected non-empty text")
        elif key in ("auth_proto", "priv_proto"):
            values[key] = protocol_name(value)
        else:
            values[key] = value.strip()
    for key in ("host", "name"):
        if key not in values:
            raise ConfigError(f"{where}: {key} is required")
    try:
        ipaddress.ip_address(values["host"])
    except ValueError:
        raise ConfigError(f"{where}.host = {values['host']!r}: not an IP address") from None
    if ":" in values["name"] or any(ch.isspace() for ch in values["name"]):
        raise ConfigError(
            f"{where}.name = {values['name']!r}: no spaces or colons (it reads NAME:PORT in the "
            "ledger's switch_port)"
        )
    device = SnmpDevice(**values)
    _check_secrets(device, where)
    return device


def _check_secrets(device: SnmpDevice, where: str) -> None:
    """Exactly one source for each secret the device's version needs."""
    needed = ["community"] if device.version != "3" else []
    if device.version == "3":
        if not device.user:
            raise ConfigError(f"{where}: SNMPv3 needs user")
        if device.auth_proto:
            needed.append("auth_key")
        if device.priv_proto:
            needed.append("priv_key")
    if device.auth_proto and device.auth_proto not in AUTH_PROTOCOLS:
        raise ConfigError(f"{where}.auth_proto: one of {', '.join(AUTH_PROTOCOLS)}")
    if device.priv_proto and device.priv_proto not in PRIV_PROTOCOLS:
        raise ConfigError(f"{where}.priv_proto: one of {', '.join(PRIV_PROTOCOLS)}")
    if device.priv_proto and not device.auth_proto:
        raise ConfigError(f"{where}: priv_proto needs auth_proto (SNMPv3 authPriv)")
    for secret in needed:
        env, path = getattr(device, f"{secret}_env"), getattr(device, f"{secret}_file")
        if bool(env) == bool(path):
            raise ConfigError(f"{where}: give one of {secret}_env or {secret}_file")
