"""A configured device's SNMP credentials: its community or v3 keys, read when a poll starts.

Secrets come from the environment variable or the mode-600 file the device names, and appear
nowhere else (never in an error message).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ipguard.errors import ConfigError
from ipguard.model import SnmpDevice
from ipguard.scanners.snmp_client import Credentials
from ipguard.scanners.snmp_usm import AUTH_PROTOCOLS, PRIV_PROTOCOLS


def _secret(device: SnmpDevice, what: str, env: str, path: str) -> bytes:
    """A secret from the environment variable or the file the device names (never echoed)."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(
                f"snmp device {device.name}: environment variable {env} ({what}) is not set"
            )
        return value.encode()
    if path:
        file = Path(path)
        try:
            mode = file.stat().st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise ConfigError(
                    f"snmp device {device.name}: {path} ({what}) is readable by others "
                    f"(mode {stat.S_IMODE(mode):03o}): chmod 600 it"
                )
            # The octets as they are (a secret need not be UTF-8), but for the byte order mark
            # and CRLF of a file saved by Windows Notepad
            octets = file.read_bytes().removeprefix(b"\xef\xbb\xbf").strip()
        except OSError as error:
            raise ConfigError(
                f"snmp device {device.name}: cannot read {path} ({what}): {error.strerror}"
            ) from None
        if not octets:
            raise ConfigError(f"snmp device {device.name}: {path} ({what}) is empty")
        return octets
    raise ConfigError(f"snmp device {device.name}: no {what} given (set {what}_env or {what}_file)")


def credentials(device: SnmpDevice) -> Credentials:
    """The device's credentials, read now from its environment variables or files."""
    if device.version in ("1", "2c"):
        community = _secret(device, "community", device.community_env, device.community_file)
        return Credentials(device.version, community)
    if device.version != "3":
        raise ConfigError(f"snmp device {device.name}: version must be 1, 2c or 3")
    if device.auth_proto and device.auth_proto not in AUTH_PROTOCOLS:
        raise ConfigError(
            f"snmp device {device.name}: auth_proto must be one of {', '.join(AUTH_PROTOCOLS)}"
        )
    if device.priv_proto and device.priv_proto not in PRIV_PROTOCOLS:
        raise ConfigError(
            f"snmp device {device.name}: priv_proto must be one of {', '.join(PRIV_PROTOCOLS)}"
        )
    if device.priv_proto and not device.auth_proto:
        raise ConfigError(f"snmp device {device.name}: privacy needs auth_proto as well")
    auth = (
        _secret(device, "auth_key", device.auth_key_env, device.auth_key_file)
        if device.auth_proto
        else b""
    )
    priv = (
        _secret(device, "priv_key", device.priv_key_env, device.priv_key_file)
        if device.priv_proto
        else b""
    )
    if not device.user:
        raise ConfigError(f"snmp device {device.name}: SNMPv3 needs user")
    return Credentials("3", b"", device.user, device.auth_proto, auth, device.priv_proto, priv)
