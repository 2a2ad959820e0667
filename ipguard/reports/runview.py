"""`runs show` and `findings show` as sections a person reads, and as the same data in JSON.

`run_document` is the JSON of `runs show --format json`; `run_sections` lays the same document out
as titled sections of (label, text) lines for the terminal. Phase timings come in two shapes: runs
recorded before phases overlapped hold seconds per phase (`{"sweep": 1.14}`), newer runs hold start
and end offsets from the run's start (`{"sweep": {"start": 0.01, "end": 0.52}}`); both are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from ipguard.ledger.scan_tables import FindingRow, ScanRun
from ipguard.localtime import shown, zone_name
from ipguard.reports.evidence import detail_lines, groups, plain, words
from ipguard.reports.serialize import finding_json, run_json, utc_text

Section = tuple[str, list[tuple[str, str]]]
_SUMMARY_COUNTS = ("timings", "ignored_replies", "uncovered")


def timings(raw: Any) -> dict[str, dict[str, float | None]]:
    """Phase timings as `{phase: {"start", "end", "seconds"}}`, oldest shape or newest."""
    out: dict[str, dict[str, float | None]] = {}
    for phase, value in (raw or {}).items() if isinstance(raw, Mapping) else ():
        if isinstance(value, Mapping):
            start, end = _number(value.get("start")), _number(value.get("end"))
            seconds = None if start is None or end is None else round(end - start, 3)
            out[str(phase)] = {"start": start, "end": end, "seconds": seconds}
        else:
            out[str(phase)] = {"start": None, "end": None, "seconds": _number(value)}
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def uncovered(run: ScanRun) -> list[dict[str, str]]:
    """The ranges a run could not cover, with why (`[{"range", "reason"}]`), wherever recorded."""
    found = (
        getattr(run, "uncovered", None)
        or run.counts.get("uncovered")
        or run.settings.get("uncovered")
        or []
    )
    return [
        {"range": str(item.get("range", "")), "reason": str(item.get("reason", ""))}
        for item in found
        if isinstance(item, Mapping)
    ]


def run_document(run: ScanRun) -> dict[str, Any]:
    """A run as `runs show --format json` gives it."""
    counts = {key: value for key, value in run.counts.items() if key not in _SUMMARY_COUNTS}
    return {
        "run": {**run_json(run), "actor": run.actor, "sensor": run.sensor, "version": run.version},
        "settings": {key: value for key, value in run.settings.items() if key != "uncovered"},
        "timings": timings(run.counts.get("timings")),
        "counts": counts,
        "ignored_replies": dict(run.counts.get("ignored_replies") or {}),
        "uncovered": uncovered(run),
        "error": run.error or None,
    }


def run_sections(document: Mapping[str, Any], zone: tzinfo = UTC) -> list[Section]:
    """The run document as titled sections of (label, text) lines (times in `zone`)."""
    run = document["run"]
    head = [
        ("status", str(run["status"])),
        ("interface", str(run["interface"])),
        ("subnets", ", ".join(run["subnets"])),
        ("started", _when(run["started_at"], zone)),
        ("finished", _when(run["finished_at"], zone)),
        ("by", f"{run['actor']}" + (f" on sensor {run['sensor']}" if run["sensor"] else "")),
        ("ipguard", str(run["version"])),
    ]
    sections: list[Section] = [(f"run {run['id']} of site {run['site']}", head)]
    settings = document["settings"].items()
    sections.append(("settings", [(words(k), plain(v, zone)) for k, v in settings]))
    phases = sorted(
        document["timings"].items(),
        key=lambda item: (item[1]["start"] is None, item[1]["start"] or 0.0),
    )
    overlapping = any(timing["start"] is not None for _, timing in phases)
    title = "phase timings (start → end, seconds from the run's start)" if overlapping else ""
    sections.append((title or "phase timings", [_phase(*p) for p in phases]))
    sections.append(("counts", [(words(k), plain(v, zone)) for k, v in document["counts"].items()]))
    ignored = document["ignored_replies"].items()
    sections.append(("ignored replies", [(words(k), plain(v)) for k, v in ignored]))
    not_covered = [(item["range"], item["reason"]) for item in document["uncovered"]]
    sections.append(("not covered (nothing there was checked or resolved)", not_covered))
    sections.append(("error", [("", document["error"])] if document["error"] else []))
    return sections


def _when(text: str | None, zone: tzinfo) -> str:
    """A document's UTC ISO 8601 time as a person reads it: `2026-12-05 23:59:00 +08:00`."""
    if text is None:
        return ""
    return shown(datetime.fromisoformat(text.replace("Z", "+00:00")), zone, seconds=True)


def _phase(name: str, timing: Mapping[str, float | None]) -> tuple[str, str]:
    start, end, seconds = timing["start"], timing["end"], timing["seconds"]
    took = "" if seconds is None else f"{seconds:.2f} s"
    if start is None or end is None:
        return name, took
    return name, f"{start:6.2f} → {end:6.2f}   {took}"


def finding_document(row: FindingRow) -> dict[str, Any]:
    """A finding as `findings show --format json` gives it: lifecycle and the raw evidence."""
    return {
        **finding_json(row),
        "site": row.site,
        "ack_note": row.ack_note,
        "ack_by": row.ack_by,
        "ack_until": utc_text(row.ack_until),
        "resolved_at": utc_text(row.resolved_at),
        "resolved_by": row.resolved_by,
        "first_run": row.first_run_id,
        "last_run": row.last_run_id,
        "evidence": row.evidence,
    }


def finding_sections(document: Mapping[str, Any], zone: tzinfo = UTC) -> list[Section]:
    """A finding document as titled sections: what, lifecycle, detail, evidence as sentences
    (times in `zone`)."""
    subject = [(key, str(document[key])) for key in ("ip", "mac", "port") if document[key]]
    head = [
        ("severity", str(document["severity"])),
        ("state", str(document["state"])),
        ("site", str(document["site"])),
        *subject,
        ("summary", str(document["summary"])),
    ]
    lifecycle = [
        (label, _when(document[key], zone) + (f" (run {document[run]})" if run else ""))
        for label, key, run in (
            ("first seen", "first_seen", "first_run"),
            ("last seen", "last_seen", "last_run"),
            ("report due", "report_due_at", ""),
            ("acknowledged until", "ack_until", ""),
            ("resolved", "resolved_at", ""),
        )
        if document[key]
    ]
    if document["ack_note"]:
        lifecycle.append(("acknowledged", f"{document['ack_note']} (by {document['ack_by']})"))
    if document["resolved_by"]:
        lifecycle.append(("resolved by", str(document["resolved_by"])))
    sections: list[Section] = [
        (f"finding {document['id']}: {document['kind']}", head),
        ("lifecycle", lifecycle),
        ("detail", [("", line) for line in detail_lines(document["detail"] or {}, zone)]),
    ]
    # Evidence lines give the time of day alone: name the zone, unless it is UTC as always was.
    times = "" if zone_name(zone) == "UTC" else f" (times {zone_name(zone)})"
    for group in groups(document["evidence"] or {}, limit=None, zone=zone):
        lines = [("", line) for line in group.lines]
        sections.append((f"evidence, {group.heading}{times}", lines))
    return sections
