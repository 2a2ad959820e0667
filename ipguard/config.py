"""ipguard.toml → typed settings. Every key has a default; unknown keys and bad values are errors.

Found via `--config PATH`, `IPGUARD_CONFIG`, `./ipguard.toml`, then the user config directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ipguard.addresses import AddressError, check_network
from ipguard.errors import ConfigError
from ipguard.fields import FieldError, parse_service
from ipguard.model import FindingKind, Service, Severity
from ipguard.snmpconfig import SnmpSettings, parse_snmp

DEFAULT_PORTS = "tcp/1-1024;tcp/1080;tcp/3128;tcp/8080;tcp/8118"
MIN_RETENTION_DAYS = 60
MAX_DAYS = 36_500  # a hundred years: the longest period a [policy] key may give
_PORT_SPEC = re.compile(r"^(tcp|udp)/(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class ScanSettings:
    """What to sweep and how hard: [scan]."""

    interface: str = "eth0"
    subnets: tuple[str, ...] = ()
    rate: int = 2000
    retries: int = 2
    timeout: float = 1.0
    tcp_ping: bool = True  # routed addresses silent to an echo request are asked over TCP
    services: bool = True
    ports: str = DEFAULT_PORTS
    site: str = "main"
    full_rescan_hours: int = 24  # incremental service scans in between; 0: always full
    metrics_file: str = ""  # Prometheus textfile kept current by scans and finding changes
    dhcp_wait: float = 6.0  # seconds the DHCP probe listens: servers ping-check before offering
    ra_wait: float = 3.0  # seconds the ipv6 phase collects router advertisements and ADVERTISEs


@dataclass(frozen=True)
class PolicySettings:
    """How to judge what a scan saw: [policy] and [policy.severity]."""

    default_allowed_services: tuple[Service, ...] = (Service("tcp", 22),)
    hostname_rule: str = "^{department}-{owner}$"
    stale_after_days: int = 30
    unregistered_grace_days: int = 3
    fail_on: Severity = Severity.HIGH
    severity: Mapping[FindingKind, Severity] = field(default_factory=dict)
    # An unregistered host whose MAC is locally administered (a phone's per-network address);
    # None: the severity of unregistered-host.
    randomized_mac_severity: Severity | None = None
    max_macs_per_port: int = 1  # more MACs on an access port: unmanaged-switch
    uplink_min_macs: int = 32  # more MACs than this (or an LLDP neighbour): an uplink


@dataclass(frozen=True)
class RetentionSettings:
    """How long scan history is kept: [retention]."""

    days: int = 365


@dataclass(frozen=True)
class AlertSettings:
    """Where digests of new findings go: [alerts]."""

    urls: tuple[str, ...] = ()
    min_severity: Severity = Severity.HIGH


@dataclass(frozen=True)
class WatchSettings:
    """How `ipguard watch` judges and alerts: [watch]."""

    duplicate_window: float = 10.0  # two MACs claiming one IP within this many seconds
    alert_interval: float = 30.0  # seconds between alert digests while watching


@dataclass(frozen=True)
class NameSettings:
    """Where hostnames come from: [names]."""

    dns_servers: tuple[str, ...] = ()
    timeout: float = 1.0


@dataclass(frozen=True)
class Settings:
    """All of ipguard.toml, with defaults filled in."""

    scan: ScanSettings = ScanSettings()
    policy: PolicySettings = PolicySettings()
    retention: RetentionSettings = RetentionSettings()
    alerts: AlertSettings = AlertSettings()
    names: NameSettings = NameSettings()
    watch: WatchSettings = WatchSettings()
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    source: str = "(defaults)"


def find_config(given: str | None) -> Path | None:
    """The configuration file to read, or None for the defaults."""
    if given is not None:
        return _named(given, "--config")
    if "IPGUARD_CONFIG" in os.environ:
        return _named(os.environ["IPGUARD_CONFIG"], "IPGUARD_CONFIG")
    local = Path("ipguard.toml")
    if local.is_file():
        return local
    from platformdirs import user_config_dir

    user = Path(user_config_dir("ipguard")) / "ipguard.toml"
    return user if user.is_file() else None


def _named(given: str, where: str) -> Path:
    """The file `--config` or IPGUARD_CONFIG names; an empty value is an error, not the default."""
    if not given.strip():
        raise ConfigError(
            f"{where} is empty; give the configuration file, or leave {where} out "
            "to use ./ipguard.toml or the user configuration"
        )
    path = Path(given).expanduser()
    if path.is_dir():
        raise ConfigError(f"{where} {path} is a directory; give the ipguard.toml file inside it")
    if not path.is_file():
        raise ConfigError(f"{where} names {path}, which does not exist")
    return path


def load_settings(given: str | None = None) -> Settings:
    """Read and check the configuration (see `find_config` for where it comes from)."""
    path = find_config(given)
    if path is None:
        return Settings()
    try:
        raw = path.read_bytes()
        # utf-8-sig: Windows editors (Notepad) start a UTF-8 file with a byte order mark.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line, column = _line_and_column(raw, error.start)
        raise ConfigError(
            f"{path}: not UTF-8 at line {line}, column {column} (byte 0x{raw[error.start]:02x}); "
            "save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be an ipguard configuration") from None
    return parse_settings(data, str(path))


def _line_and_column(raw: bytes, offset: int) -> tuple[int, int]:
    """Where byte `offset` of a file is, as an editor counts (from 1; columns in characters)."""
    start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[start:offset].decode("utf-8", errors="replace")) + 1
    return raw.count(b"\n", 0, offset) + 1, column


def parse_settings(data: Mapping[str, Any], source: str = "(given)") -> Settings:
    """Settings from an already-parsed TOML document."""
    sections: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
        "scan": _scan,
        "policy": _policy,
        "retention": _retention,
        "alerts": _alerts,
        "names": _names,
        "watch": _watch,
        "snmp": parse_snmp,
    }
    values: dict[str, Any] = {"source": source}
    for name, section in data.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {name} must be a table, like [{name}]")
        values[name] = sections[name](section, source)
    return Settings(**values)


def _check_keys(table: Mapping[str, Any], allowed: type, section: str, source: str) -> None:
    known = {item.name for item in fields(allowed)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {section}.{key} (known: {', '.join(sorted(known))})"
            )


def _typed(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    # bool is an int in Python; a `rate = true` is still a mistake.
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key} = {value!r}: expected {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} = {value!r}: expected {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "a whole number",
        float: "a number",
        str: "text",
        bool: "true or false",
        list: "a list",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _scan(table: Mapping[str, Any], source: str) -> ScanSettings:
    _check_keys(table, ScanSettings, "scan", source)
    where = f"{source}: scan"
    result = ScanSettings()
    for key in table:
        if key == "subnets":
            subnets = _typed(table, key, list, where)
            result = replace(result, subnets=tuple(_subnet(item, where) for item in subnets))
        elif key in ("rate", "retries", "full_rescan_hours"):
            value = _typed(table, key, int, where)
            low, high = {"rate": (1, 1_000_000), "retries": (0, 10)}.get(key, (0, 24 * 365))
            if not low <= value <= high:
                raise ConfigError(f"{where}.{key} = {value}: must be between {low} and {high}")
            result = replace(result, **{key: value})
        elif key == "timeout":
            value = float(_typed(table, key, (int, float), where))
            if not 0 < value <= 60:
                raise ConfigError(f"{where}.timeout = {value}: must be above 0 and at most 60")
            result = replace(result, timeout=value)
        elif key in ("dhcp_wait", "ra_wait"):
            value = float(_typed(table, key, (int, float), where))
            if not 1 <= value <= 60:
                raise ConfigError(f"{where}.{key} = {value}: must be between 1 and 60")
            waits: dict[str, Any] = {key: value}
            result = replace(result, **waits)
        elif key in ("services", "tcp_ping"):
            result = replace(result, **{key: _typed(table, key, bool, where)})
        elif key == "ports":
            ports = parse_port_spec(_typed(table, key, str, where), f"{where}.ports")
            result = replace(result, ports=ports)
        else:
            value = _typed(table, key, str, where)
            if not value.strip():
                raise ConfigError(f"{where}.{key} must not be empty")
            result = replace(result, **{key: value.strip()})
    return result


def _subnet(item: Any, where: str) -> str:
    if not isinstance(item, str):
        raise ConfigError(f"{where}.subnets: {item!r} is not a CIDR string")
    try:
        network = ipaddress.ip_network(item.strip(), strict=True)
    except ValueError as error:
        raise ConfigError(f"{where}.subnets: {item!r} is not a network ({error})") from None
    if network.prefixlen:  # "everything" (::/0) is a scope; a range no device holds is not
        try:
            check_network(network)
        except AddressError as error:
            raise ConfigError(f"{where}.subnets: {item!r}: {error}") from None
    return str(network)


def parse_port_spec(text: str, where: str = "ports") -> str:
    """Check `tcp/1-1024;tcp/3128;udp/161`; returns it normalised."""
    parts = []
    for part in text.split(";"):
        part = part.strip().lower()
        if not part:
            continue
        match = _PORT_SPEC.match(part)
        low = int(match.group(2)) if match else 0
        high = int(match.group(3) or low) if match else 0
        if not match or not 0 < low <= high < 65536:
            raise ConfigError(f"{where}: {part!r} is not proto/port or proto/low-high (tcp/1-1024)")
        parts.append(part)
    if not parts:
        raise ConfigError(f"{where}: no ports given")
    return ";".join(parts)


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise ConfigError(f"{where} = {value!r}: severity must be one of {allowed}") from None


def _policy(table: Mapping[str, Any], source: str) -> PolicySettings:
    _check_keys(table, PolicySettings, "policy", source)
    where = f"{source}: policy"
    result = PolicySettings()
    for key in table:
        if key == "default_allowed_services":
            items = _typed(table, key, list, where)
            try:
                services = tuple(parse_service(str(item), key) for item in items)
            except FieldError as error:
                raise ConfigError(f"{where}.{key}: {error.reason}") from None
            result = replace(result, default_allowed_services=services)
        elif key == "hostname_rule":
            rule = _typed(table, key, str, where)
            check_hostname_rule(rule, f"{where}.{key}")
            result = replace(result, hostname_rule=rule)
        elif key in ("stale_after_days", "unregistered_grace_days"):
            value = _typed(table, key, int, where)
            # A period is a date difference: beyond a century, date arithmetic overflows.
            if not 0 <= value <= MAX_DAYS:
                raise ConfigError(f"{where}.{key} = {value}: must be between 0 and {MAX_DAYS}")
            result = replace(result, **{key: value})
        elif key == "max_macs_per_port":
            value = _typed(table, key, int, where)
            if value < 1:
                raise ConfigError(f"{where}.{key} = {value}: too small")
            result = replace(result, max_macs_per_port=value)
        elif key == "uplink_min_macs":
            value = _typed(table, key, int, where)
            if value < 2:
                raise ConfigError(f"{where}.{key} = {value}: must be at least 2")
            result = replace(result, uplink_min_macs=value)
        elif key == "fail_on":
            result = replace(result, fail_on=_severity(table[key], f"{where}.fail_on"))
        elif key == "randomized_mac_severity":
            level = _severity(table[key], f"{where}.{key}")
            result = replace(result, randomized_mac_severity=level)
        elif key == "severity":
            overrides = _typed(table, key, dict, where)
            parsed: dict[FindingKind, Severity] = {}
            for kind_name, level in overrides.items():
                try:
                    kind = FindingKind(kind_name)
                except ValueError:
                    raise ConfigError(
                        f"{where}.severity: unknown finding kind {kind_name!r}"
                    ) from None
                parsed[kind] = _severity(level, f"{where}.severity.{kind_name}")
            result = replace(result, severity=parsed)
    return result


HOSTNAME_FIELDS = ("owner", "department", "location", "asset_tag", "switch_port", "ip", "mac")


# A placeholder is a name in braces; `{3}` and `{2,4}` stay regular-expression quantifiers, and
# `\{owner\}` is the literal text (the same pattern as ipguard.policies.naming).
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


def check_hostname_rule(rule: str, where: str) -> None:
    """A hostname rule is a regular expression with `{field}` placeholders for ledger fields."""
    if not rule:
        return
    for name in _PLACEHOLDER.findall(rule):
        if name not in HOSTNAME_FIELDS:
            raise ConfigError(
                f"{where}: unknown placeholder {{{name}}} (use {', '.join(HOSTNAME_FIELDS)}; "
                "write \\{ for a literal brace)"
            )
    sample = _PLACEHOLDER.sub("x", rule)
    try:
        re.compile(sample)
    except re.error as error:
        raise ConfigError(f"{where}: not a valid regular expression ({error})") from None


def _retention(table: Mapping[str, Any], source: str) -> RetentionSettings:
    _check_keys(table, RetentionSettings, "retention", source)
    where = f"{source}: retention"
    days = RetentionSettings().days
    if "days" in table:
        days = _typed(table, "days", int, where)
        if days < MIN_RETENTION_DAYS:
            raise ConfigError(
                f"{where}.days = {days}: records must be kept at least {MIN_RETENTION_DAYS} days"
            )
    return RetentionSettings(days=days)


def _alerts(table: Mapping[str, Any], source: str) -> AlertSettings:
    _check_keys(table, AlertSettings, "alerts", source)
    where = f"{source}: alerts"
    result = AlertSettings()
    if "urls" in table:
        urls = table["urls"]
        if not isinstance(urls, list):  # never echo the value: alert URLs hold tokens
            raise ConfigError(f'{where}.urls must be a list of apprise URLs, like ["mailto://…"]')
        if not all(isinstance(url, str) and "://" in url for url in urls):
            raise ConfigError(f"{where}.urls: each entry must be an apprise URL like mailto://…")
        result = replace(result, urls=tuple(urls))
    if "min_severity" in table:
        result = replace(
            result, min_severity=_severity(table["min_severity"], f"{where}.min_severity")
        )
    return result


def _names(table: Mapping[str, Any], source: str) -> NameSettings:
    _check_keys(table, NameSettings, "names", source)
    where = f"{source}: names"
    result = NameSettings()
    if "dns_servers" in table:
        servers = _typed(table, "dns_servers", list, where)
        try:
            checked = tuple(str(ipaddress.ip_address(str(server))) for server in servers)
        except ValueError as error:
            raise ConfigError(f"{where}.dns_servers: {error}") from None
        result = replace(result, dns_servers=checked)
    if "timeout" in table:
        value = float(_typed(table, "timeout", (int, float), where))
        if not 0 < value <= 30:
            raise ConfigError(f"{where}.timeout = {value}: must be above 0 and at most 30")
        result = replace(result, timeout=value)
    return result


def _watch(table: Mapping[str, Any], source: str) -> WatchSettings:
    _check_keys(table, WatchSettings, "watch", source)
    where = f"{source}: watch"
    result = WatchSettings()
    for key in table:
        value = float(_typed(table, key, (int, float), where))
        if not 0 < value <= 3600:
            raise ConfigError(f"{where}.{key} = {value}: must be above 0 and at most 3600")
        result = replace(result, **{key: value})
    return result
