"""evaluate(): every family at once, default and configured severities, order, plain output."""

from __future__ import annotations

import gc
import json
import random
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ipguard.config import PolicySettings
from ipguard.model import (
    DhcpOffer,
    Evidence,
    FdbEntry,
    FindingKind,
    NameObservation,
    ProxyVerdict,
    RouterAdvert,
    ServiceObservation,
    Severity,
    SnmpPoll,
)
from ipguard.policies import evaluate
from ipguard.policies.base import DEFAULT_SEVERITY, PolicySettingsLike, PoolRange
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    IP3,
    IP4,
    NOW,
    TODAY,
    A,
    B,
    C,
    D,
    X,
    Y,
    arp,
    device,
    facts,
    findings,
    icmp,
    judge,
    key,
    settings,
)

# The settings type the runner passes satisfies the protocol policies accept (checked by mypy).
_SETTINGS: PolicySettingsLike = PolicySettings()

YESTERDAY = (TODAY - timedelta(days=1)).isoformat()

# For each kind, the smallest run that raises that kind and nothing else.
ONE_OF_EACH: dict[str, dict[str, Any]] = {
    "unregistered-host": {"observations": [arp(FREE, X)]},
    "ip-mac-mismatch": {"ledger": [device(IP1, A)], "observations": [arp(IP1, X)]},
    "mac-moved": {"ledger": [device(IP1, A)], "observations": [arp(FREE, A)]},
    "duplicate-ip": {"ledger": [device(IP1, A)], "observations": [arp(IP1, A), arp(IP1, X)]},
    "unexpected-service": {
        "ledger": [device(IP1, A)],
        "observations": [arp(IP1, A)],
        "services": [ServiceObservation(IP1, "tcp", 8080)],
    },
    "open-proxy": {
        "ledger": [device(IP1, A)],
        "observations": [arp(IP1, A)],
        "proxies": [ProxyVerdict(IP1, 3128, "http-connect", True)],
    },
    "rogue-dhcp": {
        "ledger": [device(IP1, A)],
        "observations": [arp(IP1, A)],
        "dhcp_offers": [DhcpOffer(IP1, A, "10.20.1.100")],
    },
    "rogue-router": {
        "ledger": [device(IP1, A)],
        "observations": [arp(IP1, A)],
        "evidence": [Evidence(IP1, A, "forwarding", "router")],
    },
    "rogue-ap": {
        "ledger": [device(IP1, A)],
        "observations": [arp(IP1, A)],
        "evidence": [Evidence(IP1, A, "ssdp-ap", "access-point")],
    },
    "out-of-pool": {
        "ledger": [device(IP1, A, department="math")],
        "observations": [arp(IP1, A)],
        "pools": [PoolRange("math", "10.20.7.0/24")],
    },
    "hostname-policy": {
        "ledger": [device(IP1, A, department="math", owner="liwei")],
        "observations": [arp(IP1, A)],
        "names": [NameObservation(IP1, "pc-1", "dns")],
    },
    "stale-registration": {"ledger": [device(IP1, A)], "last_seen": {}},
    "guest-expired": {
        "ledger": [device(IP1, A, guest_until=YESTERDAY)],
        "observations": [arp(IP1, A)],
    },
    "suspended-device-online": {
        "ledger": [device(IP1, A, status="suspended")],
        "observations": [arp(IP1, A)],
    },
    "isolated-device-online": {
        "ledger": [device(IP1, A, isolated=True)],
        "observations": [arp(IP1, A)],
    },
    "wrong-port": {
        "ledger": [device(IP1, A, switch_port="sw-1:Gi1/0/1")],
        "snmp": (SnmpPoll("sw-1", "10.20.0.2", True, fdb=(FdbEntry(A, 1, 2, 2, "Gi1/0/2"),)),),
    },
    "unmanaged-switch": {
        "snmp": (
            SnmpPoll(
                "sw-1",
                "10.20.0.2",
                True,
                fdb=(FdbEntry(X, 1, 3, 3, "Gi1/0/3"), FdbEntry(Y, 1, 3, 3, "Gi1/0/3")),
            ),
        ),
    },
    "rogue-ra": {
        "router_adverts": (RouterAdvert("fe80::1", X, 1800, False, False, ("fd00:1::/64",)),),
    },
}

DESIGN_DEFAULTS = {
    "unregistered-host": "high",
    "ip-mac-mismatch": "high",
    "mac-moved": "medium",
    "duplicate-ip": "high",
    "unexpected-service": "medium",
    "open-proxy": "high",
    "rogue-dhcp": "critical",
    "rogue-router": "high",
    "rogue-ap": "high",
    "out-of-pool": "medium",
    "hostname-policy": "low",
    "stale-registration": "low",
    "guest-expired": "medium",
    "suspended-device-online": "medium",
    "isolated-device-online": "critical",
    "wrong-port": "medium",
    "unmanaged-switch": "high",
    "rogue-ra": "critical",
}


def test_every_kind_has_a_scenario_and_a_default():
    assert set(ONE_OF_EACH) == {kind.value for kind in FindingKind}
    assert {kind.value: level.value for kind, level in DEFAULT_SEVERITY.items()} == (
        DESIGN_DEFAULTS
    )


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
def test_default_severity(kind):
    found = findings(**ONE_OF_EACH[kind])
    assert [(f.kind.value, f.severity.value) for f in found] == [(kind, DESIGN_DEFAULTS[kind])]


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
@pytest.mark.parametrize("level", ["info", "critical"])
def test_override_replaces_the_default(kind, level):
    policy = settings(severity={kind: level})
    found = findings(policy=policy, **ONE_OF_EACH[kind])
    assert [(f.kind.value, f.severity.value) for f in found] == [(kind, level)]


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
def test_override_of_another_kind_changes_nothing(kind):
    other = "mac-moved" if kind != "mac-moved" else "open-proxy"
    found = findings(policy=settings(severity={other: "info"}), **ONE_OF_EACH[kind])
    assert [f.severity.value for f in found] == [DESIGN_DEFAULTS[kind]]


def busy_run() -> dict[str, Any]:
    """A run with a bit of everything, for order and output checks."""
    ledger = [
        device(IP1, A, "gateway", owner="gw"),
        device(IP2, B, owner="Li Wei", department="math"),
        device(IP3, C, status="suspended"),
        device(IP4, D, guest_until=YESTERDAY),
        device("10.20.1.10", "00:11:22:33:44:10"),
    ]
    observations = [
        arp(IP1, X),
        arp(IP2, B),
        arp(IP3, C),
        arp(IP4, D),
        arp(FREE, Y),
        arp("10.20.1.9", "aa:bb:cc:dd:ee:09"),
        icmp("10.30.0.1"),
    ]
    return {
        "ledger": ledger,
        "observations": observations,
        "services": [ServiceObservation(IP2, "tcp", 8080), ServiceObservation(IP2, "tcp", 21)],
        "proxies": [ProxyVerdict(FREE, 3128, "socks5", True)],
        "dhcp_offers": [DhcpOffer(FREE, Y, "10.20.1.50")],
        "names": [NameObservation(IP2, "desktop-1", "netbios")],
        "evidence": [Evidence(FREE, Y, "nat", "router")],
        "pools": [PoolRange("math", "10.20.1.0/28")],
        "last_seen": {},
    }


def test_order_is_severity_then_kind_then_address():
    found = findings(**busy_run())
    keys = [key(f) for f in found]
    ranks = [Severity(k[4]).rank for k in keys]
    assert ranks == sorted(ranks, reverse=True)
    assert keys[:2] == [
        ("ip-mac-mismatch", IP1, X, None, "critical"),
        ("rogue-dhcp", FREE, Y, None, "critical"),
    ]
    unregistered = [k[1] for k in keys if k[0] == "unregistered-host"]
    assert unregistered == ["10.20.1.9", FREE, "10.30.0.1"]  # numeric, not text, order


def test_same_facts_in_any_order_give_the_same_findings():
    run = busy_run()
    expected = findings(**run)
    shuffled = random.Random(7)
    for _ in range(5):
        mixed: dict[str, Any] = {
            name: (shuffled.sample(value, len(value)) if isinstance(value, list) else value)
            for name, value in run.items()
        }
        assert findings(**mixed) == expected


def test_subjects_do_not_depend_on_the_time_of_the_run():
    earlier = evaluate(replace(facts(**busy_run()), now=NOW - timedelta(hours=3)), settings())
    assert {(f.kind, f.subject) for f in earlier} == {
        (f.kind, f.subject) for f in findings(**busy_run())
    }


def test_output_is_plain_json_with_a_summary():
    found = findings(**busy_run())
    assert len(found) >= 12
    for finding in found:
        assert json.loads(json.dumps(finding.detail)) == finding.detail  # plain JSON values only
        assert finding.summary and "\n" not in finding.summary
    # A finding is stored under (site, kind, subject): no two of one run may share that key.
    assert len({(finding.kind, finding.subject) for finding in found}) == len(found)


def test_any_object_with_the_policy_attributes_will_do():
    plain = SimpleNamespace(
        default_allowed_services=(),
        hostname_rule="",
        stale_after_days=30,
        unregistered_grace_days=3,
        severity={FindingKind.MAC_MOVED: Severity.LOW},
    )
    found = evaluate(facts([device(IP1, A)], [arp(FREE, A)]), plain)
    assert [key(f) for f in found] == [("mac-moved", FREE, A, None, "low")]


@pytest.mark.parametrize("enabled", [True, False])
def test_garbage_collector_left_as_found(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        findings(**busy_run())
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_empty_run():
    assert judge() == set()
    assert evaluate(facts(), PolicySettings()) == []
