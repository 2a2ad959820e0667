"""The administrators' rules over days of scans: what a night or a weekend does to the findings.

Through the CLI (and the runner, where days must pass), with the fake scanner at the seam.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.config import PolicySettings
from ipguard.ledger.store import Store
from ipguard.model import DhcpOffer, FdbEntry, NameObservation, Phase, ScanRequest, SnmpPoll
from ipguard.runner import run_scan
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

PC = ("198.18.0.10", "02:00:00:00:00:10")
LAPTOP = ("198.18.0.66", "02:00:00:00:00:66")
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24"]
site = "lab"
[policy]
hostname_rule = "^{department}-{owner}$"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ipguard.toml"
    path.write_text(CONFIG)
    return path


def scan(cli: Cli, config: Path) -> dict:
    outcome = cli("--config", str(config), "scan", "--format", "json")
    assert outcome.stdout, outcome.stderr
    return json.loads(outcome.stdout)


def listed(cli: Cli, state: str) -> list[tuple[int, str]]:
    found = json.loads(cli("findings", "list", "--state", state, "--format", "json").stdout)
    return [(f["id"], f["kind"]) for f in found["findings"]]


def test_a_host_switched_off_for_the_night_keeps_its_port_and_name_findings(
    cli: Cli, config: Path
) -> None:
    """The services and names phases look only at hosts that answered the sweep: a PC off at
    night proved nothing about its web server or its name (they were resolved, and came back
    the next morning as new incidents, alerted again)."""
    cli("ledger", "add", *PC, "--owner", "liwei", "--department", "math")
    name = NameObservation(PC[0], "gamebox", "netbios")
    by_day = result(PC, services=[(PC[0], "tcp/8080")], names=[name])
    cli.scanner = FakeScanner([by_day, result(), by_day, result(PC, names=[name])])
    first = scan(cli, config)
    opened = {(f["id"], f["kind"]) for f in first["findings"]}
    assert {kind for _id, kind in opened} == {"unexpected-service", "hostname-policy"}
    night = scan(cli, config)  # the PC is off: nothing answered
    assert {(f["id"], f["kind"]) for f in night["findings"]} == opened
    morning = scan(cli, config)
    assert {(f["id"], f["kind"]) for f in morning["findings"]} == opened
    assert listed(cli, "resolved") == []
    # The next day the web server is gone and the PC answered: that run proves it.
    scan(cli, config)
    assert [kind for _id, kind in listed(cli, "resolved")] == ["unexpected-service"]


def test_an_unregistered_laptop_away_every_night_escalates_after_the_grace_period(
    db_url: str,
) -> None:
    """Seen every working day, gone every night: its finding is resolved each night, but the
    laptop stays unregistered, and past the grace period (3 days) it escalates. It used to start
    afresh as a new high finding every morning, and never escalated. A visitor back after
    longer than the grace period is a new stay."""
    store = Store(db_url)
    request = ScanRequest(site="lab", interface="eth0", subnets=("198.18.0.0/24",))

    def scan_at(moment: datetime, *hosts: tuple[str, str]) -> list[tuple[str, str, str | None]]:
        outcome = run_scan(
            store,
            request,
            FakeScanner([result(*hosts)]),
            policy=PolicySettings(),
            actor="cron",
            clock=lambda: moment,
        )
        return [(row.kind, row.severity, row.detail.get("first_seen")) for row in outcome.live]

    for day in range(3):  # Monday to Wednesday: within the grace period
        morning = MONDAY + timedelta(days=day)
        assert scan_at(morning, LAPTOP)[0][:2] == ("unregistered-host", "high")
        assert scan_at(morning + timedelta(hours=13)) == []  # the night: resolved
    thursday = MONDAY + timedelta(days=3, minutes=15)
    assert scan_at(thursday, LAPTOP) == [("unregistered-host", "critical", "2026-11-02T09:00:00Z")]
    assert scan_at(thursday + timedelta(hours=13)) == []
    # Back after eleven days away: a new stay, within its grace period again.
    back = thursday + timedelta(days=11)
    assert scan_at(back, LAPTOP)[0][:2] == ("unregistered-host", "high")


def test_an_acknowledgement_until_a_date_covers_the_findings_return(cli: Cli, config: Path) -> None:
    """`findings ack --until`: the approved guest laptop leaves at night and is back in the
    morning; until the date it stays acknowledged (it used to come back open: exit 1 and an
    alert every morning). Without --until an acknowledgement ends with its finding."""
    cli.scanner = FakeScanner([result(LAPTOP), result(), result(LAPTOP), result(), result(LAPTOP)])
    first = scan(cli, config)
    (opened,) = first["findings"]
    ack = cli(
        "findings", "ack", str(opened["id"]), "--note", "guest of 王芳", "--until", "2999-01-01"
    )
    assert ack.exit_code == 0, ack.stderr
    assert scan(cli, config)["findings"] == []  # the night
    outcome = cli("--config", str(config), "scan", "--format", "json")
    assert outcome.exit_code == 0, outcome.stdout
    (back,) = json.loads(outcome.stdout)["findings"]
    assert (back["kind"], back["state"]) == ("unregistered-host", "acknowledged")
    assert back["id"] != opened["id"]  # still a new incident, with its own lifecycle
    shown = json.loads(cli("findings", "show", str(back["id"]), "--format", "json").stdout)
    # Acknowledged through 2999-01-01: it ends at that day's end, the next (local) midnight.
    assert (shown["ack_note"], shown["ack_until"]) == ("guest of 王芳", "2999-01-02T00:00:00Z")
    # Acknowledged without a date: the acknowledgement ends when the finding is resolved.
    assert cli("findings", "ack", str(back["id"]), "--note", "seen").exit_code == 0
    assert scan(cli, config)["findings"] == []  # the night
    outcome = cli("--config", str(config), "scan", "--format", "json")
    assert outcome.exit_code == 1
    assert [f["state"] for f in json.loads(outcome.stdout)["findings"]] == ["open"]


def test_next_free_skips_addresses_somebody_is_using(cli: Cli, config: Path) -> None:
    """An address an unregistered host answers at, or a retired device still answering at its
    old address, is not free: handed out, the new device would collide with it at once (it used
    to be handed out). A department is named in any case, as the pool rule compares it."""
    cli("pools", "add", "Math", "198.18.0.0/28")
    cli("ledger", "add", "198.18.0.1", "02:00:00:00:00:01", "--roles", "gateway")
    cli("ledger", "add", "198.18.0.3", "02:00:00:00:00:03")
    cli("ledger", "remove", "198.18.0.3")  # retired, but the PC was never unplugged
    squatter, retired = ("198.18.0.2", "02:00:00:00:00:99"), ("198.18.0.3", "02:00:00:00:00:03")
    cli.scanner = FakeScanner([result(squatter, retired), result()])
    found = scan(cli, config)
    kinds = {f["kind"] for f in found["findings"]}
    assert kinds == {"unregistered-host", "suspended-device-online"}
    assert cli("pools", "next-free", "math").stdout.strip() == "198.18.0.4"
    # A run no longer sees them (the night): their findings are resolved, and their addresses
    # were handed out the next morning, to collide at nine. They stay theirs for
    # `stale_after_days`, as a registration unseen that long is stale.
    scan(cli, config)
    assert listed(cli, "open") == []
    next_free = ["--config", str(config), "pools", "next-free", "MATH"]
    assert cli(*next_free).stdout.strip() == "198.18.0.4"
    config.write_text(CONFIG + "stale_after_days = 0\n")  # no memory: free once unseen
    assert cli(*next_free).stdout.strip() == "198.18.0.2"


def test_an_isolated_machine_only_a_switch_saw_stays_reported_until_the_switch_says_so(
    cli: Cli, config: Path
) -> None:
    """A classified machine in a VLAN the scan does not sweep, learnt by a polled switch: it is
    plugged in (it used to raise nothing). Only a run that polled that switch can resolve it: a
    sweep of its registered address proves nothing."""
    secret = ("198.18.0.9", "02:00:00:00:05:09")  # silent at its address: moved to another VLAN
    cli("ledger", "add", *secret, "--owner", "机要室", "--isolated")
    learnt = FdbEntry(secret[1], 30, 7, 7, "Gi1/0/7")
    polled = (SnmpPoll("core-1", "198.18.0.2", True, fdb=(learnt,)),)
    cli.scanner = FakeScanner(
        [
            replace(result(), snmp=polled),
            replace(result(), phases=frozenset({Phase.SWEEP})),  # no SNMP: proves nothing
            replace(result(), snmp=(SnmpPoll("core-1", "198.18.0.2", True),)),  # unplugged
        ]
    )
    (found,) = scan(cli, config)["findings"]
    assert (found["kind"], found["ip"], found["severity"]) == (
        "isolated-device-online",
        secret[0],
        "critical",
    )
    assert found["detail"]["learnt_on"] == [
        {"device": "core-1", "port": "core-1:Gi1/0/7", "vlan": 30}
    ]
    assert [f["id"] for f in scan(cli, config)["findings"]] == [found["id"]]
    assert scan(cli, config)["findings"] == []
    assert listed(cli, "resolved") == [(found["id"], "isolated-device-online")]


def test_a_retired_laptop_in_another_vlan_is_judged_by_the_runs_of_that_vlan(
    cli: Cli, config: Path
) -> None:
    """One sensor, one scan per VLAN (a scan sweeps one interface): the retired laptop answers in
    VLAN 2, so the scan of VLAN 1, where its record's address lies, cannot see whether it is
    still online (it resolved the finding, the next scan of VLAN 2 opened a new one, and so on,
    an alert each time)."""
    config.write_text(CONFIG.replace('["198.18.0.0/24"]', '["198.18.0.0/24", "198.18.1.0/24"]'))
    cli("ledger", "add", "198.18.0.5", "02:00:00:00:00:05", "--owner", "former teacher")
    cli("ledger", "remove", "198.18.0.5")
    laptop = ("198.18.1.7", "02:00:00:00:00:05")
    cli.scanner = FakeScanner([result(laptop), result(), result(laptop), result()])

    def scan_vlan(vlan: int) -> list[tuple[int, str]]:
        subnet = f"198.18.{vlan - 1}.0/24"
        outcome = cli("--config", str(config), "scan", "--format", "json", "--subnet", subnet)
        return [(f["id"], f["kind"]) for f in json.loads(outcome.stdout)["findings"]]

    (opened,) = scan_vlan(2)
    assert opened[1] == "suspended-device-online"
    assert scan_vlan(1) == [opened]  # VLAN 1 did not look where the laptop is
    assert scan_vlan(2) == [opened]
    assert scan_vlan(2) == []  # VLAN 2 looked, and it is gone
    assert listed(cli, "resolved") == [opened]


def test_a_replaced_network_card_is_not_stale_the_night_it_was_registered(
    cli: Cli, config: Path, db_url: str
) -> None:
    """A PC registered long ago gets a new network card (`ledger edit IP --mac NEW`) and is
    switched off for the night: its new pair was never seen, but it was registered minutes ago,
    not when the record was created (it was stale at once, 'not seen for 90 days')."""
    cli("ledger", "add", *PC, "--owner", "liwei", "--department", "math")
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE device SET created_at = :old, updated_at = :old"),
            {"old": datetime.now(UTC) - timedelta(days=90)},
        )
    engine.dispose()
    cli.scanner = FakeScanner([result(PC), result()])
    assert scan(cli, config)["findings"] == []
    assert cli("ledger", "edit", PC[0], "--mac", "02:00:00:00:00:11").exit_code == 0
    assert scan(cli, config)["findings"] == []  # the night: the PC is off


def test_a_home_router_serving_dhcp_from_its_own_network_is_resolved_once_unplugged(
    cli: Cli, config: Path
) -> None:
    """The classic rogue DHCP server: a home router plugged in by its LAN port offers
    192.168.1.x from 192.168.1.1, outside every subnet of the scan. The DHCP phase listens on the
    link, whatever the address: once it is unplugged a run with that phase resolves it (it stayed
    open, critical, failing every scan for ever)."""
    offer = DhcpOffer("192.168.1.1", "02:00:00:00:0e:01", "192.168.1.100", router="192.168.1.1")
    cli.scanner = FakeScanner(
        [
            result(offers=[offer]),
            result(phases=frozenset({Phase.SWEEP})),  # no DHCP phase: proves nothing
            result(),  # another VLAN's interface: did not hear that link
            result(),
        ]
    )
    (found,) = scan(cli, config)["findings"]
    assert (found["kind"], found["ip"], found["severity"]) == (
        "rogue-dhcp",
        "192.168.1.1",
        "critical",
    )
    assert [f["id"] for f in scan(cli, config)["findings"]] == [found["id"]]
    other_vlan = cli("--config", str(config), "scan", "--format", "json", "--interface", "eth1")
    assert [f["id"] for f in json.loads(other_vlan.stdout)["findings"]] == [found["id"]]
    assert scan(cli, config)["findings"] == []
    assert listed(cli, "resolved") == [(found["id"], "rogue-dhcp")]


def test_an_out_of_pool_pc_off_for_the_night_is_still_out_of_its_pool(
    cli: Cli, config: Path
) -> None:
    """out-of-pool is about the registration, judged when the PC answers: a night without it
    proved nothing (it was resolved, and came back each morning as a new incident)."""
    cli("pools", "add", "math", "198.18.0.128/25")
    cli("ledger", "add", *PC, "--owner", "liwei", "--department", "math")  # .10: outside
    cli.scanner = FakeScanner([result(PC), result(), result(PC)])
    (opened,) = scan(cli, config)["findings"]
    assert opened["kind"] == "out-of-pool"
    assert [f["id"] for f in scan(cli, config)["findings"]] == [opened["id"]]
    assert [f["id"] for f in scan(cli, config)["findings"]] == [opened["id"]]


def test_a_device_given_a_new_address_leaves_its_old_address_findings_behind(
    cli: Cli, config: Path
) -> None:
    """The PC with an open proxy moves to a new address (`ledger edit --ip`) and the proxy is
    gone: the run saw the device at its new address, so the finding at the old one is over."""
    from ipguard.model import ProxyVerdict

    cli("ledger", "add", *PC, "--owner", "liwei")
    relay = ProxyVerdict(PC[0], 3128, "http-connect", True, "relayed")
    moved = ("198.18.0.50", PC[1])
    cli.scanner = FakeScanner(
        [result(PC, services=[(PC[0], "tcp/3128")], proxies=[relay]), result(moved)]
    )
    (opened,) = scan(cli, config)["findings"]
    assert opened["kind"] == "open-proxy"
    assert cli("ledger", "edit", PC[0], "--ip", moved[0]).exit_code == 0
    assert scan(cli, config)["findings"] == []
    assert listed(cli, "resolved") == [(opened["id"], "open-proxy")]


def test_the_next_scan_listens_for_the_slowest_rogue_dhcp_server_on_record(
    cli: Cli, config: Path, db_url: str
) -> None:
    """A rogue server that offered 4.7 s after the DISCOVER is on record: the next scans hand
    the DHCP probe that figure (it listens half a window beyond it), also after a run missed the
    server, until nothing slow was heard for a day. A run without the DHCP phase is not told."""
    slow = replace(
        DhcpOffer("198.18.0.43", "02:00:00:00:0e:43", "198.18.0.200", router="198.18.0.43"),
        latency=4.7,
    )
    fast = replace(slow, server_ip="198.18.0.44", server_mac="02:00:00:00:0e:44", latency=0.2)
    scanner = FakeScanner([result(offers=[fast]), result(offers=[slow, fast]), result()])
    cli.scanner = scanner
    scan(cli, config)
    scan(cli, config)
    scan(cli, config)  # missed both: resolved, still the one to listen for
    scan(cli, config)
    assert [r.dhcp_slowest for r in scanner.requests] == [None, 0.2, 4.7, 4.7]
    sweep_only = cli("--config", str(config), "scan", "--phases", "sweep", "--format", "json")
    assert sweep_only.exit_code in (0, 1), sweep_only.output
    assert scanner.requests[-1].dhcp_slowest is None
    # A day later the record has aged out: the configured window again.
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE finding SET last_seen_at = :t"),
            {"t": datetime.now(UTC) - timedelta(days=1, minutes=1)},
        )
    engine.dispose()
    scan(cli, config)
    assert scanner.requests[-1].dhcp_slowest is None


def test_a_rogue_dhcp_server_is_resolved_only_by_a_run_on_its_own_link(
    cli: Cli, config: Path
) -> None:
    """A sensor with two NICs (two VLANs, one site): a rogue server heard on eth0, inside the
    scan's subnets. A run on eth1 cannot hear eth0's link, whatever subnets it sweeps: it resolved
    the finding (the server's address was in its subnets), and eth0's next run reopened it."""
    offer = DhcpOffer("198.18.0.77", "02:00:00:00:0e:77", "198.18.0.150", router="198.18.0.77")
    cli.scanner = FakeScanner([result(offers=[offer]), result(), result()])
    (found,) = scan(cli, config)["findings"]
    assert (found["kind"], found["ip"]) == ("rogue-dhcp", "198.18.0.77")
    other_link = cli("--config", str(config), "scan", "--format", "json", "--interface", "eth1")
    assert [f["id"] for f in json.loads(other_link.stdout)["findings"]] == [found["id"]]
    assert scan(cli, config)["findings"] == []  # its own link, and it is gone
    assert listed(cli, "resolved") == [(found["id"], "rogue-dhcp")]
