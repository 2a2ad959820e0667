"""`ipguard scan`: one run over the configured subnets, for a person or for cron."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ipguard.cli.context import AppState, settle, state
from ipguard.cli.output import emit_json, info, progress_bars, safe, table
from ipguard.config import MAX_RATE

if TYPE_CHECKING:
    from collections.abc import Callable

    from ipguard.config import PolicySettings, Settings
    from ipguard.model import ScanRequest
    from ipguard.runner import RunOutcome, Scanner

    Progress = Callable[[str, int, int], None]


class ScanFormat(StrEnum):
    """Output formats of `scan`."""

    table = "table"
    json = "json"


# Seconds the scan waits at most for the sweep's first probe before it opens the ledger (see
# scan()); the probe leaves within milliseconds, this bound is for a machine under heavy load.
FIRST_PROBE_WAIT = 3.0


def make_scanner() -> Scanner:
    """The network scanner, unless the invocation's state injects another (AppState)."""
    from ipguard.scanners.suite import NetworkScanner

    return NetworkScanner()


def scan(
    ctx: typer.Context,
    interface: Annotated[
        str | None, typer.Option(help="Interface to sweep from (default: [scan] interface, eth0).")
    ] = None,
    subnet: Annotated[
        list[str] | None,
        typer.Option(
            "--subnet",
            help="Subnet to scan (repeatable; default: [scan] subnets); must lie inside [scan] "
            "subnets. An IPv6 prefix: neighbour discovery on the interface's link, never a sweep.",
        ),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(
            help="Probes per second, all phases together (default: [scan] rate, 2000).",
            min=1,
            max=MAX_RATE,
        ),
    ] = None,
    no_services: Annotated[
        bool,
        typer.Option(
            "--no-services", help="Skip the nmap service scan (as [scan] services = false)."
        ),
    ] = False,
    phases: Annotated[
        str | None,
        typer.Option(
            "--phases",
            help="Comma-separated phases to run: sweep,services,proxy,dhcp,names,evidence,snmp,"
            "ipv6 (default: all; ipv6 only when the interface has IPv6 on a link in scope).",
            metavar="LIST",
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Service-scan every live host, changed or not (default: only hosts whose MAC or "
            "open ports changed; every host when the last full scan is older than [scan] "
            "full_rescan_hours, 24).",
        ),
    ] = False,
    site: Annotated[
        str | None,
        typer.Option(help="Site name this sensor reports as (default: [scan] site, main)."),
    ] = None,
    fmt: Annotated[ScanFormat, typer.Option("--format", help="Output format.")] = ScanFormat.table,
    fail_on: Annotated[
        str | None,
        typer.Option(
            help="Exit 1 when a finding at or above this severity is open: info, low, medium, "
            "high or critical (default: [policy] fail_on, high)."
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for another scan of the site to finish (default 0: exit 3 at "
            "once).",
            min=0,
            max=86_400,
        ),
    ] = 0.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors (cron).")
    ] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            help="Write Prometheus metrics here after the scan (default: [scan] metrics_file).",
            metavar="PATH",
        ),
    ] = None,
) -> None:
    """Sweep the subnets, compare with the ledger, record and print the findings.

    Exit 0, or 1 while a finding at or above --fail-on is open; 2 for bad input, 3 when the scan
    cannot run (no raw sockets, no part of the subnets reachable, the site's scan lock held, the
    ledger unavailable).
    """
    # The scanner starts before the ledger is opened (importing and opening it takes longer than
    # a small sweep): the first probe goes out at once, and the run is recorded meanwhile.
    if not math.isfinite(wait):  # nan passes the range check, and never ends a wait
        raise typer.BadParameter("give a number of seconds", param_hint="--wait")
    shared = state(ctx)
    settings = shared.settings()
    policy = _policy(settings.policy, fail_on)
    request = _request(
        settings,
        interface=interface,
        subnets=subnet or [],
        rate=rate,
        phases=phases,
        no_services=no_services,
        full=full,
        site=site,
    )
    bars = not quiet and fmt == ScanFormat.table
    outcome = _run(shared, request, policy, wait=wait, metrics_file=metrics_file, bars=bars)
    from ipguard.cli.scan_warnings import warn, warn_unreadable_spool

    warn(outcome, quiet=quiet)
    warn_unreadable_spool(shared.store().url)
    if fmt == ScanFormat.json:
        from ipguard.reports.serialize import scan_json

        emit_json(scan_json(outcome.run, outcome.live))
    elif not quiet:
        _print_outcome(outcome, settings.policy.timezone)
    raise typer.Exit(1 if outcome.failing else 0)


def _policy(policy: PolicySettings, fail_on: str | None) -> PolicySettings:
    """The configured policy, with `--fail-on` applied."""
    from dataclasses import replace

    from ipguard.errors import InvalidValue
    from ipguard.model import Severity

    if not fail_on:
        return policy
    try:
        return replace(policy, fail_on=Severity(fail_on.lower()))
    except ValueError:
        levels = ", ".join(level.value for level in Severity)
        raise InvalidValue(f"--fail-on {fail_on!r}: use one of {levels}") from None


def _request(
    settings: Settings,
    *,
    interface: str | None,
    subnets: list[str],
    rate: int | None,
    phases: str | None,
    no_services: bool,
    full: bool,
    site: str | None,
) -> ScanRequest:
    """What to scan: the command's options over the configuration's [scan] settings."""
    from ipguard.config import check_site, option_value, parse_port_spec
    from ipguard.errors import ConfigError, InvalidValue
    from ipguard.model import ScanRequest

    try:
        ports = parse_port_spec(settings.scan.ports, "scan.ports")
    except ConfigError as error:
        raise InvalidValue(str(error)) from None
    chosen = _phases(phases, no_services=no_services or not settings.scan.services)
    return ScanRequest(
        site=settings.scan.site if site is None else check_site(site, "--site"),
        interface=option_value(interface, settings.scan.interface, "--interface"),
        subnets=_sweepable(_subnets(subnets, settings.scan.subnets), given=bool(subnets)),
        rate=rate or settings.scan.rate,
        retries=settings.scan.retries,
        timeout=settings.scan.timeout,
        tcp_ping=settings.scan.tcp_ping,
        services="services" in chosen,
        phases=chosen,
        ports=ports,
        dns_servers=settings.names.dns_servers,
        name_timeout=settings.names.timeout,
        dhcp_wait=settings.scan.dhcp_wait,
        ra_wait=settings.scan.ra_wait,
        full=full,
        full_rescan_hours=settings.scan.full_rescan_hours,
        snmp_devices=settings.snmp.devices,
        snmp_timeout=settings.snmp.timeout,
        snmp_retries=settings.snmp.retries,
    )


def _run(
    shared: AppState,
    request: ScanRequest,
    policy: PolicySettings,
    *,
    wait: float,
    metrics_file: Path | None,
    bars: bool,
) -> RunOutcome:
    """Start the scanner, then record the run meanwhile (see `scan`); alerts and metrics after.

    A scan that fails still refreshes alerts and metrics; one interrupted cancels the scanner.
    """
    from ipguard.errors import LockHeld

    scanner = (shared.scanner_factory or make_scanner)()
    begin, cancel = getattr(scanner, "begin", None), getattr(scanner, "cancel", None)
    updates: list[Progress] = []  # drawn once rich is loaded, after the first probes are out

    def relay(name: str, done: int, total: int) -> None:
        for update in updates:
            update(name, done, total)

    try:
        if begin is not None:  # scanners.suite.NetworkScanner: see `scan`
            begin(request, relay)
            scanner.wait_first_probe(FIRST_PROBE_WAIT)  # type: ignore[attr-defined]
        with progress_bars(enabled=bars) as progress:
            if progress is not None:
                updates.append(progress)
            from ipguard.runner import run_scan

            settle()  # the last big import is done (see context.settle)
            outcome = run_scan(
                shared.store(),
                request,
                scanner,
                policy=policy,
                actor=shared.actor,
                wait=wait,
                progress=relay,
            )
    except BaseException as error:
        if cancel is not None:
            cancel()
        # A scan refused by the lock is no failed scan: the one holding it writes the metrics.
        if isinstance(error, Exception) and not isinstance(error, LockHeld):
            _after_scan(shared, request.site, None, metrics_file)
        raise
    _after_scan(shared, request.site, outcome, metrics_file)
    return outcome


def _after_scan(
    shared: AppState, site: str, outcome: RunOutcome | None, metrics_file: Path | None
) -> None:
    """Alerts, then metrics. Neither changes the scan's exit code: problems are warnings."""
    from ipguard.errors import IpguardError

    now = datetime.now(UTC)
    # Without [alerts] urls there is nothing to send: not even the module is loaded then.
    if outcome is not None and shared.settings().alerts.urls:
        from ipguard.alerts import exposed, send_digest

        said = exposed(shared.settings().source, shared.settings().alerts.urls)
        if said is not None:
            typer.echo(f"warning: {safe(said)}", err=True)
        try:
            alerted = send_digest(
                shared.store(), shared.settings().alerts, site=site, run_id=outcome.run.id, now=now
            )
            problems = alerted.failed
        except IpguardError as error:
            problems = [f"alerts not sent: {error}"]
        for line in problems:
            typer.echo(f"warning: {safe(line)}", err=True)
    from ipguard.cli.metrics import configured_file, write_metrics

    if metrics_file is None and site == shared.settings().scan.site:
        metrics_file = configured_file(shared)  # it describes [scan] site (cli.metrics.refresh)
    if metrics_file is not None:
        try:
            write_metrics(shared, site, metrics_file, succeeded=outcome is not None)
        except OSError as error:
            typer.echo(
                f"warning: cannot write metrics to {safe(metrics_file)}: {error.strerror}", err=True
            )


def _phases(given: str | None, *, no_services: bool) -> tuple[str, ...]:
    """The phases to run: those named (checked against the known ones), else all of them."""
    from ipguard.errors import InvalidValue
    from ipguard.model import Phase

    known = [phase.value for phase in Phase]
    if given is None:
        chosen = known
    else:
        chosen = [name.strip().lower() for name in given.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            raise InvalidValue(
                f"--phases {given!r}: {', '.join(unknown) or 'no phase given'}; "
                f"use some of {','.join(known)}"
            )
    return tuple(
        name for name in known if name in chosen and not (no_services and name == "services")
    )


def _subnets(given: list[str], configured: tuple[str, ...]) -> tuple[str, ...]:
    """The subnets to probe: those given, each inside the configured scope, else the scope."""
    import ipaddress

    from ipguard.errors import InvalidValue, ScopeError

    scope = [ipaddress.ip_network(item) for item in configured]
    chosen = []
    for text in given:
        try:
            network = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as error:
            raise InvalidValue(f"--subnet {text!r}: {error}") from None
        if scope and not any(
            network.version == allowed.version and network.subnet_of(allowed)  # type: ignore[arg-type]
            for allowed in scope
        ):
            raise ScopeError(
                f"--subnet {network} is outside the subnets ipguard.toml allows "
                f"({', '.join(configured)}); add it to [scan] subnets first"
            )
        chosen.append(str(network))
    if not chosen and not configured:
        raise InvalidValue(
            "no subnets to scan: set [scan] subnets in ipguard.toml or pass --subnet CIDR"
        )
    return tuple(chosen) or configured


def _sweepable(subnets: tuple[str, ...], *, given: bool) -> tuple[str, ...]:
    """The subnets, unless they hold more IPv4 addresses than one scan may sweep.

    [scan] subnets may be a broad scope that --subnet narrows (and `watch`, which never sends,
    listens to all of it).
    """
    from ipguard.addresses import MAX_SWEEP_ADDRESSES, ipv4_size
    from ipguard.errors import InvalidValue

    size = ipv4_size(subnets)
    if size > MAX_SWEEP_ADDRESSES:
        raise InvalidValue(
            f"{'--subnet' if given else '[scan] subnets'} {', '.join(subnets)}: "
            f"{size:,} IPv4 addresses, more than the {MAX_SWEEP_ADDRESSES:,} (a /12) one scan "
            "may sweep; scan smaller subnets with --subnet"
        )
    return subnets


def _print_outcome(outcome: RunOutcome, zone: tzinfo) -> None:
    from ipguard.localtime import iso_local
    from ipguard.reports.serialize import is_overdue

    run = outcome.run
    now = datetime.now(UTC)
    rows = []
    for row in outcome.live:
        due = iso_local(row.report_due_at, zone) or ""
        if is_overdue(row, now):
            due += " OVERDUE"
        rows.append(
            (row.id, row.severity, row.kind, row.ip, row.mac, row.port, row.state, due, row.summary)
        )
    if rows:
        table(
            ("id", "severity", "kind", "ip", "mac", "port", "state", "report due", "summary"),
            rows,
            title=f"open findings at site {run.site}",
        )
    hosts = run.counts.get("hosts_seen", 0)
    info(
        f"run {run.id} complete: {hosts} hosts seen, {len(outcome.new)} new, "
        f"{len(outcome.resolved)} resolved, {len(outcome.live)} open findings"
    )
    if outcome.aborted_before:
        ids = ", ".join(str(run_id) for run_id in outcome.aborted_before)
        info(f"earlier run(s) {ids} had died and were marked aborted")
