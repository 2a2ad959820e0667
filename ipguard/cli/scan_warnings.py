"""What `ipguard scan` says about a run beyond its findings: floods, SNMP, uncovered ranges, spool.

Every line goes to standard error, and those a cron job's reader must see are printed even with
`--quiet` (cron mails what a job writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ipguard.cli.output import info, safe

if TYPE_CHECKING:
    from ipguard.runner import RunOutcome

# What each kind of ignored reply means, for the warning a flooded scan prints.
_IGNORED = {
    "arp_unsolicited": "ARP replies nobody asked for",
    "arp_over_limit": "ARP replies beyond the per-address limits",
    "icmp_unsolicited": "echo replies nobody asked for",
    "icmp_over_limit": "echo replies beyond the per-address limits",
    "tcp_unsolicited": "TCP answers to probes we did not send to that address",
    "tcp_over_limit": "TCP answers beyond the per-address limits",
    "dhcp_ignored": "malformed or excess DHCP answers",
    "ipv6_ignored": "malformed or excess router advertisements and DHCPv6 answers",
    "ndp_unsolicited": "IPv6 echo replies and neighbour advertisements nobody asked for",
    "ndp_over_limit": "IPv6 neighbour advertisements beyond the per-address limits",
    "ssdp_ignored": "SSDP answers from addresses the sweep did not see, or beyond the limits",
}


# Ignored replies a run must count before it speaks of a flood. A few are the link's own noise: a
# switch floods a reply between two other hosts whose MAC it has aged out of its table, and a
# reply comes back after its request's time was up. A flooding tool sends thousands a second.
FLOOD = 100


def warn(outcome: RunOutcome, *, quiet: bool) -> None:
    """What a person should know about this run beyond its findings (standard error).

    A flood is shown even with --quiet: cron mails it to whoever watches the network. Fewer than
    FLOOD ignored replies are only counted (`runs show`).
    """
    ignored = outcome.run.counts.get("ignored_replies") or {}
    if sum(ignored.values()) >= FLOOD:
        parts = ", ".join(
            f"{count:,} {_IGNORED.get(name, name)}" for name, count in sorted(ignored.items())
        )
        typer.echo(
            f"warning: run {outcome.run.id} ignored {parts}: something on the link is flooding "
            f"or spoofing; see `ipguard runs show {outcome.run.id}`",
            err=True,
        )
    for polled in (outcome.run.counts.get("snmp") or {}).values():
        if polled.get("warning"):  # like a flood, shown with --quiet: cron mails it
            outcome_text = (
                "what it served is judged, none of its findings is resolved"
                if polled.get("answered")
                else "its findings stay as they were"
            )
            typer.echo(f"warning: snmp: {safe(polled['warning'])}; {outcome_text}", err=True)
    uncovered = outcome.run.counts.get("uncovered") or []
    if uncovered:
        parts = "; ".join(f"{item['range']} ({item['reason']})" for item in uncovered)
        typer.echo(
            f"warning: run {outcome.run.id} could not sweep {safe(parts)}: nothing there was "
            "checked or resolved",
            err=True,
        )
    if outcome.other_calendar:  # a configuration to fix, like a flood: cron mails it
        run_id, sensor, zone = outcome.other_calendar
        typer.echo(
            f"warning: run {outcome.run.id} judged days in {outcome.run.settings['timezone']}, "
            f"the site's run {run_id} (sensor {safe(sensor)}) in {safe(zone)}: guest expiry, "
            "acknowledgements until a date and report periods move with the zone; set the same "
            "[policy] timezone on every machine of the site",
            err=True,
        )
    if outcome.spooled and not quiet:
        ids = ", ".join(str(run_id) for run_id in outcome.spooled)
        info(f"run {ids} could not be stored when it ran; stored now from the spool")


def warn_unreadable_spool(url: str) -> None:
    """A spool file no scan can store (damaged or edited): said on every scan, even with --quiet.

    Its run is lost unless a person looks at it, so cron mails the line until the file is gone.
    """
    from ipguard import spool

    for path, reason in spool.unreadable(url):
        typer.echo(
            f"warning: spool file {safe(path)} cannot be read ({safe(reason)}): its run is not "
            "stored; look at it, then remove it",
            err=True,
        )
