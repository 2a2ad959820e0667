"""The README's reference sections are contracts: its ipguard.toml and its table of findings.

An administrator copies the commented ipguard.toml and reads the findings table on the first day;
both must say what the code does, and a key or kind added later must be added there too.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from ipguard.config import (
    AlertSettings,
    NameSettings,
    RetentionSettings,
    ScanSettings,
    Settings,
    WatchSettings,
    parse_settings,
)
from ipguard.model import FindingKind, SnmpDevice
from ipguard.policies.base import DEFAULT_SEVERITY
from ipguard.policyconfig import PolicySettings
from ipguard.snmpconfig import SnmpSettings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of one `## title` section of the README."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def readme_toml() -> str:
    """The complete ipguard.toml of the README's configuration section."""
    text = section("Configuration: ipguard.toml")
    return text.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readmes_ipguard_toml_is_read_as_the_defaults() -> None:
    settings = parse_settings(tomllib.loads(readme_toml()))
    defaults = Settings()
    for name in ("scan", "policy", "retention", "alerts", "names", "watch", "snmp"):
        ours, theirs = getattr(settings, name), getattr(defaults, name)
        differ = [
            item.name
            for item in dataclasses.fields(ours)
            if getattr(ours, item.name) != getattr(theirs, item.name)
        ]
        # The example's scope and device are not defaults (there is no default scope or device).
        expected = {"scan": ["subnets"], "snmp": ["devices"]}.get(name, [])
        assert differ == expected, f"[{name}] in the README differs from the code: {differ}"


def test_the_readmes_ipguard_toml_names_every_key() -> None:
    text = readme_toml()
    classes = (
        ScanSettings,
        PolicySettings,
        RetentionSettings,
        AlertSettings,
        NameSettings,
        WatchSettings,
        SnmpSettings,
        SnmpDevice,
    )
    missing = [
        f"{cls.__name__}.{item.name}"
        for cls in classes
        for item in dataclasses.fields(cls)
        if not re.search(rf"\b{item.name}\b", text)
    ]
    assert not missing, f"keys missing from the README's ipguard.toml: {missing}"


def test_the_findings_table_has_every_kind_at_its_default_severity() -> None:
    rows = {}
    for line in section("Findings: what each means and what to do").splitlines():
        match = re.match(r"\| `([a-z-]+)` \| (\w+)", line)
        if match:
            rows[match.group(1)] = match.group(2)
    assert list(rows) == [kind.value for kind in FindingKind]
    for kind, severity in DEFAULT_SEVERITY.items():
        assert rows[kind.value] == severity.value, kind
