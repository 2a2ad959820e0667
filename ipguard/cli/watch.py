"""`ipguard watch`: judge the ARP and DHCP frames of the link in real time, until stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ipguard.cli.context import state
from ipguard.cli.output import info, safe
from ipguard.escape import one_line

if TYPE_CHECKING:
    from ipguard.config import Settings
    from ipguard.ledger.scan_tables import FindingRow
    from ipguard.watch.service import WatchRequest


NETWORK_TIMEOUT = 2.0  # seconds


def finding_line(event: str, row: FindingRow) -> str:
    """The line a new or escalated finding gets on standard error (the journal under systemd)."""
    subject = " ".join(part for part in (row.ip, row.mac, row.port) if part)
    what = "escalated" if event == "escalated" else "new"
    return one_line(
        f"[{row.severity.upper()}] {what} finding #{row.id} {row.kind} {subject}: {row.summary}"
    )


def watch(
    ctx: typer.Context,
    interface: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: [scan] interface, eth0).")
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(help="Site name this sensor reports as (default: [scan] site, main)."),
    ] = None,
    subnet: Annotated[
        list[str] | None,
        typer.Option(
            "--subnet",
            help="Subnet whose claims are judged (repeatable; default: [scan] subnets); inside "
            "[scan] subnets.",
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No start and stop lines; findings and warnings only."),
    ] = False,
    print_unit: Annotated[
        bool,
        typer.Option("--print-unit", help="Print a systemd service running this watch, and exit."),
    ] = False,
) -> None:
    """Listen to the link (never sending a frame) and judge every ARP, DHCP and IPv6 NS/NA/RA
    frame against the ledger within a second, until SIGTERM or Ctrl-C.

    Findings are opened and updated, never resolved (the scans resolve them); SIGHUP rereads the
    configuration and the ledger.
    """
    from ipguard.cli.scan import _subnets
    from ipguard.config import check_site, option_value
    from ipguard.watch.service import Watcher, WatchRequest

    shared = state(ctx)
    settings = shared.settings()
    request = WatchRequest(
        site=settings.scan.site if site is None else check_site(site, "--site"),
        interface=option_value(interface, settings.scan.interface, "--interface"),
        subnets=_subnets(subnet or [], settings.scan.subnets),
        actor=shared.actor,
    )
    if print_unit:
        typer.echo(_unit(shared.db, shared.config, request, subnet or []), nl=False)
        return
    from ipguard.ledger.store import Store
    from ipguard.ledger.urls import resolve_url

    # A PostgreSQL server that goes silent (its host off, a partition) may hold a write for a
    # couple of seconds, not TCP's minutes: the watcher has frames to read meanwhile.
    store = Store(resolve_url(shared.db), wait=shared.wait, timeout=NETWORK_TIMEOUT)

    def warn(message: str) -> None:
        typer.echo(f"warning: {safe(message)}", err=True)

    def report(event: str, row: FindingRow) -> None:
        typer.echo(finding_line(event, row), err=True)

    watcher = Watcher(
        store,
        request,
        lambda: _reread(shared.config),
        report=report,
        warn=warn,
    )
    info(
        f"watching {request.interface} for site {request.site} "
        f"({', '.join(request.subnets)}); stop with Ctrl-C or SIGTERM",
        quiet=quiet,
    )
    watcher.run()
    if watcher.aborted_before:
        ids = ", ".join(str(run_id) for run_id in watcher.aborted_before)
        info(f"earlier watch run(s) {ids} had died and were marked aborted", quiet=quiet)
    counts = watcher.summary()
    info(
        f"watch run {watcher.run_id} stopped: {counts['frames_read']:,} frames read, "
        f"{counts['frames_judged']:,} judged, {counts['frames_ignored']:,} ignored, "
        f"{counts['findings_new']} new findings",
        quiet=quiet,
    )


def _reread(config: str | None) -> Settings:
    from ipguard.config import load_settings

    return load_settings(config)


def _unit(db: str | None, config: str | None, request: WatchRequest, subnets: list[str]) -> str:
    """The systemd unit for this very watch command (absolute paths, no secrets)."""
    import os
    from pathlib import Path

    from ipguard.config import find_config
    from ipguard.errors import InvalidValue
    from ipguard.ledger.urls import absolute_url, display_url, resolve_url
    from ipguard.schedule import SERVICE_USER, ipguard_argv
    from ipguard.spool import sqlite_file
    from ipguard.watch.systemd import unit

    argv = ipguard_argv()
    writable: list[str] = []
    url = db or os.environ.get("IPGUARD_DB")
    if url:
        url = absolute_url(resolve_url(url))
        if display_url(url) != url:
            raise InvalidValue(
                "the ledger URL holds a password: put IPGUARD_DB=… in the unit's EnvironmentFile "
                "(mode 600) instead of printing it into a unit"
            )
        argv += ["--db", url]
        ledger = sqlite_file(url)
        if ledger is not None:
            writable.append(str(ledger.parent))
    path = find_config(config)
    if path is not None:
        argv += ["--config", str(Path(path).absolute())]
    argv += ["watch", "--quiet", "--interface", request.interface, "--site", request.site]
    for item in subnets:
        argv += ["--subnet", item]
    return unit(argv, site=request.site, writable=writable, user=SERVICE_USER)
