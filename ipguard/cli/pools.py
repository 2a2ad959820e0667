"""`ipguard pools …`: department address pools and handing out the next free address."""

from __future__ import annotations

from typing import Annotated

import typer

from ipguard.cli.context import state
from ipguard.cli.output import Format, emit, info

app = typer.Typer(help="Department address pools.", no_args_is_help=True)


@app.command()
def add(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument(help="Department or unit.")],
    cidr: Annotated[str, typer.Argument(help="Network in CIDR notation, e.g. 10.20.1.0/24.")],
    description: Annotated[str, typer.Option(help="What the pool is for.")] = "",
) -> None:
    """Give a department an address pool; pools may not overlap."""
    from ipguard.ledger import pools

    shared = state(ctx)
    with shared.store().session() as session:
        pool = pools.add(session, department, cidr, description, actor=shared.actor)
        info(f"pool {pool.cidr} added for {pool.department}")


@app.command("list")
def list_(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """List pools by department."""
    from ipguard.ledger import pools

    with state(ctx).store().session(write=False) as session:
        rows = [
            {"department": pool.department, "cidr": pool.cidr, "description": pool.description}
            for pool in pools.list_pools(session)
        ]
    emit(fmt, ("department", "cidr", "description"), rows, title="address pools")


@app.command()
def remove(
    ctx: typer.Context,
    cidr: Annotated[str, typer.Argument(help="The pool's network.")],
) -> None:
    """Remove a pool (devices keep their addresses)."""
    from ipguard.ledger import pools

    shared = state(ctx)
    with shared.store().session() as session:
        pool = pools.remove(session, cidr, actor=shared.actor)
        info(f"pool {pool.cidr} of {pool.department} removed")


@app.command("next-free")
def next_free(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument(help="Department whose pools to allocate from.")],
) -> None:
    """Print the lowest free address of the department's pools (one nobody used lately)."""
    from datetime import UTC, datetime, timedelta

    from ipguard.ledger import pools

    shared = state(ctx)
    # An address some device answered at within stale_after_days is still its address: a
    # registration unseen that long is stale, and so is an address nobody answered at.
    days = shared.settings().policy.stale_after_days
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    with shared.store().session(write=False) as session:
        typer.echo(pools.next_free(session, department, seen_since=since))
