"""Several sensors, one ledger: runs, findings and reports per site, site-scoped records.

Two sites scan into one database through the fake scanner at the scanner seam: "north" and
"south". A device registered at north turns up at south.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Cli, Result
from tests.fakes import FakeScanner, result

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "main"\n'
NORTH_PC = ("198.18.1.10", "02:00:00:00:01:10")
SOUTH_PC = ("198.18.2.10", "02:00:00:00:02:10")
ROAMER = ("198.18.1.30", "02:00:00:00:01:30")  # valid at every site
MOVED_TO = "198.18.2.77"  # where north's PC answers in south
VISITOR = ("198.18.2.66", "02:66:00:00:02:66")


@pytest.fixture
def two_sites(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    for ip, mac, site in (
        (*NORTH_PC, "north"),
        (*SOUTH_PC, "south"),
        (*ROAMER, ""),
    ):
        assert cli("ledger", "add", ip, mac, "--site", site).exit_code == 0
    scanner = FakeScanner(
        [
            result(NORTH_PC, ROAMER),
            result(SOUTH_PC, (MOVED_TO, NORTH_PC[1]), VISITOR, (ROAMER[0], ROAMER[1])),
        ]
    )
    cli.scanner = scanner

    def run(*args: str) -> Result:
        return cli("--config", str(config), *args)

    north = run("scan", "--site", "north", "--subnet", "198.18.1.0/24", "--format", "json")
    assert north.exit_code == 0, north.stderr
    south = run("scan", "--site", "south", "--subnet", "198.18.2.0/24", "--format", "json")
    assert south.exit_code == 1, south.stderr  # the visitor is high
    return cli


def findings_of(cli: Cli, *args: str) -> set[tuple[str, str, str]]:
    out = cli("findings", "list", "--format", "json", *args)
    assert out.exit_code == 0, out.stderr
    return {(f["kind"], f["ip"], f["mac"]) for f in json.loads(out.stdout)["findings"]}


def test_a_device_moved_between_sites_is_one_mac_moved_at_the_new_site(two_sites: Cli) -> None:
    assert findings_of(two_sites, "--site", "north") == set()
    assert findings_of(two_sites, "--site", "south") == {
        ("mac-moved", MOVED_TO, NORTH_PC[1]),
        ("unregistered-host", *VISITOR),
    }
    assert findings_of(two_sites) == findings_of(two_sites, "--site", "south")
    listed = json.loads(two_sites("findings", "list", "--format", "json").stdout)
    (moved,) = [f for f in listed["findings"] if f["kind"] == "mac-moved"]
    assert "at site north" in moved["summary"] and "at site south" in moved["summary"]


def test_runs_list_by_site(two_sites: Cli) -> None:
    def sites(*args: str) -> list[tuple[str, str]]:
        out = two_sites("runs", "list", "--format", "json", *args)
        assert out.exit_code == 0, out.stderr
        return [(run["site"], run["status"]) for run in json.loads(out.stdout)]

    assert sites() == [("south", "complete"), ("north", "complete")]
    assert sites("--site", "north") == [("north", "complete")]
    # A site nobody ever scanned is a typo, not an empty history.
    unknown = two_sites("runs", "list", "--site", "nrth")
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert unknown.stderr == (
        "error: --site 'nrth': the ledger knows no such site (no run, finding or record of "
        "it); its sites: north, south\n"
    )


def test_report_by_site(two_sites: Cli) -> None:
    today = datetime.now(UTC).date().isoformat()

    def report(site: str) -> dict:
        args = ["report", "--since", today, "--until", today, "--format", "json", "--site", site]
        out = two_sites(*args)
        assert out.exit_code == 0, out.stderr
        return json.loads(out.stdout)

    north, south = report("north"), report("south")
    assert [run["site"] for run in north["runs"]] == ["north"]
    assert north["open_findings"] == [] and north["unregistered_hosts"] == []
    assert {(f["kind"], f["site"]) for f in south["open_findings"]} == {
        ("mac-moved", "south"),
        ("unregistered-host", "south"),
    }
    assert [(host["ip"], host["site"]) for host in south["unregistered_hosts"]] == [
        (VISITOR[0], "south")
    ]


def test_diff_compares_runs_of_one_site(two_sites: Cli, tmp_path: Path) -> None:
    # With two sensors on one ledger `ipguard diff` compared north's run with south's, the
    # newest two of the ledger: every host of both sites appeared or disappeared.
    refused = two_sites("diff", "--format", "json")
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr == (
        "error: diff needs two complete runs of site south; scan again or name the runs\n"
    )
    two_sites.scanner = FakeScanner([result(NORTH_PC)])  # the roamer has left north
    config = tmp_path / "ipguard.toml"
    again = two_sites("--config", str(config), "scan", "--site", "north", "--format", "json")
    assert again.exit_code == 0, again.stderr
    out = two_sites("diff", "--format", "json")
    assert out.exit_code == 0, out.stderr
    changes = json.loads(out.stdout)
    assert (changes["from_run"], changes["to_run"]) == (1, 3)
    assert [host["ip"] for host in changes["disappeared"]] == [ROAMER[0]]
    assert changes["appeared"] == []
    # One run named: the other is the newest complete run of its site, not of the ledger.
    named = json.loads(two_sites("diff", "1", "--format", "json").stdout)
    assert (named["from_run"], named["to_run"]) == (1, 3)
    assert two_sites("diff", "--site", "south").exit_code == 2


def test_a_report_for_a_mistyped_site_is_refused_not_empty(two_sites: Cli, tmp_path: Path) -> None:
    # `report --month 2026-11 --site nrth -o november.html` wrote a report of no runs and no
    # findings, which reads as a quiet month at a site that does not exist.
    target = tmp_path / "nrth.html"
    refused = two_sites("report", "--format", "html", "--site", "nrth", "-o", str(target))
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: --site 'nrth': the ledger knows no such site")
    assert not target.exists()
    assert two_sites("diff", "--site", "nrth").exit_code == 2
    listed = two_sites("findings", "list", "--site", "sth")
    assert (listed.exit_code, listed.stdout) == (2, "")
    assert listed.stderr.startswith("error: --site 'sth': the ledger knows no such site")
    # A site known only by a record scoped to it (no scan yet) is a site: an empty report.
    assert (
        two_sites("ledger", "add", "198.18.3.10", "02:00:00:00:03:10", "--site", "west").exit_code
        == 0
    )
    assert two_sites("report", "--format", "json", "--site", "west").exit_code == 0
