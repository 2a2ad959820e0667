"""Services nobody approved: unexpected-service.

One finding per open port (ip, registered MAC, "tcp/8080") on a host an active record authorises,
when the port is neither in the record's allowed services nor in `default_allowed_services`.

- Ports of hosts with a binding finding (unregistered, mismatch, moved, duplicate without the
  registered MAC, suspended) are listed in that finding's detail instead: the host is the problem.
- A port proven to relay (`ProxyVerdict.relays`) on a device without role proxy is an open-proxy
  finding only. With role proxy it is judged like any port: allowed, nothing; not allowed,
  unexpected-service only.
- A port found at an IP nothing answered during the sweep is judged against the active record of
  that IP, if there is one.
"""

from __future__ import annotations

from ipguard.model import Finding, FindingKind, Role, ServiceObservation
from ipguard.policies.base import PolicySettingsLike, RunFacts, registration, severity_of, who
from ipguard.policies.sightings import Host, Sightings


def relaying(facts: RunFacts) -> set[tuple[str, int]]:
    """(ip, tcp port) of every proxy that relayed to the canary."""
    return {(verdict.ip, verdict.port) for verdict in facts.proxies if verdict.relays}


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every unexpected-service finding of the run."""
    relays = relaying(facts)
    defaults = frozenset(settings.default_allowed_services)
    hosts: dict[str, Host] = {}
    judged: set[tuple[str, str, int]] = set()
    found = []
    for service in facts.services:
        key = (service.ip, service.proto, service.port)
        if key in judged:
            continue
        judged.add(key)
        host = hosts.get(service.ip)
        if host is None:
            host = hosts[service.ip] = seen.host(service.ip)
        record = host.record
        if record is None:
            continue
        port = service.as_service
        if port in record.allowed_services or port in defaults:
            continue
        proven_proxy = port.proto == "tcp" and (service.ip, port.port) in relays
        if proven_proxy and Role.PROXY not in host.roles:
            continue  # open-proxy says it
        kind = FindingKind.UNEXPECTED_SERVICE
        summary = (
            f"{port} ({_describe(service)}) is open on {service.ip} ({who(record)}) "
            f"but is not among its allowed services"
        )
        detail = {
            "port": str(port),
            "service": service.service,
            "product": service.product,
            "version": service.version,
            "banner": service.banner,
            "relays": proven_proxy,
            "allowed": sorted(str(item) for item in record.allowed_services),
            "allowed_everywhere": sorted(str(item) for item in defaults),
            "registered": registration(record),
        }
        found.append(
            Finding(
                kind,
                severity_of(kind, settings),
                service.ip,
                record.mac,
                str(port),
                summary,
                detail,
            )
        )
    return found


def _describe(service: ServiceObservation) -> str:
    words = " ".join(part for part in (service.product, service.version) if part)
    if service.service and words:
        return f"{service.service}: {words}"
    return service.service or words or "unknown service"
