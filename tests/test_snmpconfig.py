"""[[snmp.devices]]: what the configuration accepts, and secrets only from the environment or a
mode-600 file, never repeated in an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipguard.config import parse_settings
from ipguard.errors import ConfigError
from ipguard.model import SnmpDevice
from ipguard.scanners.snmp_secrets import credentials

SECRET = "s3cret-community-value"


def device(**changes: Any) -> dict[str, Any]:
    return {"host": "198.18.0.1", "name": "core-1", "community_env": "C", **changes}


def test_a_device_with_defaults() -> None:
    settings = parse_settings({"snmp": {"devices": [device(roles=["router", "switch"])]}})
    (parsed,) = settings.snmp.devices
    assert parsed == SnmpDevice(
        host="198.18.0.1", name="core-1", community_env="C", roles=("router", "switch")
    )
    assert parsed.port == 161 and parsed.version == "2c"
    assert settings.policy.max_macs_per_port == 1 and settings.policy.uplink_min_macs == 32


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"community": SECRET}, "secrets are not accepted"),
        ({"auth_key": SECRET}, "secrets are not accepted"),
        ({"host": "core-1.example"}, "not an IP address"),
        ({"name": "core 1"}, "no spaces or colons"),
        ({"name": "core:1"}, "no spaces or colons"),
        ({"version": "2"}, 'must be "1", "2c" or "3"'),
        ({"port": 0}, "a UDP port"),
        ({"roles": ["firewall"]}, "a list of router, switch"),
        ({"community_file": "/etc/c"}, "give one of community_env or community_file"),
        ({"colour": "red"}, "unknown key colour"),
        ({"version": "3"}, "SNMPv3 needs user"),
        ({"version": "3", "user": "u", "auth_proto": "sha1024"}, "auth_proto: one of"),
        ({"version": "3", "user": "u", "priv_proto": "aes"}, "priv_proto needs auth_proto"),
    ],
)
def test_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        parse_settings({"snmp": {"devices": [device(**changes)]}}, "ipguard.toml")
    assert SECRET not in str(refused.value)
    assert str(refused.value).startswith("ipguard.toml: ")


@pytest.mark.parametrize(
    ("given", "auth", "priv"),
    [(("SHA", "AES"), "sha", "aes"), (("SHA-256", "AES-128"), "sha256", "aes"),
     (("sha1", "aes128"), "sha", "aes"), (("HMAC_SHA512", "aes"), "hmacsha512", "aes"),
     (("MD5", "DES"), "md5", "des"), (("SHA", "AES-256-C"), "sha", "aes256c"),
     (("SHA", "AES 192"), "sha", "aes192")],
)  # fmt: skip
def test_protocols_as_net_snmp_spells_them(given: tuple[str, str], auth: str, priv: str) -> None:
    """snmpd.conf's `createUser u SHA-256 … AES …` spelling is read (it was refused: "one of
    md5, sha, …"); a name that is no protocol still is, by the check after."""
    v3 = {"version": "3", "user": "u", "auth_key_env": "A", "priv_key_env": "P"}
    table = device(**v3, auth_proto=given[0], priv_proto=given[1])
    del table["community_env"]
    if auth.startswith("hmac"):
        with pytest.raises(ConfigError, match="auth_proto: one of"):
            parse_settings({"snmp": {"devices": [table]}})
        return
    (parsed,) = parse_settings({"snmp": {"devices": [table]}}).snmp.devices
    assert (parsed.auth_proto, parsed.priv_proto) == (auth, priv)


def test_two_devices_with_one_name() -> None:
    with pytest.raises(ConfigError, match="two devices are named 'core-1'"):
        parse_settings({"snmp": {"devices": [device(), device(host="198.18.0.2")]}})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("max_macs_per_port", 0, "too small"), ("uplink_min_macs", 1, "at least 2")],
)
def test_policy_limits(key: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"policy": {key: value}})


def test_community_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C", SECRET)
    assert credentials(SnmpDevice("198.18.0.1", "core-1", community_env="C")).community == (
        SECRET.encode()
    )
    monkeypatch.delenv("C")
    with pytest.raises(ConfigError, match="core-1: environment variable C"):
        credentials(SnmpDevice("198.18.0.1", "core-1", community_env="C"))


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "community"
    path.write_text(SECRET + "\n")
    path.chmod(0o644)
    snmp_device = SnmpDevice("198.18.0.1", "core-1", community_file=str(path))
    with pytest.raises(ConfigError, match="readable by others \\(mode 644\\): chmod 600") as error:
        credentials(snmp_device)
    assert SECRET not in str(error.value)
    path.chmod(0o600)
    assert credentials(snmp_device).community == SECRET.encode()
    assert SECRET not in repr(credentials(snmp_device))


def test_secret_file_saved_by_notepad(tmp_path: Path) -> None:
    """A community file written by Windows Notepad: a UTF-8 byte order mark before the secret,
    CRLF after it. The mark was sent as part of the community (the agent then stays silent,
    and the warning blames the community the admin can see is right)."""
    path = tmp_path / "community"
    path.write_bytes(b"\xef\xbb\xbf" + SECRET.encode() + b"\r\n")
    path.chmod(0o600)
    snmp_device = SnmpDevice("198.18.0.1", "core-1", community_file=str(path))
    assert credentials(snmp_device).community == SECRET.encode()
    path.write_bytes(b"caf\xe9-community\n")  # Latin-1, not UTF-8: taken as the octets it is
    assert credentials(snmp_device).community == b"caf\xe9-community"
