"""A report over three real lab scans says what the database holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import small

IPGUARD = str(Path(sys.executable).with_name("ipguard"))


@requires_lab("nmap")
def test_report_over_three_lab_scans_matches_the_database(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = lab_factory(small())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    base = [IPGUARD, "--db", db, "--config", str(tmp_path / "ipguard.toml")]

    def ipguard(*args: str, in_lab: bool = False) -> subprocess.CompletedProcess[str]:
        argv = ["ip", "netns", "exec", lab.scanner_ns, *base, *args] if in_lab else [*base, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)

    assert ipguard("ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    visitor = lab.host("visitor")
    for step in range(3):
        if step == 2:
            lab.remove_host("visitor")  # its unregistered-host finding resolves in the third scan
        done = ipguard("scan", "--no-services", "--quiet", in_lab=True)
        # The visitor's unregistered-host finding (high) fails the scans that see it.
        assert done.returncode == (1 if step < 2 else 0), done.stderr

    report = ipguard("report", "--format", "json", "--since", "2000-01-01", "--until", "2100-01-01")
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)

    engine = sa.create_engine(db)
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT id, counts FROM scan_run ORDER BY id")).all()
        findings = connection.execute(sa.text("SELECT id, kind, state FROM finding")).all()
    engine.dispose()
    assert [run["id"] for run in document["runs"]] == [run_id for run_id, _ in runs] == [1, 2, 3]
    assert [run["hosts_seen"] for run in document["runs"]] == [
        json.loads(counts)["hosts_seen"] for _, counts in runs
    ]
    assert [run["hosts_seen"] for run in document["runs"]] == [3, 3, 2]
    opened = sum(count["opened"] for count in document["findings_by_kind"])
    resolved = sum(count["resolved"] for count in document["findings_by_kind"])
    assert opened == len(findings)
    assert resolved == sum(1 for _, _, state in findings if state == "resolved") == 1
    assert sorted(item["id"] for item in document["open_findings"]) == sorted(
        finding_id for finding_id, _, state in findings if state != "resolved"
    )
    assert [(h["ip"], h["mac"], h["state"]) for h in document["unregistered_hosts"]] == [
        (visitor.ip, visitor.mac, "resolved")
    ]
    html = ipguard(
        "report",
        "--format",
        "html",
        "--since",
        "2000-01-01",
        "--until",
        "2100-01-01",
        "-o",
        str(tmp_path / "r.html"),
    )
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and visitor.mac in page
