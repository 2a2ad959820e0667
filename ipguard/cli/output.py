"""Everything ipguard prints: safe text, rich tables on a terminal, JSON and CSV for scripts.

Values may come from the network (hostnames, banners) or from files: they are shown with control
characters made visible and never interpreted as rich markup.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer


class Format(StrEnum):
    """Output formats of listing commands."""

    table = "table"
    json = "json"
    csv = "csv"


class Shown(StrEnum):
    """Output formats of commands that show one thing or a grouped view: no CSV of those."""

    table = "table"
    json = "json"


def safe(value: Any) -> str:
    """Text safe for a terminal: `ipguard.escape.visible`, the one rule every output follows."""
    from ipguard.escape import visible

    return visible(value)


def error_line(message: str) -> None:
    """The one line a failure prints on standard error."""
    typer.echo(f"error: {safe(message)}", err=True)


def quiet_broken_pipe() -> None:
    """The reader of standard output went away (`| head`): stop writing there, say nothing."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit fails no more
    except (OSError, ValueError):  # standard output is not a file (captured)
        pass
    finally:
        os.close(devnull)


def info(message: str, *, quiet: bool = False) -> None:
    """A line for the person at the terminal (standard error, so scripts read clean stdout)."""
    if not quiet:
        typer.echo(safe(message), err=True)


def sections(parts: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
    """Titled sections of `label  text` lines (labels aligned), an empty section saying so."""
    blocks = []
    for title, lines in parts:
        width = max((len(label) for label, _ in lines), default=0)
        body = [
            f"  {safe(label):<{width}}  {safe(text)}".rstrip() if label else f"  {safe(text)}"
            for label, text in lines
        ]
        blocks.append("\n".join([safe(title), *(body or ["  (none)"])]))
    typer.echo("\n\n".join(blocks))


def _console() -> Any:
    from rich.console import Console

    interactive = sys.stdout.isatty()
    # Off a terminal, never wrap or cut cells: scripts and logs read whole lines.
    return Console(
        width=None if interactive else 10_000, highlight=False, soft_wrap=not interactive
    )


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """A rich table; every cell is plain text (no markup), escaped."""
    from rich.table import Table
    from rich.text import Text

    # A title is text too (a site name, say): as a plain str rich would read "[…]" as markup.
    grid = Table(title=None if title is None else Text(safe(title)), header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(safe(cell)) for cell in row))
    _console().print(grid)


@contextmanager
def progress_bars(*, enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """`update(name, done, total)` drawing a rich progress bar per name on a terminal's stderr.

    None when disabled or when stderr is not a terminal (cron, pipes): nothing is drawn there.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress as Bars

    tasks: dict[str, Any] = {}
    with Bars(console=Console(stderr=True), transient=True) as bars:

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done, total=total)

        yield update


class Counted(Sequence[Any]):
    """A sequence that reports how far an iteration over it got, as a progress bar's `update`.

    Library code that loops over rows (checking an import, writing an export) gets a bar without
    knowing about one; a second pass over the rows leaves the bar full.
    """

    def __init__(
        self, items: Sequence[Any], name: str, update: Callable[[str, int, int], None]
    ) -> None:
        self._items, self._name, self._update = items, name, update
        self._step = max(len(items) // 200, 1)  # about 200 redraws, however many rows

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __iter__(self) -> Iterator[Any]:
        total = len(self._items)
        for done, item in enumerate(self._items, 1):
            yield item
            if done % self._step == 0 or done == total:
                self._update(self._name, done, total)


def counted(
    items: Sequence[Any], name: str, update: Callable[[str, int, int], None] | None
) -> Sequence[Any]:
    """`items` reporting progress under `name` when there is a bar, else `items` itself."""
    return items if update is None else Counted(items, name, update)


def emit_json(data: Any) -> None:
    """JSON on standard output (non-ASCII kept readable, control characters escaped)."""
    from ipguard.escape import json_text

    sys.stdout.write(json_text(data) + "\n")


def emit_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """CSV on standard output; cells that a spreadsheet would run as formulas are neutralised."""
    from ipguard.escape import visible
    from ipguard.ledger.files import escape_cell

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [escape_cell(visible(row.get(column, "") or "", keep="\t\n")) for column in columns]
        )


def emit(
    fmt: Format,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
) -> None:
    """Rows in the chosen format."""
    if fmt == Format.json:
        emit_json(list(rows))
    elif fmt == Format.csv:
        emit_csv(columns, rows)
    else:
        table(columns, ([row.get(column, "") for column in columns] for row in rows), title=title)
