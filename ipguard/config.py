"""ipguard.toml → typed settings. Every key has a default; unknown keys and bad values are errors.

Found via `--config PATH`, `IPGUARD_CONFIG`, `./ipguard.toml`, then the user config directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ipguard.addresses import AddressError, check_network
from ipguard.configcheck import check_keys, parse_severity, typed
from ipguard.errors import ConfigError
from ipguard.fields import FieldError, parse_site
from ipguard.model import Severity
from ipguard.policyconfig import HOSTNAME_FIELDS as HOSTNAME_FIELDS
from ipguard.policyconfig import PolicySettings as PolicySettings
from ipguard.policyconfig import check_hostname_rule as check_hostname_rule
from ipguard.policyconfig import parse_policy
from ipguard.snmpconfig import SnmpSettings, parse_snmp

DEFAULT_PORTS = "tcp/1-1024;tcp/1080;tcp/3128;tcp/8080;tcp/8118"
MIN_RETENTION_DAYS = 60
MAX_RATE = 1_000_000  # probes per second: [scan] rate and `scan --rate`
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
    policy: PolicySettings = field(default_factory=PolicySettings)
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
    try:
        if path.is_dir():
            raise ConfigError(
                f"{where} {path} is a directory; give the ipguard.toml file inside it"
            )
        if not path.is_file():
            raise ConfigError(f"{where} names {path}, which does not exist")
    except OSError as error:  # a name too long, say: still the file the option names
        raise ConfigError(f"{where} names a file that cannot be used: {error.strerror}") from None
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
        "policy": parse_policy,
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


def _scan(table: Mapping[str, Any], source: str) -> ScanSettings:
    check_keys(table, ScanSettings, "scan", source)
    where = f"{source}: scan"
    result = ScanSettings()
    for key in table:
        if key == "subnets":
            subnets = typed(table, key, list, where)
            result = replace(result, subnets=tuple(_subnet(item, where) for item in subnets))
        elif key in ("rate", "retries", "full_rescan_hours"):
            value = typed(table, key, int, where)
            low, high = {"rate": (1, MAX_RATE), "retries": (0, 10)}.get(key, (0, 24 * 365))
            if not low <= value <= high:
                raise ConfigError(f"{where}.{key} = {value}: must be between {low} and {high}")
            result = replace(result, **{key: value})
        elif key == "timeout":
            value = float(typed(table, key, (int, float), where))
            if not 0 < value <= 60:
                raise ConfigError(f"{where}.timeout = {value}: must be above 0 and at most 60")
            result = replace(result, timeout=value)
        elif key in ("dhcp_wait", "ra_wait"):
            value = float(typed(table, key, (int, float), where))
            if not 1 <= value <= 60:
                raise ConfigError(f"{where}.{key} = {value}: must be between 1 and 60")
            waits: dict[str, Any] = {key: value}
            result = replace(result, **waits)
        elif key in ("services", "tcp_ping"):
            result = replace(result, **{key: typed(table, key, bool, where)})
        elif key == "ports":
            ports = parse_port_spec(typed(table, key, str, where), f"{where}.ports")
            result = replace(result, ports=ports)
        elif key == "site":
            site = check_site(typed(table, key, str, where), f"{where}.site")
            result = replace(result, site=site)
        else:
            value = typed(table, key, str, where)
            if not value.strip():
                raise ConfigError(f"{where}.{key} must not be empty")
            result = replace(result, **{key: value.strip()})
    return result


def option_value(given: str | None, configured: str, option: str) -> str:
    """An option's value over the configuration's; an empty one is an error, never the default.

    `scan --interface "$IFACE"` with the variable unset must not scan another interface.
    """
    if given is None:
        return configured
    if not given.strip():
        raise ConfigError(
            f"{option} is empty; give a value, or leave {option} out for ipguard.toml's"
        )
    return given.strip()


def check_site(text: str, where: str) -> str:
    """A sensor's site (`[scan] site`, `--site`): a ledger site name, one line and not empty.

    Stripped as the ledger strips a record's site, so that `--site "lab "` is the site `lab`.
    """
    try:
        value = parse_site(text, where)
    except FieldError as error:
        raise ConfigError(f"{where} {error.value!r}: {error.reason}") from None
    if not value or "\n" in value or "\t" in value:
        raise ConfigError(f"{where} {text!r}: a site name is one line of text, not empty")
    return value


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


def _retention(table: Mapping[str, Any], source: str) -> RetentionSettings:
    check_keys(table, RetentionSettings, "retention", source)
    where = f"{source}: retention"
    days = RetentionSettings().days
    if "days" in table:
        days = typed(table, "days", int, where)
        if days < MIN_RETENTION_DAYS:
            raise ConfigError(
                f"{where}.days = {days}: records must be kept at least {MIN_RETENTION_DAYS} days"
            )
    return RetentionSettings(days=days)


def _alerts(table: Mapping[str, Any], source: str) -> AlertSettings:
    check_keys(table, AlertSettings, "alerts", source)
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
            result, min_severity=parse_severity(table["min_severity"], f"{where}.min_severity")
        )
    return result


def _names(table: Mapping[str, Any], source: str) -> NameSettings:
    check_keys(table, NameSettings, "names", source)
    where = f"{source}: names"
    result = NameSettings()
    if "dns_servers" in table:
        servers = typed(table, "dns_servers", list, where)
        try:
            # IPv4 only: the name probe asks over IPv4 (a scan refused an IPv6 server later)
            checked = tuple(str(ipaddress.IPv4Address(str(server))) for server in servers)
        except ValueError as error:
            raise ConfigError(f"{where}.dns_servers: {error} (an IPv4 address)") from None
        result = replace(result, dns_servers=checked)
    if "timeout" in table:
        value = float(typed(table, "timeout", (int, float), where))
        if not 0 < value <= 30:
            raise ConfigError(f"{where}.timeout = {value}: must be above 0 and at most 30")
        result = replace(result, timeout=value)
    return result


def _watch(table: Mapping[str, Any], source: str) -> WatchSettings:
    check_keys(table, WatchSettings, "watch", source)
    where = f"{source}: watch"
    result = WatchSettings()
    for key in table:
        value = float(typed(table, key, (int, float), where))
        if not 0 < value <= 3600:
            raise ConfigError(f"{where}.{key} = {value}: must be above 0 and at most 3600")
        result = replace(result, **{key: value})
    return result
