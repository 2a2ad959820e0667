"""IPv6 as a new administrator types it: addresses pasted from `ping`, `ip -6 neigh` or a socket
log, records registered by their IPv6 address in the ip column. Each is either understood or
refused with one `error:` line saying why (exit 2); never a traceback, never a silent miss.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ipguard.fields import FieldError, parse_ipv6_list
from ipguard.model import Observation
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24", "2001:db8:20::/64"]
site = "lab"
"""


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only for the shared `cli` fixture: parsing is the same on PostgreSQL."""
    return sqlite_url


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("::ffff:198.18.0.11", "an IPv4 address written as IPv6; register it as 198.18.0.11"),
        ("2001:db8::10%eth0", "a scoped address (zone index after %) names a link, not a device"),
        ("::", "not a host address (unspecified or multicast)"),
        ("ff02::1", "not a host address (unspecified or multicast)"),
    ],
)
def test_an_address_that_is_no_devices_says_why_not_neither_ip_nor_mac(
    cli: Cli, key: str, reason: str
) -> None:
    for command in (("ledger", "show", key), ("findings", "list", "--address", key)):
        outcome = cli(*command)
        assert (outcome.exit_code, outcome.stdout) == (2, ""), command
        assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1
        assert reason in outcome.stderr and "neither" not in outcome.stderr, outcome.stderr


def test_a_link_local_address_with_its_zone_is_looked_up_without_it(
    cli: Cli, tmp_path: Path
) -> None:
    # `ping fe80::…%eth0` and `ip -6 neigh` spell it with the interface; a finding holds it bare.
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    stranger = Observation("fe80::2", "02:00:00:00:00:66", datetime.now(UTC), "ndp")
    cli.scanner = FakeScanner([replace(result(), observations=(stranger,))])
    done = cli("--config", str(config), "scan", "--phases", "ipv6", "--quiet")
    assert done.exit_code == 1, done.stderr
    outcome = cli("findings", "list", "--address", "FE80::2%eth0", "--format", "json")
    assert outcome.exit_code == 0, outcome.stderr
    listed = json.loads(outcome.stdout)["findings"]
    assert [(f["kind"], f["ip"]) for f in listed] == [("unregistered-host", "fe80::2")]
    shown = cli("ledger", "show", "fe80::2%eth0")
    assert (shown.exit_code, shown.stderr) == (2, "error: no ledger record for fe80::2%eth0\n")


def test_a_record_registered_by_ipv6_in_the_ip_column_is_solicited_like_a_static(
    cli: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    for args in (
        ("2001:DB8:20::10", "02:00:00:00:00:10"),  # an IPv6-only device: its address in ip
        ("198.18.0.11", "02:00:00:00:00:11", "--ipv6", "2001:db8:20::11"),
        ("2001:db8:99::12", "02:00:00:00:00:12"),  # outside the prefixes: the phase filters
    ):
        added = cli("ledger", "add", *args)
        assert added.exit_code == 0, added.stderr
    cli.scanner = FakeScanner([result()])
    done = cli("--config", str(config), "scan", "--phases", "ipv6", "--quiet")
    assert done.exit_code == 0, done.stderr
    (request,) = cli.scanner.requests
    assert request.static_ipv6 == ("2001:db8:20::10", "2001:db8:20::11", "2001:db8:99::12")


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("fe80::1", "a link-local address (fe80::/10) is scoped to one link"),
        ("FEC0::1", "a site-local address (fec0::/10) is deprecated"),
    ],
)
def test_the_ip_column_holds_an_ipv6_address_by_the_rules_of_a_static_one(
    cli: Cli, tmp_path: Path, ip: str, reason: str
) -> None:
    # fe80::1 is every router's link-local address on every VLAN: it names no one device.
    added = cli("ledger", "add", ip, "02:00:00:00:00:10")
    assert (added.exit_code, added.stdout) == (2, "")
    assert added.stderr.startswith(f"error: ip '{ip}': {reason}"), added.stderr
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(f"ip,mac,owner\n198.18.0.9,02:00:00:00:00:09,a\n{ip},02:00:00:00:00:10,b\n")
    imported = cli("ledger", "import", str(ledger))
    assert imported.exit_code == 2 and f"line 3, ip '{ip}': {reason}" in imported.stderr
    assert cli("ledger", "list", "--format", "json").stdout.count('"ip"') == 0
    registered = cli("ledger", "add", "198.18.0.9", "02:00:00:00:00:09")
    assert registered.exit_code == 0, registered.stderr
    edited = cli("ledger", "edit", "198.18.0.9", "--ip", ip)
    assert edited.exit_code == 2 and reason in edited.stderr


@pytest.mark.parametrize(
    ("subnet", "reason"),
    [
        ("::ffff:198.18.0.0/120", "an IPv4 range written as IPv6; give it as IPv4 (198.18.0.0/24)"),
        ("ff02::/16", "a multicast range cannot hold devices"),
    ],
)
def test_a_subnet_that_holds_no_devices_is_refused_in_the_configuration(
    cli: Cli, tmp_path: Path, subnet: str, reason: str
) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG.replace('"2001:db8:20::/64"', f'"{subnet}"'))
    cli.scanner = FakeScanner([result()])
    done = cli("--config", str(config), "scan", "--quiet")
    assert (done.exit_code, done.stdout, cli.scanner.requests) == (2, "", [])
    assert done.stderr == f"error: {config}: scan.subnets: {subnet!r}: {reason}\n"


def test_the_whole_ipv6_space_is_a_scope_for_discovery_on_the_link(
    cli: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG.replace('"2001:db8:20::/64"', '"::/0"'))
    cli.scanner = FakeScanner([result()])
    done = cli("--config", str(config), "scan", "--quiet", "--subnet", "2001:db8::/32")
    assert done.exit_code == 0, done.stderr
    assert cli.scanner.requests[0].subnets == ("2001:db8::/32",)


@pytest.mark.parametrize("cell", ["2001:db8::1,2001:db8::2", "2001:db8::1\n2001:db8::2", "a b"])
def test_addresses_in_one_cell_separated_otherwise_than_by_semicolons_say_how(
    cli: Cli, tmp_path: Path, cell: str
) -> None:
    ledger = tmp_path / "ledger.json"
    ledger.write_text(json.dumps([{"ip": "198.18.0.9", "mac": "02:00:00:00:00:09", "ipv6": cell}]))
    imported = cli("ledger", "import", str(ledger))
    assert imported.exit_code == 2
    assert imported.stderr.startswith("error: ") and imported.stderr.count("\n") == 1
    assert "not an IPv6 address; separate addresses with ';'" in imported.stderr


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", ("2001:db8::1",)),  # leading zeros, upper
        ("2001:db8::1;;fd00::2;", ("2001:db8::1", "fd00::2")),  # empty items are no address
        ("2001:db8::198.18.0.1", ("2001:db8::c612:1",)),  # RFC 4291 2.2 embedded IPv4: valid
    ],
)
def test_odd_but_valid_spellings_are_stored_canonical(cell: str, stored: tuple[str, ...]) -> None:
    assert parse_ipv6_list(cell) == stored


@pytest.mark.parametrize(
    "cell",
    ["2001:0db8:0000:0000:0000:0000:0000:00001", "2001:db8::00001", "[2001:db8::1]", "::/0"],
)
def test_forty_characters_and_more_or_decorated_are_no_address(cell: str) -> None:
    with pytest.raises(FieldError, match="not an IPv6 address"):
        parse_ipv6_list(cell)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (20010, "row 2 (Sheet!B2), ipv6 '20010': not an IPv6 address"),
        ('="2001:db8::"&"1"', "row 2, ipv6: cell B2 holds a formula without a saved result"),
    ],
)
def test_an_xlsx_ipv6_cell_holding_a_number_or_a_formula_names_the_cell(
    cli: Cli, tmp_path: Path, value: object, message: str
) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["ip", "ipv6", "mac", "owner"])
    sheet.append(["198.18.0.9", value, "02:00:00:00:00:09", "a"])
    book.save(tmp_path / "ledger.xlsx")
    imported = cli("ledger", "import", str(tmp_path / "ledger.xlsx"))
    assert (imported.exit_code, imported.stdout) == (2, "")
    assert imported.stderr.startswith("error: ") and message in imported.stderr
    assert imported.stderr.count("\n") == 1
