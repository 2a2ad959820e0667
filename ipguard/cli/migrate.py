"""`ipguard ledger migrate --to URL`: move the ledger and its whole history to another database."""

from __future__ import annotations

from typing import Annotated

import typer

from ipguard.cli.context import state
from ipguard.cli.output import Format, emit, info, progress_bars


def migrate(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Empty database to copy the ledger into: postgresql+psycopg://USER@HOST/DB, "
            "or a SQLite path.",
            metavar="URL",
        ),
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Copy the ledger with its whole history (devices, pools, audit, runs, findings) into an
    empty database, keeping ids and timestamps; all of it, or nothing on any error.

    The ledger given by --db stays as it is: point --db or IPGUARD_DB at the new one afterwards.
    """
    from ipguard.errors import InvalidValue
    from ipguard.ledger.store import Store
    from ipguard.ledger.transfer import copy_ledger
    from ipguard.ledger.urls import resolve_url

    if not to.strip():
        raise InvalidValue("--to needs a database URL or a SQLite path")
    source = state(ctx).store()
    target = Store(resolve_url(to.strip(), "--to"))
    try:
        with progress_bars(enabled=not quiet) as progress:
            transfer = copy_ledger(source, target, progress=progress)
    finally:
        target.close()
    if quiet:
        return
    rows = [{"table": table.name, "rows": table.rows} for table in transfer.tables]
    emit(Format.table, ("table", "rows"), rows, title=f"copied to {transfer.target}")
    info(
        f"copied {transfer.rows} rows from {transfer.source} to {transfer.target}; "
        "use it with --db or IPGUARD_DB"
    )
