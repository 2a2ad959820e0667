"""The `[policy]` section of ipguard.toml: how a scan's observations are judged."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import Any

from ipguard.configcheck import check_keys, parse_severity, typed
from ipguard.errors import ConfigError
from ipguard.fields import FieldError, parse_service
from ipguard.localtime import local_zone, resolve_zone
from ipguard.model import FindingKind, Service, Severity

MAX_DAYS = 36_500  # a hundred years: the longest period a [policy] key may give


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
    # The administrators' calendar (an IANA zone, resolved when the file is read; "" in the
    # file: this machine's zone): the days people give and read, guest_until's end among them.
    timezone: tzinfo = field(default_factory=local_zone)


def parse_policy(table: Mapping[str, Any], source: str) -> PolicySettings:
    """The `[policy]` table (and `[policy.severity]`) of ipguard.toml."""
    check_keys(table, PolicySettings, "policy", source)
    where = f"{source}: policy"
    result = PolicySettings()
    for key in table:
        if key == "default_allowed_services":
            items = typed(table, key, list, where)
            try:
                services = tuple(parse_service(str(item), key) for item in items)
            except FieldError as error:
                raise ConfigError(f"{where}.{key}: {error.reason}") from None
            result = replace(result, default_allowed_services=services)
        elif key == "hostname_rule":
            rule = typed(table, key, str, where)
            check_hostname_rule(rule, f"{where}.{key}")
            result = replace(result, hostname_rule=rule)
        elif key in ("stale_after_days", "unregistered_grace_days"):
            value = typed(table, key, int, where)
            # A period is a date difference: beyond a century, date arithmetic overflows.
            if not 0 <= value <= MAX_DAYS:
                raise ConfigError(f"{where}.{key} = {value}: must be between 0 and {MAX_DAYS}")
            result = replace(result, **{key: value})
        elif key == "max_macs_per_port":
            value = typed(table, key, int, where)
            if value < 1:
                raise ConfigError(f"{where}.{key} = {value}: too small")
            result = replace(result, max_macs_per_port=value)
        elif key == "uplink_min_macs":
            value = typed(table, key, int, where)
            if value < 2:
                raise ConfigError(f"{where}.{key} = {value}: must be at least 2")
            result = replace(result, uplink_min_macs=value)
        elif key == "timezone":
            zone = resolve_zone(typed(table, key, str, where), f"{where}.{key}")
            result = replace(result, timezone=zone)
        elif key == "fail_on":
            result = replace(result, fail_on=parse_severity(table[key], f"{where}.fail_on"))
        elif key == "randomized_mac_severity":
            level = parse_severity(table[key], f"{where}.{key}")
            result = replace(result, randomized_mac_severity=level)
        elif key == "severity":
            overrides = typed(table, key, dict, where)
            parsed: dict[FindingKind, Severity] = {}
            for kind_name, level in overrides.items():
                try:
                    kind = FindingKind(kind_name)
                except ValueError:
                    raise ConfigError(
                        f"{where}.severity: unknown finding kind {kind_name!r}"
                    ) from None
                parsed[kind] = parse_severity(level, f"{where}.severity.{kind_name}")
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
