"""IPv6 observations and findings through the store and every output, next to IPv4 and hostile text.

The fake scanner at the seam hands the runner what the ipv6 phase sees (source "ndp": IPv6 text,
canonical MAC); everything after it is real: policies, the ledger (SQLite and PostgreSQL), the
outputs. IPv4 sorts before IPv6 everywhere, numerically within each family.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ipguard.model import Observation, ObservationSource, ScanResult
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

SCRIPT = "<script>alert(1)</script>|`x`"
CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24", "2001:db8:20::/64"]
site = "lab"
[policy]
hostname_rule = ""
"""
REGISTERED = ("198.18.0.10", "02:00:00:00:00:10")
STATIC = "2001:db8:20::10"
STRANGER4 = ("198.18.0.66", "02:00:00:00:00:66")
# The longest IPv6 text there is (39 characters), from a MAC nobody registered.
LONGEST = ("2001:db8:20:0:1234:5678:9abc:def0", "02:00:00:00:00:67")
STRANGER6 = ("2001:db8:20::9", "02:00:00:00:00:68")
THIEF = (STATIC, "02:00:00:00:00:69")  # takes the registered static IPv6


def ndp(ip: str, mac: str) -> Observation:
    """What the ipv6 phase reports: an address answering on the link."""
    return Observation(ip=ip, mac=mac, seen_at=datetime.now(UTC), source=ObservationSource.NDP)


def v6_result(*hosts4: tuple[str, str], hosts6: list[tuple[str, str]]) -> ScanResult:
    """ARP replies from the IPv4 hosts, then what the ipv6 phase heard."""
    base = result(*hosts4)
    return replace(base, observations=base.observations + tuple(ndp(*h) for h in hosts6))


# Run 2: the stranger's privacy address changed (an IPv6 move), the IPv4 stranger now answers only
# over IPv6 (not a move: another family), the thief and the longest address are gone.
PRIVACY = ("2001:db8:20::a:1", STRANGER6[1])
V6_ONLY = ("2001:db8:20::66", STRANGER4[1])
ORDER = ["198.18.0.66", "2001:db8:20::9", STATIC, LONGEST[0]]


@pytest.fixture
def scanned(cli: Cli, tmp_path: Path) -> tuple[Cli, Path, dict]:
    """Two runs of a dual-stack link, hostile text in the ledger; the first run's JSON."""
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    added = cli("ledger", "add", *REGISTERED, "--ipv6", STATIC, "--owner", SCRIPT)
    assert added.exit_code == 0, added.stderr
    cli.scanner = FakeScanner(
        [
            v6_result(
                REGISTERED, STRANGER4, hosts6=[(STATIC, REGISTERED[1]), LONGEST, STRANGER6, THIEF]
            ),
            v6_result(REGISTERED, hosts6=[(STATIC, REGISTERED[1]), PRIVACY, V6_ONLY]),
        ]
    )
    first = cli("--config", str(config), "scan", "--format", "json")
    assert first.exit_code == 1, first.stderr
    return cli, config, json.loads(first.stdout)


def test_ipv6_findings_are_stored_and_listed_ipv4_first_numerically(
    scanned: tuple[Cli, Path, dict],
) -> None:
    cli, _, document = scanned
    assert document["run"]["subnets"] == ["198.18.0.0/24", "2001:db8:20::/64"]
    # hosts: the 2 IPv4 addresses, and the 3 MACs that answered over IPv6 only (not per address)
    assert document["run"]["hosts_seen"] == 5
    found = [(f["ip"], f["kind"]) for f in document["findings"]]
    assert [ip for ip, _ in found] == ORDER  # all high: by address, not in the order first seen
    assert (STATIC, "duplicate-ip") in found
    listed = json.loads(cli("findings", "list", "--format", "json").stdout)["findings"]
    assert [f["ip"] for f in listed] == ORDER
    table = cli("findings", "list").stdout
    assert LONGEST[0] in table  # 39 characters, whole
    assert table.index("198.18.0.66") < table.index("2001:db8:20::9 ") < table.index(LONGEST[0])


def test_findings_list_filters_by_any_spelling_of_an_address(
    scanned: tuple[Cli, Path, dict],
) -> None:
    cli, _, _ = scanned

    def of(address: str) -> list[tuple[str, str | None]]:
        outcome = cli("findings", "list", "--address", address, "--format", "json")
        assert outcome.exit_code == 0, outcome.stderr
        return [(f["ip"], f["mac"]) for f in json.loads(outcome.stdout)["findings"]]

    assert of("2001:DB8:20:0:0:0:0:9") == [STRANGER6]
    assert of("2001:db8:20:0:1234:5678:9ABC:DEF0") == [LONGEST]
    assert of("02-00-00-00-00-66") == [STRANGER4]
    assert of("2001:db8:20::99") == []
    bad = cli("findings", "list", "--address", "2001:db8::g")
    assert (bad.exit_code, bad.stdout) == (2, "")
    assert bad.stderr == "error: --address '2001:db8::g' is neither an IP nor a MAC address\n"


def test_diff_runs_show_and_metrics_with_ipv6(
    scanned: tuple[Cli, Path, dict], tmp_path: Path
) -> None:
    cli, config, _ = scanned
    target = tmp_path / "ipguard.prom"
    second = cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    assert second.exit_code == 1, second.stderr
    # the registered host (IPv4 and its static), and two MACs over IPv6 only: 3, not 4 addresses
    assert 'ipguard_hosts_seen{site="lab"} 3' in target.read_text()
    changes = json.loads(cli("diff", "--format", "json").stdout)
    assert changes["ip_changed"] == [
        {"mac": STRANGER6[1], "from": [STRANGER6[0]], "to": [PRIVACY[0]]}
    ]
    assert changes["appeared"] == [{"ip": V6_ONLY[0], "mac": V6_ONLY[1]}]
    assert changes["disappeared"] == [
        {"ip": STRANGER4[0], "mac": STRANGER4[1]},
        {"ip": STATIC, "mac": THIEF[1]},
        {"ip": LONGEST[0], "mac": LONGEST[1]},
    ]
    table = cli("diff").stdout
    assert table.index(STRANGER4[0]) < table.index(f"{STATIC} ") < table.index(LONGEST[0])
    shown = cli("runs", "show", "1").stdout
    assert "subnets    198.18.0.0/24, 2001:db8:20::/64" in shown
    assert "hosts seen          5" in shown
    assert "ipv4 addresses" in shown and "ipv6 addresses" in shown
    counts = json.loads(cli("runs", "show", "2", "--format", "json").stdout)["counts"]
    assert (counts["ipv4_addresses"], counts["ipv6_addresses"]) == (1, 3)


def test_reports_carry_ipv6_rows_and_escape_what_is_next_to_them(
    scanned: tuple[Cli, Path, dict], tmp_path: Path
) -> None:
    cli, _, _ = scanned
    written = {}
    for fmt in ("json", "md", "csv", "html"):
        path = tmp_path / f"report.{fmt}"
        outcome = cli("report", "--format", fmt, "-o", str(path))
        assert outcome.exit_code == 0, outcome.stderr
        written[fmt] = path.read_text(encoding="utf-8-sig")
    document = json.loads(written["json"])
    unregistered = [host["ip"] for host in document["unregistered_hosts"]]
    assert set(unregistered) == {"198.18.0.66", "2001:db8:20::9", LONGEST[0]}
    assert f"| {LONGEST[0]} | {LONGEST[1]} |" in written["md"]
    assert "ipv6: — → 2001:db8:20::10" in written["md"]
    assert "\\<script\\>" in written["md"] and "<script>" not in written["md"]
    assert f",{LONGEST[0]},{LONGEST[1]}," in written["csv"]
    assert LONGEST[0] in written["html"] and "2001:db8:20::9" in written["html"]
    assert "&lt;script&gt;alert(1)" in written["html"] and "<script>alert" not in written["html"]
    assert "answered IPv6 neighbour discovery from 02:00:00:00:00:68" in written["md"]


def test_the_phase_solicits_the_static_ipv6_in_numeric_order(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    for ip, mac, statics in [
        (*REGISTERED, "2001:db8:20::10"),
        (*STRANGER4, "2001:db8:20::a;2001:db8:20::9"),
    ]:
        added = cli("ledger", "add", ip, mac, "--ipv6", statics, "--owner", "x")
        assert added.exit_code == 0, added.stderr
    fake = cli.scanner = FakeScanner([result(REGISTERED)])
    done = cli("--config", str(config), "scan", "--phases", "sweep,ipv6", "--quiet")
    assert done.exit_code in (0, 1), done.stderr
    # As text "2001:db8:20::10" would come first: numeric order, as every output has it.
    assert fake.requests[-1].static_ipv6 == ("2001:db8:20::9", "2001:db8:20::a", "2001:db8:20::10")


def test_an_address_folded_into_a_finding_finds_it(cli: Cli, tmp_path: Path) -> None:
    # A stranger's privacy addresses are one finding with its MAC, at its IPv4 (or link-local)
    # address: asked for the address a firewall log shows, findings list must name that finding.
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    privacy = ["2001:db8:20::a:1", "2001:db8:20::a:2"]
    cli.scanner = FakeScanner([v6_result(STRANGER4, hosts6=[(ip, STRANGER4[1]) for ip in privacy])])
    scan = cli("--config", str(config), "scan", "--format", "json")
    assert scan.exit_code == 1, scan.stderr
    (finding,) = json.loads(scan.stdout)["findings"]
    assert (finding["ip"], finding["detail"]["ipv6"]) == (STRANGER4[0], privacy)

    def of(address: str) -> list[int]:
        outcome = cli("findings", "list", "--address", address, "--format", "json")
        assert outcome.exit_code == 0, outcome.stderr
        return [f["id"] for f in json.loads(outcome.stdout)["findings"]]

    assert of("2001:DB8:20:0:0:0:A:2") == [finding["id"]]
    assert of("2001:db8:20::a") == []  # a prefix of the text is another address
