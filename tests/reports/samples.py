"""A report's content built by hand: realistic, and full of hostile values from the network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ipguard.reports.summary import (
    FieldChange,
    FindingCount,
    LedgerChange,
    OpenFinding,
    RunPoint,
    Summary,
    UnregisteredHost,
)

SCRIPT = "<script>document.title='pwned'</script>"
IMG = '"><img src=x onerror="document.title=\'pwned\'">'
PIPE = "evil|name`code`"
FORMULA = '=HYPERLINK("http://x","click")'
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def hostile_summary(runs: int = 90) -> Summary:
    """Three months of runs every day, one of each section, values that try to break out."""
    points = tuple(
        RunPoint(
            id=index + 1,
            site="lab",
            started_at=SINCE + timedelta(hours=8 * index),
            status="failed" if index % 17 == 5 else "complete",
            hosts_seen=90 + (index * 7) % 23,
            open_findings=None if index % 17 == 5 else 3 + index % 5,
        )
        for index in range(runs)
    )
    finding, quiet = _hostile_findings()
    return Summary(
        since=SINCE,
        until=SINCE + timedelta(days=30),
        site=None,
        generated_at=SINCE + timedelta(days=32),
        runs=points,
        counts=(
            FindingCount("unregistered-host", "high", opened=4, resolved=3, overdue=1),
            FindingCount("hostname-policy", "low", opened=1),
            FindingCount(f"kind{SCRIPT}", 'weird"sev', opened=1),
        ),
        open_findings=(finding, quiet),
        ledger_changes=(
            LedgerChange(
                at=SINCE + timedelta(days=5),
                actor=f"admin{IMG}",
                action="device.edit",
                entity="device",
                key="198.18.0.10",
                changes=(
                    FieldChange("owner", "李伟", FORMULA),
                    FieldChange("location", "B2-301", PIPE),
                ),
            ),
        ),
        unregistered=(
            UnregisteredHost(
                7,
                "lab",
                "198.18.0.66",
                "02:66:00:00:00:66",
                IMG,
                SINCE + timedelta(days=3),
                SINCE + timedelta(days=29),
                "open",
            ),
        ),
        totals={
            "runs": runs,
            "runs_complete": runs - 5,
            "runs_failed": 5,
            "max_hosts_seen": 112,
            "opened": 6,
            "resolved": 3,
            "overdue": 1,
            "open_now": 2,
            "ledger_changes": 1,
            "unregistered_hosts": 1,
        },
    )


def _hostile_findings() -> tuple[OpenFinding, OpenFinding]:
    """An open finding whose every text tries to break out, and a quiet acknowledged one."""
    finding = OpenFinding(
        id=7,
        site=f"lab{SCRIPT}",
        kind="unregistered-host",
        severity="high",
        state="open",
        ip="198.18.0.66",
        mac="02:66:00:00:00:66",
        port=None,
        summary=f"198.18.0.66 answered as {IMG} and {PIPE}",
        first_seen=SINCE + timedelta(days=3),
        last_seen=SINCE + timedelta(days=29),
        report_due_at=SINCE + timedelta(days=4),
        overdue=True,
        ack_note="",
        detail={"hostname": SCRIPT},
        evidence={
            "first": {
                "run_id": 4,
                "observations": [{"ip": "198.18.0.66", "mac": "02:66:00:00:00:66", "vendor": IMG}],
                "names": [{"ip": "198.18.0.66", "name": PIPE, "source": "dns"}],
            },
            "last": {"run_id": 80, "services": [{"port": 8080, "banner": SCRIPT}]},
        },
    )
    quiet = OpenFinding(
        id=9,
        site="lab",
        kind="hostname-policy",
        severity="low",
        state="acknowledged",
        ip="198.18.0.20",
        mac="02:00:00:00:00:20",
        port=None,
        summary="hostname math-pc02 does not match ^{department}-{owner}$",
        first_seen=SINCE + timedelta(days=10),
        last_seen=SINCE + timedelta(days=29),
        report_due_at=None,
        overdue=False,
        ack_note=f"renaming it {PIPE}",
        detail={},
        evidence={},
    )
    return finding, quiet
