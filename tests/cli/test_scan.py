"""`ipguard scan` and the finding lifecycle, through the CLI with the fake scanner at the seam."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.model import DhcpOffer, Evidence, NameObservation, Phase, ProxyVerdict, Uncovered
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

REGISTERED = ("198.18.0.10", "02:00:00:00:00:10")
STRANGER = ("198.18.0.66", "02:00:00:00:00:66")
CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24"]
site = "lab"
[policy]
hostname_rule = ""
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ipguard.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def fake(cli: Cli) -> FakeScanner:
    scanner = FakeScanner([result(REGISTERED)])
    cli.scanner = scanner
    return scanner


def scan_json(cli: Cli, config: Path, *args: str) -> tuple[int, dict]:
    outcome = cli("--config", str(config), "scan", "--format", "json", *args)
    assert outcome.stdout, outcome.stderr
    return outcome.exit_code, json.loads(outcome.stdout)


def kinds(document: dict) -> set[tuple[str, str | None, str | None, str | None]]:
    return {(f["kind"], f["ip"], f["mac"], f["port"]) for f in document["findings"]}


def test_json_output_has_the_documented_shape(cli: Cli, config: Path, fake: FakeScanner) -> None:
    cli("ledger", "add", *REGISTERED, "--owner", "李伟")
    fake.results = [result(REGISTERED, STRANGER)]
    code, document = scan_json(cli, config)
    assert code == 1  # unregistered-host is high, fail_on defaults to high
    assert set(document) == {"run", "findings", "summary"}
    run = document["run"]
    assert set(run) == {
        "id",
        "site",
        "interface",
        "subnets",
        "status",
        "started_at",
        "finished_at",
        "hosts_seen",
    }
    assert (run["site"], run["status"], run["hosts_seen"], run["subnets"]) == (
        "lab",
        "complete",
        2,
        ["198.18.0.0/24"],
    )
    assert run["started_at"].endswith("Z")
    (finding,) = document["findings"]
    assert set(finding) == {
        "id",
        "kind",
        "severity",
        "state",
        "ip",
        "mac",
        "port",
        "first_seen",
        "last_seen",
        "report_due_at",
        "summary",
        "detail",
    }
    assert (finding["kind"], finding["ip"], finding["mac"], finding["state"]) == (
        "unregistered-host",
        *STRANGER,
        "open",
    )
    assert finding["report_due_at"] is not None  # high: due 24 h after first seen
    assert document["summary"] == {"by_kind": {"unregistered-host": 1}, "by_severity": {"high": 1}}


def test_lifecycle_seen_again_acknowledged_and_auto_resolved(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    cli("ledger", "add", *REGISTERED)
    fake.results = [
        result(REGISTERED, STRANGER),
        result(REGISTERED, STRANGER),
        result(REGISTERED, STRANGER),
        result(REGISTERED),
    ]
    _, first = scan_json(cli, config)
    (finding,) = first["findings"]
    _, second = scan_json(cli, config)
    assert second["findings"][0]["id"] == finding["id"]
    assert second["findings"][0]["first_seen"] == finding["first_seen"]

    result_ack = cli(
        "findings", "ack", str(finding["id"]), "--note", "guest laptop, approved by 王芳"
    )
    assert result_ack.exit_code == 0
    code, third = scan_json(cli, config)
    assert code == 0 and third["findings"][0]["state"] == "acknowledged"

    code, fourth = scan_json(cli, config)
    assert code == 0 and fourth["findings"] == []
    listed = json.loads(cli("findings", "list", "--state", "resolved", "--format", "json").stdout)
    assert [f["id"] for f in listed["findings"]] == [finding["id"]]


def test_expired_acknowledgement_fails_again(
    cli: Cli, config: Path, fake: FakeScanner, db_url: str
) -> None:
    fake.results = [result(STRANGER)]
    _, first = scan_json(cli, config)
    finding_id = str(first["findings"][0]["id"])
    assert cli("findings", "ack", finding_id, "--note", "n", "--until", "2999-01-01").exit_code == 0
    # Time passes (an --until in the past is refused): the acknowledgement's last day is over.
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE finding SET ack_until = :day WHERE id = :id"),
            {"day": datetime(2000, 1, 1, tzinfo=UTC), "id": int(finding_id)},
        )
    engine.dispose()
    code, document = scan_json(cli, config)
    assert code == 1 and document["findings"][0]["state"] == "open"


def test_a_run_that_did_not_cover_a_finding_does_not_resolve_it(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    fake.results = [
        result(STRANGER, services=[(STRANGER[0], "tcp/8080")]),
        result(phases=frozenset({Phase.SWEEP})),
    ]
    config.write_text(CONFIG.replace('["198.18.0.0/24"]', '["198.18.0.0/24", "198.18.1.0/24"]'))
    scan_json(cli, config)
    # The second run only swept 198.18.1.0/24: the stranger's address was not looked at.
    code, document = scan_json(cli, config, "--subnet", "198.18.1.0/24")
    assert {f["kind"] for f in document["findings"]} == {"unregistered-host"}
    assert code == 1


def test_fail_on_threshold_and_quiet(cli: Cli, config: Path, fake: FakeScanner) -> None:
    fake.results = [result(STRANGER)]
    outcome = cli("--config", str(config), "scan", "--quiet", "--fail-on", "critical")
    assert outcome.exit_code == 0 and outcome.stdout == "" and outcome.stderr == ""
    outcome = cli("--config", str(config), "scan", "--quiet")
    assert outcome.exit_code == 1 and outcome.stdout == ""
    outcome = cli("--config", str(config), "scan", "--fail-on", "urgent")
    assert outcome.exit_code == 2 and "--fail-on 'urgent'" in outcome.stderr


def test_quiet_still_warns_of_a_flood_and_the_run_counts_it(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    """Cron mails standard error: a flood must reach it even with --quiet (no root needed)."""
    cli("ledger", "add", *REGISTERED, "--owner", "李伟")
    fake.results = [result(REGISTERED)]
    outcome = cli("--config", str(config), "scan", "--quiet")
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, "", "")
    flood = {"arp_unsolicited": 5000, "ssdp_ignored": 3}
    fake.results = [result(REGISTERED, ignored=flood)]
    outcome = cli("--config", str(config), "scan", "--quiet")
    assert (outcome.exit_code, outcome.stdout) == (0, "")
    assert outcome.stderr == (
        "warning: run 2 ignored 5,000 ARP replies nobody asked for, 3 SSDP answers from "
        "addresses the sweep did not see, or beyond the limits: something on the link is "
        "flooding or spoofing; see `ipguard runs show 2`\n"
    )
    shown = json.loads(cli("runs", "show", "2", "--format", "json").stdout)
    assert shown["ignored_replies"] == flood


def test_a_few_stray_replies_are_counted_without_crying_flood(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    """A switch floods an ARP reply between two other hosts once it has aged their MACs out of its
    table: the sensor hears replies nobody asked it for on any busy LAN. One such reply made the
    scan print "something on the link is flooding or spoofing", which cron mails."""
    cli("ledger", "add", *REGISTERED, "--owner", "李伟")
    stray = {"arp_unsolicited": 3, "icmp_unsolicited": 1}
    fake.results = [result(REGISTERED, ignored=stray)]
    outcome = cli("--config", str(config), "scan", "--quiet")
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, "", "")
    shown = json.loads(cli("runs", "show", "1", "--format", "json").stdout)
    assert shown["ignored_replies"] == stray  # still counted, for whoever looks


def test_offers_proxies_and_evidence_reach_the_policies(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    ip, mac = REGISTERED
    cli("ledger", "add", ip, mac, "--owner", "李伟")  # no roles: not a proxy, server or router
    fake.results = [
        result(
            REGISTERED,
            offers=[DhcpOffer(ip, mac, "198.18.0.150", router=ip)],
            proxies=[ProxyVerdict(ip, 3128, "http-connect", True, "relayed")],
            evidence=[Evidence(ip, mac, "forwarding", "router", "forwarded a probe")],
            names=[NameObservation(ip, "math-pc10", "dns")],
        )
    ]
    code, document = scan_json(cli, config)
    assert code == 1  # rogue-dhcp is critical
    assert kinds(document) == {
        ("open-proxy", ip, mac, "tcp/3128"),
        ("rogue-dhcp", ip, mac, None),
        ("rogue-router", ip, mac, None),
    }
    shown = json.loads(cli("runs", "show", "1", "--format", "json").stdout)
    counts = shown["counts"]
    assert shown["ignored_replies"] == {}
    assert (counts["dhcp_offers"], counts["proxies_relaying"], counts["names"]) == (1, 1, 1)
    assert counts["evidence"] == 1


def test_table_output_and_runs_listing(cli: Cli, config: Path, fake: FakeScanner) -> None:
    fake.results = [result(STRANGER)]
    outcome = cli("--config", str(config), "scan")
    assert "unregistered-host" in outcome.stdout and "198.18.0.66" in outcome.stdout
    assert "run 1 complete: 1 hosts seen, 1 new, 0 resolved, 1 open findings" in outcome.stderr
    runs = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert [(r["id"], r["status"], r["site"]) for r in runs] == [(1, "complete", "lab")]
    shown = json.loads(cli("runs", "show", "1", "--format", "json").stdout)
    assert shown["counts"]["findings_new"] == 1 and "policies" in shown["timings"]
    assert cli("runs", "show", "9").exit_code == 2


def test_subnets_outside_the_configured_scope_are_refused(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    outcome = cli("--config", str(config), "scan", "--subnet", "10.0.0.0/24")
    assert outcome.exit_code == 2
    assert "--subnet 10.0.0.0/24 is outside the subnets ipguard.toml allows" in outcome.stderr
    assert fake.requests == []


def test_diff_between_runs(cli: Cli, config: Path, fake: FakeScanner) -> None:
    moved = ("198.18.0.11", REGISTERED[1])
    other = ("198.18.0.20", "02:00:00:00:00:20")
    fake.results = [
        result(REGISTERED, other, STRANGER, services=[(other[0], "tcp/22"), (other[0], "tcp/80")]),
        result(moved, other, services=[(other[0], "tcp/22")]),
    ]
    scan_json(cli, config)
    scan_json(cli, config)
    changes = json.loads(cli("diff", "--format", "json").stdout)
    assert (changes["from_run"], changes["to_run"]) == (1, 2)
    assert changes["ip_changed"] == [
        {"mac": REGISTERED[1], "from": [REGISTERED[0]], "to": [moved[0]]}
    ]
    assert changes["disappeared"] == [{"ip": STRANGER[0], "mac": STRANGER[1]}]
    assert changes["appeared"] == []
    assert changes["services_closed"] == [{"ip": other[0], "port": "tcp/80", "service": ""}]
    table = cli("diff", "1", "2").stdout
    assert "ip changed" in table and "services closed" in table
    assert cli("diff", "1", "1").exit_code == 2


def test_a_failing_scanner_marks_the_run_failed(cli: Cli, config: Path, fake: FakeScanner) -> None:
    from ipguard.errors import InterfaceError

    fake.error = InterfaceError("interface eth9 does not exist")
    outcome = cli("--config", str(config), "scan")
    assert outcome.exit_code == 3 and outcome.stderr == "error: interface eth9 does not exist\n"
    runs = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert runs[0]["status"] == "failed"


def test_lock_held_by_another_scan(cli: Cli, config: Path, fake: FakeScanner, db_url: str) -> None:
    from ipguard.ledger.locks import scan_lock
    from ipguard.ledger.store import Store

    store = Store(db_url)
    with scan_lock(store, "lab"):
        outcome = cli("--config", str(config), "scan")
        assert outcome.exit_code == 3
        assert (
            "another scan of site 'lab' is running; try again later or pass --wait"
            in outcome.stderr
        )
        started = time.monotonic()
        outcome = cli("--config", str(config), "scan", "--wait", "0.5")
        assert outcome.exit_code == 3 and time.monotonic() - started >= 0.5
        # Another site is not blocked: its scan runs, and finds the host no ledger record has.
        north = cli("--config", str(config), "scan", "--site", "north", "--quiet")
        assert (north.exit_code, north.stderr) == (1, "")
    store.close()
    assert [request.site for request in fake.requests] == ["north"]


def test_a_scan_refused_by_the_lock_leaves_the_metrics_to_the_scan_holding_it(
    cli: Cli, config: Path, fake: FakeScanner, db_url: str, tmp_path: Path
) -> None:
    # Cron starting a scan while the last one still runs: the refused one wrote
    # ipguard_scan_success 0, an alert although every scan that ran completed.
    from ipguard.ledger.locks import scan_lock
    from ipguard.ledger.store import Store

    metrics = tmp_path / "ipguard.prom"
    cli("ledger", "add", *REGISTERED)
    assert cli("--config", str(config), "scan", "--metrics-file", str(metrics)).exit_code == 0
    before = metrics.read_text()
    assert 'ipguard_scan_success{site="lab"} 1' in before
    store = Store(db_url)
    with scan_lock(store, "lab"):
        refused = cli("--config", str(config), "scan", "--metrics-file", str(metrics))
        assert refused.exit_code == 3 and "another scan of site 'lab'" in refused.stderr
    store.close()
    assert metrics.read_text() == before


SCRIPT = """
import sys
from pathlib import Path
from ipguard.cli.context import AppState
from ipguard.cli.main import app
from tests.fakes import FakeScanner, result
seen = result(("198.18.0.10", "02:00:00:00:00:10"))
scanner = FakeScanner([seen], hold=30, started_flag=Path(sys.argv[1]))
shared = AppState(scanner_factory=lambda: scanner)
app(["--db", sys.argv[2], "--config", sys.argv[3], "scan"], prog_name="ipguard", obj=shared)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_scan_leaves_the_ledger_intact(
    cli: Cli, config: Path, fake: FakeScanner, db_url: str, tmp_path: Path, sig: int
) -> None:
    cli("ledger", "add", *REGISTERED, "--owner", "李伟")
    scan_json(cli, config)  # an earlier complete run
    flag = tmp_path / "started"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(flag), db_url, str(config)],
        cwd=Path(__file__).parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not flag.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert flag.exists(), child.stderr.read() if child.stderr else ""
        os.kill(child.pid, sig)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        statuses = [
            row[0] for row in connection.execute(sa.text("SELECT status FROM scan_run ORDER BY id"))
        ]
    engine.dispose()
    if sig == signal.SIGTERM:
        assert statuses == ["complete", "aborted"]
        assert child.returncode == 3
    else:
        assert statuses == ["complete", "running"]
    # The next scan proceeds and marks the dead run aborted; the ledger is intact.
    scan_json(cli, config)
    runs = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert [r["status"] for r in reversed(runs)] == ["complete", "aborted", "complete"]
    assert (
        json.loads(cli("ledger", "show", REGISTERED[0], "--format", "json").stdout)[0]["owner"]
        == "李伟"
    )


def test_service_baseline_is_handed_to_the_scanner_until_a_full_rescan_is_due(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    quiet = ("--config", str(config), "scan", "--quiet")
    fake.results = [result(REGISTERED, STRANGER, services=[(STRANGER[0], "tcp/8080")])]
    cli(*quiet)
    assert fake.requests[-1].known_services is None  # no history: a full service scan
    cli(*quiet)
    known = fake.requests[-1].known_services
    assert known is not None
    assert known[STRANGER[0]].mac == STRANGER[1]
    assert [(s.proto, s.port) for s in known[STRANGER[0]].services] == [("tcp", 8080)]
    assert known[REGISTERED[0]].services == ()  # a host without open ports is known too
    cli(*quiet, "--full")
    assert fake.requests[-1].known_services is None
    config.write_text(CONFIG.replace('site = "lab"', 'site = "lab"\nfull_rescan_hours = 0'))
    cli(*quiet)
    assert fake.requests[-1].known_services is None


def test_a_host_whose_service_scan_timed_out_keeps_its_service_findings(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    cli("ledger", "add", *REGISTERED)
    fake.results = [
        result(REGISTERED, services=[(REGISTERED[0], "tcp/8080")]),
        result(REGISTERED, partial_hosts=frozenset({REGISTERED[0]})),  # nmap gave up on it
        result(REGISTERED),
    ]
    _, first = scan_json(cli, config)
    assert kinds(first) == {("unexpected-service", *REGISTERED, "tcp/8080")}
    _, second = scan_json(cli, config)
    assert kinds(second) == kinds(first)
    _, third = scan_json(cli, config)
    assert kinds(third) == set()


def test_phases_option_chooses_the_phases_and_no_services_is_its_shorthand(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    scan_json(cli, config, "--phases", "sweep, dhcp,names")
    scan_json(cli, config, "--no-services")
    scan_json(cli, config)
    chosen = [request.phases for request in fake.requests]
    assert chosen[0] == ("sweep", "dhcp", "names")
    assert "services" not in chosen[1] and {"sweep", "proxy", "dhcp", "evidence"} <= set(chosen[1])
    assert set(chosen[2]) == {phase.value for phase in Phase}
    assert [request.services for request in fake.requests] == [False, False, True]
    outcome = cli("--config", str(config), "scan", "--phases", "sweep,portscan")
    assert outcome.exit_code == 2 and "portscan" in outcome.stderr and "evidence" in outcome.stderr
    assert len(fake.requests) == 3  # refused before anything ran


def test_a_run_of_chosen_phases_resolves_only_what_those_phases_see(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    fake.results = [
        result(REGISTERED, STRANGER, services=[(REGISTERED[0], "tcp/8080")]),
        result(REGISTERED, phases=frozenset({Phase.SWEEP})),
    ]
    cli("ledger", "add", *REGISTERED, "--owner", "li")
    scan_json(cli, config)
    # The stranger left, and a sweep-only run sees that; the port found open is not looked at.
    _code, document = scan_json(cli, config, "--phases", "sweep")
    assert {f["kind"] for f in document["findings"]} == {"unexpected-service"}
    resolved = json.loads(
        cli("findings", "list", "--state", "resolved", "--format", "json").stdout
    )["findings"]
    assert {f["kind"] for f in resolved} == {"unregistered-host"}


def test_uncovered_ranges_are_recorded_warned_about_even_quietly_and_resolve_nothing(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    far = ("198.18.1.77", "02:00:00:00:01:77")
    config.write_text(CONFIG.replace('["198.18.0.0/24"]', '["198.18.0.0/23"]'))
    fake.results = [
        result(STRANGER, far),
        replace(
            result(REGISTERED),
            uncovered=(Uncovered(range="198.18.1.0/24", reason="no route to 198.18.1.1"),),
        ),
    ]
    scan_json(cli, config)
    outcome = cli("--config", str(config), "scan", "--quiet")
    assert outcome.exit_code == 1 and outcome.stdout == ""
    warnings = [line for line in outcome.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "198.18.1.0/24 (no route to 198.18.1.1)" in warnings[0]
    # The stranger in the swept part is resolved; the host in the unreachable part is not.
    resolved = json.loads(
        cli("findings", "list", "--state", "resolved", "--format", "json").stdout
    )["findings"]
    assert [(f["kind"], f["ip"]) for f in resolved] == [("unregistered-host", STRANGER[0])]
    live = json.loads(cli("findings", "list", "--format", "json").stdout)["findings"]
    assert ("unregistered-host", far[0]) in {(f["kind"], f["ip"]) for f in live}
    shown = json.loads(cli("runs", "show", "2", "--format", "json").stdout)
    assert shown["run"]["status"] == "complete"
    assert shown["uncovered"] == [{"range": "198.18.1.0/24", "reason": "no route to 198.18.1.1"}]
    table = cli("runs", "show", "2").stdout
    assert "198.18.1.0/24" in table and "no route to 198.18.1.1" in table


class RegistersDuringTheRun:
    """A scanner during whose collection someone registers the stranger it is about to see."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def collect(self, request: object, progress: object) -> object:
        from ipguard.ledger import devices
        from ipguard.ledger.store import Store
        from ipguard.model import Binding

        store = Store(self.db_url)
        try:
            with store.session() as session:
                devices.add(session, Binding(ip=STRANGER[0], mac=STRANGER[1]), actor="admin")
        finally:
            store.close()
        return result(REGISTERED, STRANGER)


def test_a_run_is_judged_against_the_ledger_as_it_was_while_the_run_looked(
    cli: Cli, config: Path, db_url: str
) -> None:
    # The runner reads the ledger while the phases run (runfacts.LedgerView), so that once
    # they end only what they saw is left to judge: a record added meanwhile counts from the
    # next run on.
    cli("ledger", "add", *REGISTERED)
    cli.scanner = RegistersDuringTheRun(db_url)  # type: ignore[assignment]
    _, first = scan_json(cli, config)
    assert {(f["kind"], f["ip"]) for f in first["findings"]} == {("unregistered-host", STRANGER[0])}
    cli.scanner = FakeScanner([result(REGISTERED, STRANGER)])
    code, second = scan_json(cli, config)
    assert code == 0 and second["findings"] == []


def test_the_longest_periods_the_configuration_allows_still_scan(
    cli: Cli, tmp_path: Path, fake: FakeScanner
) -> None:
    # A century of grace and staleness: the policies' date arithmetic stays in range (a larger
    # value is refused by the configuration: before, 10**11 days failed every scan).
    config = tmp_path / "long.toml"
    config.write_text(CONFIG + "stale_after_days = 36500\nunregistered_grace_days = 36500\n")
    cli("ledger", "add", "198.18.0.20", "02:00:00:00:00:20")  # never seen: the stale check
    fake.results = [result(REGISTERED, STRANGER)]
    code, document = scan_json(cli, config)
    assert code == 1 and document["run"]["status"] == "complete"
    assert ("unregistered-host", *STRANGER, None) in kinds(document)


def test_a_sweep_larger_than_a_slash_12_is_refused_before_the_scanner_starts(
    cli: Cli, tmp_path: Path, fake: FakeScanner
) -> None:
    # `subnets = ["0.0.0.0/0"]` used to run: minutes of route lookups (one per /24) before the
    # sweep refused four billion targets. A broad scope narrowed by --subnet still scans.
    config = tmp_path / "broad.toml"
    config.write_text(CONFIG.replace('["198.18.0.0/24"]', '["0.0.0.0/0", "2001:db8::/32"]'))
    refused = cli("--config", str(config), "scan")
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: [scan] subnets 0.0.0.0/0, 2001:db8::/32: 4,294,967,296 IPv4 addresses, more "
        "than the 1,048,576 (a /12) one scan may sweep; scan smaller subnets with --subnet\n",
    )
    too_big = cli(
        "--config", str(config), "scan", "--subnet", "10.0.0.0/12", "--subnet", "10.16.0.0/24"
    )
    assert (
        too_big.exit_code == 2 and "--subnet 10.0.0.0/12, 10.16.0.0/24: 1,048,832" in too_big.stderr
    )
    assert fake.requests == []
    assert cli("runs", "list", "--format", "json").stdout.strip() == "[]"
    largest = cli(
        "--config", str(config), "scan", "--subnet", "10.0.0.0/12", "--subnet", "10.0.0.0/24"
    )
    assert largest.exit_code == 1, largest.stderr  # the fake's host is unregistered
    assert fake.requests[0].subnets == ("10.0.0.0/12", "10.0.0.0/24")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_site_of_a_scan_follows_the_ledger_s_site_rules(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    # `--site "lab "` was a site of its own, where every record scoped to `lab` authorised
    # nothing; control characters went into the run unchecked.
    cli("ledger", "add", *REGISTERED, "--site", "lab")
    code, document = scan_json(cli, config, "--site", " lab ")
    assert (code, document["run"]["site"], document["findings"]) == (0, "lab", [])
    for site, reason in (
        ("x\x1b[2Jy", "contains control characters"),
        ("", "a site name is one line of text, not empty"),
        ("a\tb", "a site name is one line of text, not empty"),
    ):
        refused = cli("--config", str(config), "scan", "--site", site)
        assert (refused.exit_code, refused.stderr) == (
            2,
            f"error: --site {site!r}: {reason}\n".replace("\x1b", "\\x1b").replace("\t", "\\t"),
        )
    assert len(fake.requests) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[]", "not a JSON object"),  # stopped every later scan with an AttributeError traceback
        ('{"format": 1, "site": "lab"', "Expecting ',' delimiter"),  # ignored without a word
        ('{"format": 1, "site": "lab"}', "not a run"),
    ],
)
def test_a_damaged_spool_file_is_named_on_every_scan_and_stops_none(
    cli: Cli,
    config: Path,
    fake: FakeScanner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    reason: str,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    spooled = tmp_path / "ledger.db.spool" / "run-20261130T000000-7-0a0b0c0d.json"
    spooled.parent.mkdir()
    spooled.write_text(content)
    cli("ledger", "add", *REGISTERED)
    for _ in range(2):
        outcome = cli("--config", str(config), "scan", "--quiet")
        assert outcome.exit_code == 0
        assert outcome.stderr.startswith(f"warning: spool file {spooled} cannot be read (")
        assert reason in outcome.stderr and outcome.stderr.count("\n") == 1
        assert outcome.stderr.endswith("): its run is not stored; look at it, then remove it\n")
    assert spooled.read_text() == content  # left for a person to look at


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scan_options_have_the_configuration_s_bounds(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    # `--wait nan` passed the range check and waited for ever for a held lock; `--rate` had no
    # upper bound where [scan] rate has one.
    for option, value in (("--wait", "nan"), ("--wait", "86401"), ("--rate", "1000001")):
        refused = cli("--config", str(config), "scan", option, value)
        assert refused.exit_code == 2 and option in refused.stderr, (option, value)
    assert fake.requests == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_empty_interface_option_is_an_error_not_the_configured_one(
    cli: Cli, config: Path, fake: FakeScanner
) -> None:
    # `scan --interface "$IFACE"` with the variable unset scanned [scan] interface instead.
    for command in (["scan"], ["watch", "--print-unit"]):  # the unit: a watch never starts
        refused = cli("--config", str(config), *command, "--interface", " ")
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error: --interface is empty; give a value, or leave --interface out for "
            "ipguard.toml's\n",
        )
    assert fake.requests == []
    _, document = scan_json(cli, config, "--interface", " eth1 ")
    assert document["run"]["interface"] == "eth1"
