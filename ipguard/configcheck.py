"""Checks every section of ipguard.toml shares: known keys, value types, severities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ipguard.errors import ConfigError
from ipguard.model import Severity


def check_keys(table: Mapping[str, Any], allowed: type, section: str, source: str) -> None:
    """Refuse a key of `table` that is no field of the settings class `allowed`."""
    known = {item.name for item in fields(allowed)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {section}.{key} (known: {', '.join(sorted(known))})"
            )


def typed(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`table[key]`, refused unless it is of `kind` (never a bool for a number)."""
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


def parse_severity(value: Any, where: str) -> Severity:
    """A severity name, in any case."""
    try:
        return Severity(str(value).lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise ConfigError(f"{where} = {value!r}: severity must be one of {allowed}") from None
