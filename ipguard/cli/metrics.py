"""`ipguard metrics write`, and the metrics refresh that scans and finding changes share.

The Prometheus textfile describes the ledger as it stands, so anything that changes what it says
(a scan, `findings ack`, `findings resolve`) rewrites it: a scan into `--metrics-file` or
`[scan] metrics_file`, the finding commands into `[scan] metrics_file` when it is configured.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ipguard.cli.context import AppState, site_option, state
from ipguard.cli.output import info, safe

app = typer.Typer(help="Prometheus metrics for node_exporter's textfile collector.")


def write_metrics(
    shared: AppState, site: str, path: Path, *, succeeded: bool | None = None
) -> None:
    """Rewrite `path` atomically from the ledger; a ledger that cannot be read says so only when a
    scan is reporting (`succeeded` given), otherwise the error propagates."""
    from ipguard.errors import IpguardError
    from ipguard.ledger.reporting import site_state
    from ipguard.metrics import SiteMetrics, gather, render, write_textfile

    now = datetime.now(UTC)
    try:
        with shared.store().session(write=False) as session:
            metrics = gather(site_state(session, site, now), site, now=now, succeeded=succeeded)
    except IpguardError:
        if succeeded is None:
            raise
        # The ledger is what failed: say at least that the scan did.
        metrics = SiteMetrics(site=site, attempted_at=now, succeeded=False)
    write_textfile(path.expanduser(), render(metrics))


def configured_file(shared: AppState) -> Path | None:
    """`[scan] metrics_file`, if the configuration names one."""
    name = shared.settings().scan.metrics_file
    return Path(name).expanduser() if name else None


def refresh(shared: AppState, site: str) -> None:
    """After a finding of `site` changed: rewrite the configured metrics file, when it is that
    site's (problems are warnings).

    The file describes `[scan] site`; a finding of another site (many sensors on one ledger, a
    sensor scanning two sites) rewrote it with that site's metrics: the dashboard lost this
    site, and node_exporter, reading the other site's own file too, met every series twice.
    """
    from ipguard.errors import IpguardError

    try:
        path = configured_file(shared)
        if path is not None and site == shared.settings().scan.site:
            write_metrics(shared, site, path)
    except IpguardError as error:
        typer.echo(f"warning: metrics not refreshed: {safe(str(error))}", err=True)
    except OSError as error:
        typer.echo(
            f"warning: cannot write metrics to {safe(error.filename)}: {error.strerror}", err=True
        )


@app.command("write")
def write(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The .prom file to (re)write.")],
    site: Annotated[
        str | None,
        typer.Option(help="Site to describe (default: [scan] site).", callback=site_option),
    ] = None,
) -> None:
    """Write the Prometheus textfile from the ledger, without scanning (atomically)."""
    from ipguard.errors import InvalidValue

    shared = state(ctx)
    chosen = site or shared.settings().scan.site
    if site:  # named by hand: a typo would write a quiet site's zeros for a dashboard to trust
        from ipguard.ledger.reporting import refuse_unknown_site

        with shared.store().session(write=False) as session:
            refuse_unknown_site(session, site)
    try:
        write_metrics(shared, chosen, path)
    except OSError as error:
        raise InvalidValue(f"cannot write metrics to {path}: {error.strerror}") from None
    info(f"metrics of site {chosen} written to {path}")
