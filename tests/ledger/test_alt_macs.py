"""A device's other MACs (`alt_macs`): migration 0008, files, the command line, lookups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.fields import FieldError, parse_mac_list
from ipguard.ledger import devices
from ipguard.ledger.store import SCHEMA_HEAD, Store
from tests.conftest import Cli
from tests.ledger.test_import_export import FULL_ROWS, ledger_json, row, write_csv
from tests.ledger.test_sites import old_record, upgrade

TWIN, NIC = "00:11:22:33:44:0a", "00:11:22:33:44:0b"


def test_migration_0008_gives_existing_records_no_other_macs(db_url: str) -> None:
    upgrade(db_url, "0007")
    old_record(db_url)
    store = Store(db_url)
    with store.session() as session:
        version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        [before] = devices.snapshot(session)
    store.close()
    assert version == SCHEMA_HEAD
    assert (before.ip, before.owner, before.alt_macs) == ("10.0.0.1", "李伟", ())


def test_other_macs_are_canonical_in_the_order_given() -> None:
    assert parse_mac_list(" 00-11-22-33-44-0A ; 0011.2233.440b;") == (TWIN, NIC)
    assert parse_mac_list("") == ()
    with pytest.raises(FieldError, match="is listed twice"):
        parse_mac_list(f"{TWIN};00:11:22:33:44:0A")
    with pytest.raises(FieldError, match="separate MACs with ';'"):
        parse_mac_list(f"{TWIN},{NIC}")
    with pytest.raises(FieldError, match="more than 8 MACs"):
        parse_mac_list(";".join(f"02:00:00:00:00:{n:02x}" for n in range(9)))


def test_files_carry_other_macs_and_refuse_bad_ones_by_line(cli: Cli, tmp_path: Path) -> None:
    assert cli("ledger", "import", str(write_csv(tmp_path / "in.csv", FULL_ROWS))).exit_code == 0
    held = {r["mac"]: r["alt_macs"] for r in ledger_json(cli) if r["status"] == "active"}
    assert held["00:11:22:33:44:01"] == f"{TWIN};{NIC}"
    exported = json.loads(cli("ledger", "export", "-", "--format", "json").stdout)
    lists = {item["mac"]: item["alt_macs"] for item in exported}
    assert lists["00:11:22:33:44:01"] == [TWIN, NIC] and lists["00:11:22:33:44:07"] == []
    before = ledger_json(cli)
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            row("10.0.0.1", "02:00:00:00:00:01", alt_macs="02:00:00:00:00:01"),
            row("10.0.0.2", "02:00:00:00:00:02", alt_macs="not-a-mac"),
        ],
    )
    result = cli("ledger", "import", str(bad))
    assert result.exit_code == 2
    assert "line 2, alt_macs '02:00:00:00:00:01': is the record's mac already" in result.stderr
    assert "line 3, alt_macs 'not-a-mac': not a MAC address" in result.stderr
    assert ledger_json(cli) == before


def test_files_without_the_column_keep_the_other_macs(cli: Cli, tmp_path: Path) -> None:
    cli("ledger", "add", "10.0.0.9", "02:00:00:00:00:09", "--alt-macs", TWIN)
    old = write_csv(
        tmp_path / "old.csv", [["10.0.0.9", "02:00:00:00:00:09", "王芳"]], "ip,mac,owner"
    )
    assert cli("ledger", "import", str(old)).exit_code == 0
    assert [(r["owner"], r["alt_macs"]) for r in ledger_json(cli)] == [("王芳", TWIN)]


def test_add_show_edit_and_remove_by_an_other_mac(cli: Cli) -> None:
    added = cli("ledger", "add", "10.0.0.7", "02:00:00:00:00:07", "--alt-macs", "00-11-22-33-44-0B")
    assert added.exit_code == 0, added.stderr
    shown = cli("ledger", "show", NIC.upper(), "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    assert [(r["ip"], r["alt_macs"]) for r in json.loads(shown.stdout)] == [("10.0.0.7", NIC)]
    again = cli("ledger", "edit", NIC, "--alt-macs", "02:00:00:00:00:07")
    assert again.exit_code == 2
    assert "alt_macs '02:00:00:00:00:07': is the record's mac already" in again.stderr
    edited = cli("ledger", "edit", NIC, "--alt-macs", f"{NIC};{TWIN}", "--owner", "李伟")
    assert edited.exit_code == 0, edited.stderr
    assert "│ 10.0.0.7 │" in cli("ledger", "list").stdout
    history = json.loads(cli("ledger", "history", "10.0.0.7", "--format", "json").stdout)
    assert history[-1]["changes"] == f"owner: '' → '李伟'; alt_macs: '{NIC}' → '{NIC};{TWIN}'"
    assert cli("ledger", "edit", "10.0.0.7", "--alt-macs", "").exit_code == 0
    assert cli("ledger", "show", NIC).exit_code != 0  # no record answers from it any more


def test_the_table_shows_the_columns_few_records_fill_only_when_one_does(cli: Cli) -> None:
    """`ledger list` on an 80-column terminal: empty ipv6, alt_macs and site columns took a third
    of it on a ledger that uses none of them."""

    def header() -> list[str]:
        line = next(line for line in cli("ledger", "list").stdout.splitlines() if " ip " in line)
        return [cell.strip() for cell in line.split("┃")[1:-1]]

    cli("ledger", "add", "10.0.0.7", "02:00:00:00:00:07", "--owner", "李伟")
    assert header() == ["ip", "mac", "owner", "department", "location", "hostname", "roles",
                        "status"]  # fmt: skip
    cli("ledger", "add", "10.0.0.8", "02:00:00:00:00:08", "--alt-macs", TWIN)
    assert header()[:3] == ["ip", "mac", "alt_macs"] and "site" not in header()
    listed = json.loads(cli("ledger", "list", "--format", "json").stdout)
    assert {"ipv6", "alt_macs", "site"} <= set(listed[0])  # machine output keeps every field
