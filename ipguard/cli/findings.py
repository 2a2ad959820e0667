"""`ipguard findings …`: list, acknowledge and resolve what scans found."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Annotated

import typer

from ipguard.cli.context import site_option, state
from ipguard.cli.metrics import refresh
from ipguard.cli.output import Shown, emit_json, info, sections, table

app = typer.Typer(help="Findings: list, acknowledge, resolve.", no_args_is_help=True)


@app.command("list")
def list_findings(
    ctx: typer.Context,
    state_: Annotated[
        str | None,
        typer.Option("--state", help="open, acknowledged or resolved (default: not resolved)."),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this finding kind, e.g. unregistered-host (default: every kind)."),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(help="Only this site (default: every site).", callback=site_option),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Only the findings of this IP (IPv4 or IPv6, any spelling) or MAC."),
    ] = None,
    fmt: Annotated[Shown, typer.Option("--format", help="table or json.")] = Shown.table,
) -> None:
    """List findings, most severe first, then by address (IPv4 before IPv6)."""
    from ipguard.errors import InvalidValue
    from ipguard.ledger import findings
    from ipguard.model import FindingKind, FindingState
    from ipguard.reports.serialize import finding_json, is_overdue, summary_json

    if state_ is not None and state_ not in {s.value for s in FindingState}:
        raise InvalidValue(f"--state {state_!r}: use open, acknowledged or resolved")
    if kind is not None and kind not in {k.value for k in FindingKind}:
        raise InvalidValue(f"--kind {kind!r} is not a finding kind")
    if address is not None:
        from ipguard.ledger.devices import parse_key

        try:
            address = parse_key(address)[1]
        except InvalidValue as error:
            raise InvalidValue(f"--address {error}") from None
    from ipguard.ledger.reporting import refuse_unknown_site

    with state(ctx).store().session(write=False) as session:
        refuse_unknown_site(session, site)  # a typo would read as "no findings there"
        rows = findings.list_findings(session, site=site, state=state_, kind=kind, address=address)
    if state_ is None:
        rows = [row for row in rows if row.state != FindingState.RESOLVED.value]
    if fmt == Shown.json:
        emit_json({"findings": [finding_json(row) for row in rows], "summary": summary_json(rows)})
        return
    from ipguard.localtime import iso_local

    now, zone = datetime.now(UTC), state(ctx).zone()
    table(
        (
            "id",
            "severity",
            "kind",
            "ip",
            "mac",
            "port",
            "state",
            "last seen",
            "report due",
            "summary",
        ),
        (
            (
                row.id,
                row.severity,
                row.kind,
                row.ip,
                row.mac,
                row.port,
                row.state,
                iso_local(row.last_seen_at, zone),
                (iso_local(row.report_due_at, zone) or "")
                + (" OVERDUE" if is_overdue(row, now) else ""),
                row.summary,
            )
            for row in rows
        ),
        title=f"{len(rows)} findings",
    )


@app.command()
def show(
    ctx: typer.Context,
    finding_id: Annotated[int, typer.Argument(help="Finding id.")],
    fmt: Annotated[Shown, typer.Option("--format", help="table or json.")] = Shown.table,
) -> None:
    """One finding: its lifecycle and the evidence that raised it, as sentences (JSON: raw)."""
    from ipguard.ledger import findings
    from ipguard.ledger.watching import fingerprint_json
    from ipguard.reports.runview import finding_document, finding_sections

    with state(ctx).store().session(write=False) as session:
        row = findings.get(session, finding_id)
        document = finding_document(row)
        # What `ipguard watch` heard the device's DHCP client ask for (options 55 and 60).
        prints = fingerprint_json(session, row.mac) if row.mac else []
    if prints:
        document["dhcp_fingerprint"] = prints
    if fmt == Shown.json:
        emit_json(document)
        return
    shown = finding_sections(document, state(ctx).zone())
    for item in prints:
        lines = [(key.replace("_", " "), str(value)) for key, value in item.items() if value]
        shown.append((f"DHCP fingerprint at site {item['site']}", lines))
    sections(shown)


@app.command()
def ack(
    ctx: typer.Context,
    finding_id: Annotated[int, typer.Argument(help="Finding id.")],
    note: Annotated[str, typer.Option(help="Why it is acknowledged (required).")],
    until: Annotated[
        str | None,
        typer.Option(
            help="Acknowledged through this day (YYYY-MM-DD, in [policy] timezone); from the "
            "next local midnight it counts again."
        ),
    ] = None,
) -> None:
    """Acknowledge a finding: it stays listed but stops failing scans and alerting.

    The metrics file named by `[scan] metrics_file` is rewritten at once.
    """
    from ipguard.errors import InvalidValue
    from ipguard.fields import MAX_NOTE, FieldError, parse_audit_text, parse_date
    from ipguard.ledger import findings

    if not note.strip():
        raise InvalidValue("--note must say why the finding is acknowledged")
    try:  # audit rows are never corrected: what goes in must be clean
        note = parse_audit_text(note, "--note", MAX_NOTE)
    except FieldError as error:
        raise InvalidValue(f"--note {error.value!r}: {error.reason}") from None
    until_at = None
    if until:
        try:
            day = parse_date(until, "--until")
        except FieldError as error:
            raise InvalidValue(f"--until {until!r}: {error.reason}") from None
        assert day is not None
        if day.year > _LAST_YEAR:  # the day after 9999-12-31 cannot be computed
            raise InvalidValue(f"--until {until!r}: give a date before {_LAST_YEAR + 1}")
        until_at, today = _ack_end(day, state(ctx).zone())
        if day < today:
            raise InvalidValue(
                f"--until {until}: that day is over; give today ({today}) or a day after today"
            )
    shared = state(ctx)
    with shared.store().session() as session:
        row = findings.acknowledge(
            session,
            finding_id,
            note=note.strip(),
            until=until_at,
            actor=shared.actor,
            now=datetime.now(UTC),
        )
        site = row.site
    info(f"finding {finding_id} acknowledged" + (f" until {until}" if until else ""))
    refresh(shared, site)


_LAST_YEAR = 9998  # as for `report`: "for ever" is an acknowledgement without --until


def _ack_end(day: date, zone: tzinfo) -> tuple[datetime, date]:
    """When an acknowledgement `--until day` ends: the end of that local day (the next local
    midnight, as a guest's last day ends), and today's local date."""
    from ipguard.localtime import days_span, today

    return days_span(day, day, zone)[1], today(datetime.now(UTC), zone)


@app.command()
def resolve(
    ctx: typer.Context,
    finding_id: Annotated[int, typer.Argument(help="Finding id.")],
) -> None:
    """Resolve a finding by hand; if a scan sees it again it returns as a new finding.

    The metrics file named by `[scan] metrics_file` is rewritten at once.
    """
    from ipguard.ledger import findings

    shared = state(ctx)
    with shared.store().session() as session:
        row = findings.resolve(session, finding_id, actor=shared.actor, now=datetime.now(UTC))
        site = row.site
    info(f"finding {finding_id} resolved")
    refresh(shared, site)
