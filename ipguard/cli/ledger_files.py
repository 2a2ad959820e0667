"""`ipguard ledger import` and `ledger export`: the ledger to and from CSV, XLSX and JSON files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

import typer

from ipguard.cli.context import state
from ipguard.cli.output import (
    Format,
    counted,
    emit,
    error_line,
    info,
    progress_bars,
    quiet_broken_pipe,
    safe,
)

QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line (cron).")
]


def import_(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            help="CSV, XLSX or JSON file ('-': standard input, CSV unless --format says otherwise)."
        ),
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, xlsx or json (default: by extension).")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="merge: add and update; replace: the file becomes the ledger.")
    ] = "merge",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    max_retire: Annotated[
        int | None,
        typer.Option(
            "--max-retire",
            min=0,
            max=2**62,
            help="replace: refuse to retire more records than this "
            "(default: a tenth of the active records, at least one).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace: retire however many records it takes.")
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="CSV text encoding, e.g. cp1252 or gb18030 (default: UTF-8; GB18030 "
            "when the whole file is clearly that)."
        ),
    ] = None,
    sheet: Annotated[
        str | None, typer.Option(help="XLSX: the sheet to read (default: the active sheet).")
    ] = None,
    errors: Annotated[
        str | None,
        typer.Option("--errors", help="Write every bad row to this file (the screen shows 50)."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Import a ledger file, all or nothing: any bad row and nothing changes."""
    from ipguard.errors import LedgerFileError
    from ipguard.ledger import files

    shared = state(ctx)
    if errors is not None:
        shared.refuse_own_file(errors, "--errors")
        _refuse_errors_onto(errors, file)
    progress = _Progress()
    try:
        try:
            form = files.detect_format(file, fmt)
            _refuse_options_of_other_formats(file, form, encoding=encoding, sheet=sheet)
            rows = files.read_rows(file, form, encoding=encoding, sheet=sheet)
            plan = _import(
                shared, progress, file, rows, mode, dry_run, (max_retire, force), quiet=quiet
            )
        except LedgerFileError as error:
            if errors is not None:
                _write_errors(errors, error)
            raise
        counts = ", ".join(f"{count} {what}" for what, count in plan.counts().items())
        if dry_run:
            if plan.changes:
                _show_plan(plan)
            info(f"dry run, nothing changed: would be {counts}", quiet=quiet)
        else:
            info(f"imported {file} ({plan.mode}): {counts}", quiet=quiet)
    except KeyboardInterrupt:
        _interrupted(shared, progress, file)


def _refuse_options_of_other_formats(
    file: str, form: str, *, encoding: str | None, sheet: str | None
) -> None:
    """Refuse --sheet for a file not read as XLSX and --encoding for one not read as CSV."""
    from pathlib import Path

    from ipguard.errors import InvalidValue

    name = Path(file).name
    if sheet is not None and form != "xlsx":
        raise InvalidValue(
            f"--sheet applies to XLSX workbooks; {name} is read as {form.upper()} "
            "(--format xlsx if it is a workbook)"
        )
    if encoding is not None and form != "csv":
        raise InvalidValue(f"--encoding applies to CSV files; {name} is read as {form.upper()}")


def _refuse_errors_onto(errors: str, file: str) -> None:
    """Refuse `--errors` naming the file being imported: the errors would replace it."""
    import os

    from ipguard.errors import InvalidValue

    try:
        same = file != "-" and os.path.samefile(errors, file)
    except OSError:  # one of them does not exist (yet): they are not the same file
        same = False
    if same:
        raise InvalidValue(
            f"--errors {errors}: that is the file being imported; writing the bad rows there "
            "would replace it. Give another path"
        )


@dataclass
class _Progress:
    """How far an import got, for the message a Ctrl-C gets."""

    imports_before: int | None = None  # `ledger.import` audit rows before this one
    changes: int = 0
    committed: bool = False


def _import(
    shared: Any,
    progress: _Progress,
    file: str,
    rows: Any,
    mode: str,
    dry_run: bool,
    limit: tuple[int | None, bool],
    *,
    quiet: bool,
) -> Any:
    """Plan and apply the import in one transaction, with progress bars on a terminal."""
    from dataclasses import replace

    from ipguard.ledger import audit, importer

    store = shared.store()
    actor = shared.actor
    with progress_bars(enabled=not quiet) as bar, store.session() as session:
        progress.imports_before = audit.count_action(session, "ledger.import")
        plan = importer.plan_import(session, file, counted(rows, "checking rows", bar), mode)
        importer.check_retirements(session, plan, max_retire=limit[0], force=limit[1])
        progress.changes = plan.changes
        if dry_run:
            progress.imports_before = None  # nothing will be committed
        else:
            # apply only iterates and counts the additions: counted rows stand in for the list.
            adds = cast(list[Any], counted(plan.adds, "adding", bar))
            importer.apply(session, replace(plan, adds=adds), actor=actor)
    progress.committed = not dry_run
    return plan


def _interrupted(shared: Any, progress: _Progress, file: str) -> None:
    """Say whether the import a Ctrl-C stopped was committed (the commit may just have ended)."""
    from ipguard.ledger import audit

    committed = progress.committed
    if not committed and progress.imports_before is not None:
        with shared.store().session(write=False) as session:
            committed = audit.count_action(session, "ledger.import") > progress.imports_before
    if committed:
        error_line(f"imported {file} ({progress.changes} changes); interrupted afterwards")
    else:
        error_line(f"interrupted; nothing was imported from {file}")
    raise typer.Exit(130)


def _write_errors(path: str, error: Any) -> None:
    """Every bad row, one per line, for `--errors FILE`."""
    from ipguard.errors import InvalidValue

    lines = [str(problem) for problem in error.problems] or [str(error)]
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(f"{safe(line)}\n" for line in lines)
    except OSError as failure:
        raise InvalidValue(f"--errors {path}: cannot write: {failure.strerror}") from None


def _show_plan(plan: Any) -> None:
    from ipguard.fields import binding_to_fields

    rows = []
    for line, binding in plan.adds:
        rows.append(
            {"line": line, "change": "add", "ip": binding.ip, "mac": binding.mac, "fields": ""}
        )
    for update in plan.updates:
        after = binding_to_fields(update.after)
        changed = [
            f"{k}: {update.before[k]!r} → {after[k]!r}"
            for k in after
            if after[k] != update.before[k]
        ]
        rows.append(
            {
                "line": update.line,
                "change": "update",
                "ip": after["ip"],
                "mac": after["mac"],
                "fields": "; ".join(changed),
            }
        )
    for item in plan.retirements:
        rows.append(
            {
                "line": "",
                "change": "retire",
                "ip": item.before["ip"],
                "mac": item.before["mac"],
                "fields": "",
            }
        )
    emit(Format.table, ("line", "change", "ip", "mac", "fields"), rows)


def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Output file, or '-' for standard output.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, xlsx or json (default: by extension).")
    ] = None,
    changed_since: Annotated[
        str | None,
        typer.Option(help="XLSX: paint records changed on or after this date (YYYY-MM-DD) red."),
    ] = None,
    dhcp_fingerprint: Annotated[
        bool,
        typer.Option(
            "--dhcp-fingerprint",
            help="Append what `ipguard watch` heard each device's DHCP client ask for to its "
            "notes (for reading: an import would keep it as notes).",
        ),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Export the whole ledger (every status), losslessly and safe for spreadsheets."""
    from ipguard.errors import InvalidValue
    from ipguard.fields import FieldError, binding_to_fields, parse_date
    from ipguard.ledger import devices, files

    since = None
    if changed_since:
        try:
            day = parse_date(changed_since, "--changed-since")
        except FieldError as error:
            raise InvalidValue(f"--changed-since {changed_since!r}: {error.reason}") from None
        assert day is not None
        from ipguard.localtime import day_start

        since = day_start(day, state(ctx).zone())  # the local day: from its local midnight
    form = files.detect_format(file, fmt)
    if since is not None and form != "xlsx":
        raise InvalidValue(
            f"--changed-since paints changed rows red in an XLSX export; {form.upper()} has no "
            "colours (export to a .xlsx file, or without --changed-since)"
        )
    shared = state(ctx)
    shared.refuse_own_file(file, "export to")
    with shared.store().session(write=False) as session:
        rows = [
            files.ExportRow(binding_to_fields(record.binding), record.updated_at)
            for record in devices.stored(session)
        ]
        if dhcp_fingerprint:
            from ipguard.ledger.watching import fingerprint_notes

            fingerprint_notes(session, [row.values for row in rows])
    try:
        with progress_bars(enabled=not quiet) as bar:
            written = counted(rows, f"writing {form}", bar)
            count = files.write(file, form, written, changed_since=since)
    except BrokenPipeError:
        quiet_broken_pipe()  # `export - | head`: the reader has what it wanted
        return
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
        raise InvalidValue(f"cannot write {file}: {error.strerror}; give a file path") from None
    except OSError as error:
        from ipguard.errors import OperationalError

        raise OperationalError(f"cannot write {file}: {error.strerror}") from None
    if file != "-":
        info(f"exported {count} records to {file}", quiet=quiet)
