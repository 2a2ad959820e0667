"""`ipguard prune`: remove scan history older than the retention period (never the audit trail)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ipguard.cli.context import state
from ipguard.cli.output import emit_json, info


class PruneFormat(StrEnum):
    """Output formats of `prune`."""

    table = "table"
    json = "json"


_OlderThan = Annotated[
    int | None,
    typer.Option(
        "--older-than",
        help="Remove runs that started more than DAYS days ago (default: [retention] days; "
        "at least 60).",
        metavar="DAYS",
    ),
]
_DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
]
_Format = Annotated[PruneFormat, typer.Option("--format", help="table or json.")]


def prune(
    ctx: typer.Context,
    older_than: _OlderThan = None,
    dry_run: _DryRun = False,
    fmt: _Format = PruneFormat.table,
) -> None:
    """Remove scan runs (and what they saw) and resolved findings older than the retention.

    The audit trail is never pruned; open and acknowledged findings keep their evidence.
    """
    from datetime import UTC, datetime

    from ipguard.ledger import retention, skew

    shared = state(ctx)
    days = older_than if older_than is not None else shared.settings().retention.days
    now = datetime.now(UTC)
    retention.cutoff_for(days, now)  # refuse a too-short period before opening the ledger
    with shared.store().session(write=not dry_run) as session:
        skew.refuse_skewed(session, skew.PRUNE)  # the cutoff is this machine's now
        report = retention.prune(session, days=days, now=now, actor=shared.actor, dry_run=dry_run)
    if fmt == PruneFormat.json:
        emit_json(report.as_json())
        return
    data = report.as_json()
    verb = "would remove" if dry_run else "removed"
    seen = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in report.rows.items())
    typer.echo(
        f"{verb} {report.runs} scan runs that started before {data['cutoff']} ({seen}) "
        f"and {report.resolved_findings} findings resolved before then"
    )
    info("the audit trail is kept; open and acknowledged findings keep their evidence")
