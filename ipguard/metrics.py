"""Prometheus metrics of a site's scans, for node_exporter's textfile collector.

    ipguard scan --quiet --metrics-file /var/lib/prometheus/node-exporter/ipguard.prom

    ipguard metrics write /var/lib/prometheus/node-exporter/ipguard.prom --site main

The file is rewritten whole after every scan, by `metrics write`, and after `findings ack` and
`findings resolve` when `[scan] metrics_file` names it (a temporary file renamed over it, so the
collector never reads half a file). Values come from the ledger (`ipguard.ledger.reporting`
reads them), so they describe the site as it stands: the newest run's status, the newest
complete run's hosts and duration, the findings still open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ipguard.ledger.reporting import SiteState
from ipguard.model import FindingKind, RunStatus, Severity


@dataclass(frozen=True)
class SiteMetrics:
    """What the metrics file says about one site."""

    site: str
    attempted_at: datetime | None  # None: no scan of the site has ended yet
    succeeded: bool  # did the last attempt complete a run
    latest_status: str | None = None
    latest_run_id: int | None = None
    duration_seconds: float | None = None  # of the newest finished run
    last_success_at: datetime | None = None
    hosts_seen: int | None = None  # in the newest complete run
    open_findings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, severity)


def gather(
    state: SiteState, site: str, *, now: datetime, succeeded: bool | None = None
) -> SiteMetrics:
    """A site's metrics from its ledger state.

    `succeeded` says whether the scan that is writing the file completed a run; without it (no
    scan: `metrics write`, `findings ack`) the newest run that ended answers, and its end is the
    attempt: a scan still running has not failed (a finding acknowledged during the cron scan
    made the dashboard say so until it ended), and a site never scanned claims no attempt.
    """
    newest, finished, complete = state.newest, state.finished, state.complete
    attempted_at: datetime | None = now
    if succeeded is None:
        succeeded = finished is not None and finished.status == RunStatus.COMPLETE.value
        attempted_at = finished.finished_at if finished is not None else None
    duration = None
    if finished is not None and finished.finished_at is not None:
        duration = max(0.0, (finished.finished_at - finished.started_at).total_seconds())
    return SiteMetrics(
        site=site,
        attempted_at=attempted_at,
        succeeded=succeeded,
        latest_status=newest.status if newest else None,
        latest_run_id=newest.id if newest else None,
        duration_seconds=duration,
        last_success_at=complete.finished_at if complete else None,
        hosts_seen=int(complete.counts.get("hosts_seen", 0)) if complete else None,
        open_findings=Counter(state.open_findings),
    )


def escape_label(value: str) -> str:
    """A label value as the exposition format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items())


def _family(
    name: str, help_text: str, samples: Iterable[tuple[str, float]], kind: str = "gauge"
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{{{labels}}} {_number(value)}" for labels, value in samples]
    return lines


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(metrics: SiteMetrics) -> str:
    """The text exposition format (version 0.0.4) of a site's metrics."""
    site = _labels(site=metrics.site)
    lines: list[str] = []
    lines += _family(
        "ipguard_scan_success",
        "1 if the last scan attempt completed a run, else 0.",
        [(site, 1 if metrics.succeeded else 0)],
    )
    if metrics.attempted_at is not None:
        lines += _family(
            "ipguard_scan_last_attempt_timestamp_seconds",
            "When the last scan attempt ended (Unix time).",
            [(site, metrics.attempted_at.timestamp())],
        )
    if metrics.latest_status is not None:
        lines += _family(
            "ipguard_run_status",
            "Status of the newest scan run: 1 for its status, 0 for the others.",
            [
                (_labels(site=metrics.site, status=status.value), status == metrics.latest_status)
                for status in RunStatus
            ],
        )
    if metrics.latest_run_id is not None:
        lines += _family(
            "ipguard_run_id", "Id of the newest scan run.", [(site, metrics.latest_run_id)]
        )
    if metrics.duration_seconds is not None:
        lines += _family(
            "ipguard_scan_duration_seconds",
            "How long the newest finished scan run took.",
            [(site, round(metrics.duration_seconds, 3))],
        )
    if metrics.last_success_at is not None:
        lines += _family(
            "ipguard_scan_last_success_timestamp_seconds",
            "When the newest complete scan run finished (Unix time).",
            [(site, metrics.last_success_at.timestamp())],
        )
    if metrics.hosts_seen is not None:
        lines += _family(
            "ipguard_hosts_seen",
            "Hosts that answered in the newest complete scan run.",
            [(site, metrics.hosts_seen)],
        )
    lines += _family(
        "ipguard_findings_open",
        "Findings not resolved and not acknowledged, by kind and severity.",
        [
            (
                _labels(site=metrics.site, kind=kind.value, severity=severity.value),
                metrics.open_findings.get((kind.value, severity.value), 0),
            )
            for kind in FindingKind
            for severity in Severity
        ],
    )
    return "\n".join(lines) + "\n"


def write_textfile(path: str | Path, text: str) -> None:
    """Replace `path` with `text` atomically (temporary file in the same directory, renamed)."""
    from ipguard.atomic import write_text

    # 0644: node_exporter usually runs as another user
    write_text(Path(path), text, mode=0o644, durable=True)
