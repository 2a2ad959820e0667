"""ipguard.toml: defaults for every key, and a clear error naming any bad key or value."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipguard.config import ScanSettings, load_settings, parse_settings
from ipguard.errors import ConfigError
from ipguard.model import FindingKind, Service, Severity


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    settings = load_settings()
    assert settings.scan.rate == 2000 and settings.scan.subnets == ()
    assert settings.scan.dhcp_wait == 6.0  # longer than dnsmasq's 3 s ping check before offering
    assert settings.scan.ra_wait == 3.0
    assert settings.policy.default_allowed_services == (Service("tcp", 22),)
    assert settings.policy.fail_on == Severity.HIGH and settings.retention.days == 365


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ipguard.toml"
    path.write_text(
        """
[scan]
interface = "eth1"
subnets = ["10.20.0.0/16", "198.18.0.0/24"]
rate = 500
timeout = 2
dhcp_wait = 10
ra_wait = 5
tcp_ping = false
ports = "tcp/22;tcp/8000-8100"
site = "north"
[policy]
default_allowed_services = ["tcp/22", "udp/161"]
hostname_rule = "^{department}-{asset_tag}$"
fail_on = "critical"
[policy.severity]
hostname-policy = "medium"
[retention]
days = 90
[alerts]
urls = ["json://localhost:8080/hook"]
min_severity = "medium"
[names]
dns_servers = ["198.18.0.2"]
"""
    )
    settings = load_settings(str(path))
    assert settings.scan.subnets == ("10.20.0.0/16", "198.18.0.0/24")
    assert settings.scan.timeout == 2.0 and settings.scan.site == "north"
    assert settings.scan.dhcp_wait == 10.0 and settings.scan.ra_wait == 5.0
    assert settings.scan.tcp_ping is False and ScanSettings().tcp_ping is True
    assert settings.policy.severity == {FindingKind.HOSTNAME_POLICY: Severity.MEDIUM}
    assert settings.policy.default_allowed_services == (Service("tcp", 22), Service("udp", 161))
    assert settings.retention.days == 90 and settings.alerts.min_severity == Severity.MEDIUM
    assert settings.names.dns_servers == ("198.18.0.2",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scna": {}}, "unknown section [scna]"),
        ({"scan": {"rate2": 5}}, "unknown key scan.rate2"),
        ({"scan": {"rate": "fast"}}, "scan.rate = 'fast': expected a whole number"),
        ({"scan": {"rate": True}}, "scan.rate = True"),
        ({"scan": {"rate": 0}}, "scan.rate = 0: must be between 1 and 1000000"),
        ({"scan": {"subnets": ["10.0.0.1/24"]}}, "scan.subnets: '10.0.0.1/24' is not a network"),
        ({"scan": {"ports": "tcp/0-22"}}, "'tcp/0-22' is not proto/port"),
        ({"scan": {"dhcp_wait": 0.5}}, "scan.dhcp_wait = 0.5: must be between 1 and 60"),
        ({"scan": {"ra_wait": 61}}, "scan.ra_wait = 61.0: must be between 1 and 60"),
        ({"scan": {"tcp_ping": "yes"}}, "scan.tcp_ping = 'yes': expected true or false"),
        (
            {"scan": {"dhcp_wait": "long"}},
            "scan.dhcp_wait = 'long': expected a whole number or a number",
        ),
        ({"policy": {"fail_on": "urgent"}}, "policy.fail_on = 'urgent': severity must be one of"),
        ({"policy": {"severity": {"bad-kind": "low"}}}, "unknown finding kind 'bad-kind'"),
        ({"policy": {"hostname_rule": "^{colour}$"}}, "unknown placeholder {colour}"),
        ({"policy": {"hostname_rule": "^({owner}$"}}, "not a valid regular expression"),
        ({"policy": {"default_allowed_services": ["ssh"]}}, "'ssh' is not proto/port"),
        ({"retention": {"days": 30}}, "retention.days = 30: records must be kept at least 60 days"),
        (
            {"policy": {"stale_after_days": 10**11}},
            "policy.stale_after_days = 100000000000: must be between 0 and 36500",
        ),
        (
            {"policy": {"unregistered_grace_days": 36_501}},
            "policy.unregistered_grace_days = 36501: must be between 0 and 36500",
        ),
        ({"policy": {"stale_after_days": -1}}, "must be between 0 and 36500"),
        ({"scan": {"site": "north\u202e"}}, "scan.site 'north\\u202e': contains bidirectional"),
        ({"scan": {"site": " "}}, "scan.site ' ': a site name is one line of text, not empty"),
        ({"alerts": {"urls": ["nowhere"]}}, "alerts.urls: each entry must be an apprise URL"),
        ({"names": {"dns_servers": ["dns.example"]}}, "names.dns_servers"),
        (  # accepted here, the scan's name probe refused it
            {"names": {"dns_servers": ["2001:db8::53"]}},
            "names.dns_servers: Expected 4 octets in '2001:db8::53' (an IPv4 address)",
        ),
    ],
)
def test_bad_settings_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_settings(data, "ipguard.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("ipguard.toml")


def test_bad_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "ipguard.toml"
    path.write_text("[scan\nrate = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "missing.toml"))


def test_search_order_env_then_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "ipguard.toml"
    local.write_text('[scan]\nsite = "local"\n')
    other = tmp_path / "other.toml"
    other.write_text('[scan]\nsite = "env"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPGUARD_CONFIG", str(other))
    assert load_settings().scan.site == "env"
    monkeypatch.delenv("IPGUARD_CONFIG")
    assert load_settings().scan.site == "local"
    assert load_settings(str(other)).scan.site == "env"


def test_a_file_saved_by_windows_notepad_is_read(tmp_path: Path) -> None:
    # Notepad starts UTF-8 with a byte order mark (and ends lines with CRLF): before, the mark
    # was "not valid TOML: Invalid statement (at line 1, column 1)".
    path = tmp_path / "ipguard.toml"
    path.write_bytes(b'\xef\xbb\xbf[scan]\r\nsite = "\xe5\x8c\x97\xe6\xa0\xa1\xe5\x8c\xba"\r\n')
    assert load_settings(str(path)).scan.site == "北校区"


def test_a_file_in_another_encoding_is_refused_naming_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "ipguard.toml"
    path.write_bytes('[scan]\nsite = "北café"\n'.encode().replace(b"\xc3\xa9", b"\xe9"))
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    assert str(caught.value) == (
        f"{path}: not UTF-8 at line 2, column 13 (byte 0xe9); save it as UTF-8"
    )
