"""unexpected-service, and how it shares ports with open-proxy and the binding findings."""

from __future__ import annotations

import pytest

from ipguard.model import ProxyVerdict, ServiceObservation
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    A,
    B,
    X,
    arp,
    device,
    findings,
    judge,
    only,
    service,
    settings,
)


def port(ip: str, spec: str, **fields: str) -> ServiceObservation:
    found = service(spec)
    return ServiceObservation(ip, found.proto, found.port, **fields)


def relays(ip: str, number: int, method: str = "http-connect") -> ProxyVerdict:
    return ProxyVerdict(ip, number, method, True)


CASES = [
    pytest.param(
        [device(IP1, A, allowed_services=["tcp/80"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/80")],
        [],
        set(),
        id="allowed for the device",
    ),
    pytest.param(
        [device(IP1, A)], [arp(IP1, A)], [port(IP1, "tcp/22")], [], set(), id="allowed everywhere"
    ),
    pytest.param(
        [device(IP1, A, allowed_services=["tcp/80"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/80"), port(IP1, "tcp/8080"), port(IP1, "udp/161")],
        [],
        {
            ("unexpected-service", IP1, A, "tcp/8080", "medium"),
            ("unexpected-service", IP1, A, "udp/161", "medium"),
        },
        id="one finding per unexpected port",
    ),
    pytest.param(
        [device(IP1, A, allowed_services=["udp/80"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/80")],
        [],
        {("unexpected-service", IP1, A, "tcp/80", "medium")},
        id="protocol matters",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [port(IP1, "tcp/8080"), port(IP1, "tcp/8080", service="http")],
        [],
        {("unexpected-service", IP1, A, "tcp/8080", "medium")},
        id="same port twice: one finding",
    ),
    pytest.param(
        [],
        [arp(FREE, X)],
        [port(FREE, "tcp/8080")],
        [],
        {("unregistered-host", FREE, X, None, "high")},
        id="unregistered host: no service findings",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, X)],
        [port(IP1, "tcp/8080")],
        [],
        {("ip-mac-mismatch", IP1, X, None, "high")},
        id="thief's ports are not the owner's",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(FREE, A)],
        [port(FREE, "tcp/8080")],
        [],
        {("mac-moved", FREE, A, None, "medium")},
        id="moved host: ports in the mac-moved detail",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A), arp(IP1, X)],
        [port(IP1, "tcp/8080")],
        [],
        {
            ("duplicate-ip", IP1, None, None, "high"),
            ("unexpected-service", IP1, A, "tcp/8080", "medium"),
        },
        id="duplicate with the owner among the answers: judged against the owner",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, X), arp(IP1, B)],
        [port(IP1, "tcp/8080")],
        [],
        {("duplicate-ip", IP1, None, None, "high")},
        id="duplicate without the owner: not judged",
    ),
    pytest.param(
        [device(IP1, A)],
        [],
        [port(IP1, "tcp/8080")],
        [],
        {("unexpected-service", IP1, A, "tcp/8080", "medium")},
        id="registered IP that missed the sweep: judged against its record",
    ),
    pytest.param(
        [], [], [port(FREE, "tcp/8080")], [], set(), id="free IP that missed the sweep: nothing"
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [port(IP1, "tcp/3128")],
        [relays(IP1, 3128)],
        {("open-proxy", IP1, A, "tcp/3128", "high")},
        id="relaying port without role proxy: open-proxy only",
    ),
    pytest.param(
        [device(IP1, A, allowed_services=["tcp/3128"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/3128")],
        [relays(IP1, 3128)],
        {("open-proxy", IP1, A, "tcp/3128", "high")},
        id="allowed port that relays, without role proxy: open-proxy",
    ),
    pytest.param(
        [device(IP1, A, "proxy", allowed_services=["tcp/3128"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/3128")],
        [relays(IP1, 3128)],
        set(),
        id="role proxy and allowed port: neither",
    ),
    pytest.param(
        [device(IP1, A, "proxy", allowed_services=["tcp/3128"])],
        [arp(IP1, A)],
        [port(IP1, "tcp/8118")],
        [relays(IP1, 8118)],
        {("unexpected-service", IP1, A, "tcp/8118", "medium")},
        id="role proxy on a port not allowed: unexpected-service only",
    ),
    pytest.param(
        [device(IP1, A)],
        [arp(IP1, A)],
        [port(IP1, "tcp/3128")],
        [ProxyVerdict(IP1, 3128, "http-connect", False)],
        {("unexpected-service", IP1, A, "tcp/3128", "medium")},
        id="proxy port that does not relay: unexpected-service",
    ),
    pytest.param(
        [device(IP1, A, "proxy")],
        [arp(IP1, A)],
        [port(IP1, "tcp/3128")],
        [],
        {("unexpected-service", IP1, A, "tcp/3128", "medium")},
        id="role proxy alone does not allow a port",
    ),
    pytest.param(
        [device(IP1, A), device(IP2, A, allowed_services=["tcp/8080"])],
        [arp(IP1, A), arp(IP2, A)],
        [port(IP1, "tcp/8080"), port(IP2, "tcp/8080")],
        [],
        {("unexpected-service", IP1, A, "tcp/8080", "medium")},
        id="services are allowed per address",
    ),
]


@pytest.mark.parametrize(("ledger", "observations", "services", "proxies", "expected"), CASES)
def test_services(ledger, observations, services, proxies, expected):
    assert judge(ledger, observations, services=services, proxies=proxies) == expected


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ((), {("unexpected-service", IP1, A, "tcp/22", "medium")}),
        ((service("tcp/22"),), set()),
        ((service("tcp/443"),), {("unexpected-service", IP1, A, "tcp/22", "medium")}),
    ],
)
def test_default_allowed_services_come_from_settings(defaults, expected):
    policy = settings(default_allowed_services=defaults)
    assert judge([device(IP1, A)], [arp(IP1, A)], policy, services=[port(IP1, "tcp/22")]) == (
        expected
    )


def test_override_severity():
    policy = settings(severity={"unexpected-service": "high"})
    assert judge([device(IP1, A)], [arp(IP1, A)], policy, services=[port(IP1, "tcp/23")]) == {
        ("unexpected-service", IP1, A, "tcp/23", "high")
    }


def test_detail_and_summary():
    ledger = [device(IP1, A, owner="Li Wei", allowed_services=["tcp/80"])]
    found = findings(
        ledger,
        [arp(IP1, A)],
        services=[port(IP1, "tcp/8080", service="http", product="nginx", version="1.22")],
    )
    finding = only(found, "unexpected-service")
    assert finding.subject == f"{IP1}|{A}|tcp/8080"
    assert finding.detail["product"] == "nginx"
    assert finding.detail["allowed"] == ["tcp/80"]
    assert finding.detail["allowed_everywhere"] == ["tcp/22"]
    assert "Li Wei" in finding.summary and "nginx 1.22" in finding.summary
