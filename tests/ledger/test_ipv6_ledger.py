"""Static IPv6 addresses of a device: migration 0005, the store, the field's rules."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.errors import Conflict
from ipguard.fields import FieldError, parse_ipv6_list
from ipguard.ledger import devices
from ipguard.ledger.store import SCHEMA_HEAD, Store
from ipguard.model import Binding
from tests.conftest import Cli
from tests.ledger.test_import_export import FULL_ROWS, ledger_json, row, write_csv
from tests.ledger.test_sites import old_record, upgrade

SHARED = "2001:db8::98"


def test_migration_0005_gives_existing_records_no_static_ipv6(db_url: str) -> None:
    upgrade(db_url, "0004")
    old_record(db_url)
    store = Store(db_url)
    with store.session() as session:
        version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        [before] = devices.snapshot(session)
        session.execute(
            sa.text("UPDATE device SET ipv6 = '2001:db8::1;fd00:1::7' WHERE ip = '10.0.0.1'")
        )
    with store.session(write=False) as session:
        [after] = devices.snapshot(session)
    store.close()
    assert version == SCHEMA_HEAD
    assert (before.ip, before.owner, before.ipv6) == ("10.0.0.1", "李伟", ())
    assert after.ipv6 == ("2001:db8::1", "fd00:1::7")


def test_addresses_are_canonical_in_the_order_given() -> None:
    assert parse_ipv6_list(" 2001:DB8:0:0::1 ; fd00::A;") == ("2001:db8::1", "fd00::a")
    assert parse_ipv6_list("") == ()


@pytest.mark.parametrize(
    ("text", "value", "reason"),
    [
        ("fe80::1", "fe80::1", "link-local address (fe80::/10) is scoped to one link"),
        ("2001:db8::1%eth0", "2001:db8::1%eth0", "zone index"),
        ("ff02::1", "ff02::1", "multicast"),
        ("::", "::", "unspecified"),
        ("::1", "::1", "loopback"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1", "register it as 10.0.0.1"),
        ("10.0.0.1", "10.0.0.1", "an IPv4 address; it belongs in the ip column"),
        ("fec0::1", "fec0::1", "site-local"),
        ("2001:db8::g", "2001:db8::g", "not an IPv6 address"),
        ("2001:db8::1;2001:DB8:0::1", "2001:DB8:0::1", "2001:db8::1 is listed twice"),
    ],
)
def test_what_cannot_be_a_static_address_is_refused_with_the_reason(
    text: str, value: str, reason: str
) -> None:
    with pytest.raises(FieldError) as raised:
        parse_ipv6_list(text)
    assert (raised.value.field, raised.value.value) == ("ipv6", value)
    assert reason in raised.value.reason


def test_import_export_carries_static_ipv6_canonical_and_in_order(cli: Cli, tmp_path: Path) -> None:
    """The round trip itself is test_import_export_import_is_lossless (its rows hold IPv6)."""
    assert cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS))).exit_code == 0
    held = {(row["mac"], row["status"]): row["ipv6"] for row in ledger_json(cli)}
    assert held == {
        ("00:11:22:33:44:01", "active"): "2001:db8:20::1;fd00:20::1",
        ("00:11:22:33:44:07", "active"): "2001:db8:20::7",
        ("00:11:22:33:44:08", "suspended"): "",
        ("00:11:22:33:44:99", "retired"): "2001:db8:20::7",  # retired history may repeat it
    }
    result = cli("ledger", "export", "-", "--format", "json")
    items = {item["mac"]: item["ipv6"] for item in json.loads(result.stdout)}
    assert items["00:11:22:33:44:01"] == ["2001:db8:20::1", "fd00:20::1"]
    assert items["00:11:22:33:44:08"] == []


def test_bad_or_taken_static_ipv6_names_line_field_and_value_and_changes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    cli("ledger", "add", "10.0.0.9", "02:00:00:00:00:09", "--ipv6", "fd00:9::9", "--owner", "李伟")
    before = ledger_json(cli)
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            row("10.0.0.1", "02:00:00:00:00:01", ipv6="fe80::1"),
            row("10.0.0.2", "02:00:00:00:00:02", ipv6="2001:db8::2"),
            row("10.0.0.3", "02:00:00:00:00:03", ipv6="2001:DB8::2"),
        ],
    )
    result = cli("ledger", "import", str(bad))
    assert result.exit_code == 2
    assert f"{bad}: 2 bad rows" in result.stderr
    assert "line 2, ipv6 'fe80::1': a link-local address (fe80::/10)" in result.stderr
    assert "line 4, ipv6 '2001:db8::2': IPv6 2001:db8::2 is already active on line 3" in (
        result.stderr
    )
    taken = tmp_path / "taken.json"
    taken.write_text(json.dumps([{"ip": "10.0.0.5", "mac": "02:00:00:00:00:05", "ipv6": [
        "2001:db8::5", "FD00:9:0::9"]}]))  # fmt: skip
    result = cli("ledger", "import", str(taken))
    assert result.exit_code == 2
    assert "IPv6 fd00:9::9 is already registered to 02:00:00:00:00:09 (李伟) in the ledger" in (
        result.stderr
    )
    assert ledger_json(cli) == before


def test_files_without_the_ipv6_column_import_as_before_and_keep_the_addresses(
    cli: Cli, tmp_path: Path
) -> None:
    cli("ledger", "add", "10.0.0.9", "02:00:00:00:00:09", "--ipv6", "2001:db8::9;fd00::9")
    old = write_csv(
        tmp_path / "old.csv",
        [["10.0.0.9", "02:00:00:00:00:09", "王芳"], ["10.0.0.8", "02:00:00:00:00:08", "张三"]],
        header="ip,mac,owner",
    )
    result = cli("ledger", "import", str(old))
    assert result.exit_code == 0, result.stderr
    held = {row["ip"]: (row["owner"], row["ipv6"]) for row in ledger_json(cli)}
    assert held == {"10.0.0.8": ("张三", ""), "10.0.0.9": ("王芳", "2001:db8::9;fd00::9")}


def test_add_show_edit_list_and_history_by_static_ipv6(cli: Cli) -> None:
    added = cli("ledger", "add", "10.0.0.7", "02:00:00:00:00:07", "--ipv6", "2001:DB8:0:0::7")
    assert added.exit_code == 0, added.stderr
    shown = cli("ledger", "show", "2001:db8::0:7", "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    assert [(r["ip"], r["ipv6"]) for r in json.loads(shown.stdout)] == [("10.0.0.7", "2001:db8::7")]

    taken = cli("ledger", "add", "10.0.0.8", "02:00:00:00:00:08", "--ipv6", "fd00::8;2001:db8::7")
    assert taken.exit_code != 0
    assert "IPv6 2001:db8::7 is already registered to 02:00:00:00:00:07 at 10.0.0.7" in (
        taken.stderr
    )
    refused = cli("ledger", "edit", "10.0.0.7", "--ipv6", "fe80::7")
    assert refused.exit_code == 2
    assert "ipv6 'fe80::7': a link-local address" in refused.stderr

    edited = cli("ledger", "edit", "2001:db8::7", "--ipv6", "fd00::7;2001:db8::70")
    assert edited.exit_code == 0, edited.stderr
    assert cli("ledger", "show", "2001:db8::7").exit_code != 0  # no record holds it any more
    listed = cli("ledger", "list").stdout
    assert "│ 10.0.0.7 │ fd00::7;2001:db8::70 │ 02:00:00:00:00:07 │" in listed
    history = json.loads(cli("ledger", "history", "10.0.0.7", "--format", "json").stdout)
    assert [(e["before"] or {}).get("ipv6") for e in history] == [None, "2001:db8::7"]
    assert history[-1]["changes"] == "ipv6: '2001:db8::7' → 'fd00::7;2001:db8::70'"
    by_static = json.loads(cli("ledger", "history", "FD00::7", "--format", "json").stdout)
    assert [entry["action"] for entry in by_static] == ["device.add", "device.edit"]


def test_two_writers_at_once_cannot_both_claim_one_static_ipv6(db_url: str) -> None:
    """No index holds a list column: each writer checks and writes while the other waits.

    Each writer holds its transaction open after its check and insert, waiting (at most 1 s) for
    the other to get that far: were the check not serialised, both would pass it and commit.
    """
    store = Store(db_url)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim(index: int) -> None:
        binding = Binding(f"198.18.0.{110 + index}", f"02:00:00:00:04:{index:02x}", ipv6=(SHARED,))
        try:
            with store.session() as session:
                devices.add(session, binding, actor="tester")
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=1)
            outcomes.append("added")
        except Conflict as error:
            outcomes.append(str(error))

    writers = [threading.Thread(target=claim, args=(index,)) for index in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    with store.session(write=False) as session:
        holders = [b for b in devices.snapshot(session) if SHARED in b.ipv6]
    store.close()
    assert len(outcomes) == 2 and outcomes.count("added") == 1, outcomes
    assert len(holders) == 1
