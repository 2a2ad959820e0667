"""Site-scoped records: migration 0003, `ledger add/edit/list --site`, the trailing file column."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.ledger.store import SCHEMA_HEAD, Store
from ipguard.model import LEDGER_FIELDS
from tests.conftest import Cli
from tests.ledger.test_import_export import FULL_ROWS, ledger_json, write_csv

OLD_FIELDS = LEDGER_FIELDS[: LEDGER_FIELDS.index("site")]


def upgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    import ipguard.ledger.store

    config = Config()
    migrations = Path(ipguard.ledger.store.__file__).with_name("migrations")
    config.set_main_option("script_location", str(migrations))
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    engine.dispose()


def test_the_columns_are_the_readmes_with_the_later_ones_last() -> None:
    """The file schema is a contract: the README's column list, in its order."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"share one schema: `([^`]+)`", readme.replace("\n", " "))
    assert documented is not None, "the README no longer lists the ledger file columns"
    assert tuple(documented.group(1).split(", ")) == LEDGER_FIELDS
    assert LEDGER_FIELDS[-3:] == ("notes", "site", "alt_macs")


def old_record(db_url: str) -> None:
    """One record written before the migration under test, straight into its table."""
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO device (ip, mac, owner, created_at, updated_at) VALUES "
                "('10.0.0.1', '02:00:00:00:00:01', '李伟', '2026-01-01', '2026-01-02')"
            )
        )
    engine.dispose()


def test_migration_0003_keeps_existing_records_valid_at_every_site(db_url: str) -> None:
    upgrade(db_url, "0002")
    old_record(db_url)
    store = Store(db_url)
    with store.session(write=False) as session:
        row = session.execute(sa.text("SELECT ip, owner, site FROM device")).one()
        version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    store.close()
    assert tuple(row) == ("10.0.0.1", "李伟", "")
    assert version == SCHEMA_HEAD


def test_add_edit_list_and_show_with_sites(cli: Cli) -> None:
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--site", "north").exit_code == 0
    assert cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:02", "--site", "south").exit_code == 0
    assert cli("ledger", "add", "10.0.0.3", "02:00:00:00:00:03").exit_code == 0

    def listed(*args: str) -> list[tuple[str, str]]:
        result = cli("ledger", "list", "--format", "json", *args)
        assert result.exit_code == 0, result.stderr
        return [(row["ip"], row["site"]) for row in json.loads(result.stdout)]

    assert listed() == [("10.0.0.1", "north"), ("10.0.0.2", "south"), ("10.0.0.3", "")]
    assert listed("--site", "north") == [("10.0.0.1", "north"), ("10.0.0.3", "")]
    assert listed("--site", "west") == [("10.0.0.3", "")]

    assert cli("ledger", "edit", "10.0.0.1", "--site", "south").exit_code == 0
    assert cli("ledger", "edit", "10.0.0.2", "--site", "").exit_code == 0
    assert listed("--site", "north") == [("10.0.0.2", ""), ("10.0.0.3", "")]
    shown = json.loads(cli("ledger", "show", "10.0.0.1", "--format", "json").stdout)
    assert shown[0]["site"] == "south"
    history = json.loads(cli("ledger", "history", "10.0.0.1", "--format", "json").stdout)
    assert history[-1]["changes"] == "site: 'north' → 'south'"

    header = next(line for line in cli("ledger", "list").stdout.splitlines() if " ip " in line)
    assert header.split("┃")[-2].strip() == "site"


@pytest.mark.parametrize(
    ("site", "message"),
    [("x" * 65, "site names are at most 64 characters"), ("a\x01b", "control characters")],
)
def test_bad_site_names_are_refused(cli: Cli, site: str, message: str) -> None:
    result = cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--site", site)
    assert result.exit_code == 2 and message in result.stderr
    assert ledger_json(cli) == []


def with_sites(rows: list[list[str]], sites: list[str]) -> list[list[str]]:
    at = LEDGER_FIELDS.index("site")
    padded = [row + [""] * (len(LEDGER_FIELDS) - len(row)) for row in rows]
    return [[*row[:at], site, *row[at + 1 :]] for row, site in zip(padded, sites, strict=True)]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_sites_survive_export_and_import(cli: Cli, tmp_path: Path, fmt: str) -> None:
    rows = with_sites(FULL_ROWS, ["north", "south", "", "north"])
    source = write_csv(tmp_path / "in.csv", rows, header=",".join(LEDGER_FIELDS))
    assert cli("ledger", "import", str(source)).exit_code == 0
    first = ledger_json(cli)
    assert sorted(row["site"] for row in first) == ["", "north", "north", "south"]

    exported = tmp_path / f"out.{fmt}"
    assert cli("ledger", "export", str(exported)).exit_code == 0
    second = f"sqlite:///{tmp_path / 'second.db'}"
    result = cli("ledger", "import", str(exported), db=second)
    assert result.exit_code == 0, result.stderr
    assert ledger_json(cli, db=second) == first


def test_exports_put_site_after_notes(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--notes", "n", "--site", "north")
    text = cli("ledger", "export", "-").stdout
    header, line = list(csv.reader(io.StringIO(text)))
    assert header == list(LEDGER_FIELDS)
    assert line[-3:] == ["n", "north", ""]
    items = json.loads(cli("ledger", "export", "-", "--format", "json").stdout)
    assert list(items[0])[-3:] == ["notes", "site", "alt_macs"] and items[0]["site"] == "north"


def test_files_without_the_site_column_import_and_keep_the_records_sites(
    cli: Cli, tmp_path: Path
) -> None:
    old_header = ",".join(OLD_FIELDS)
    older = [row[: len(OLD_FIELDS)] for row in FULL_ROWS]
    old = write_csv(tmp_path / "old.csv", older, header=old_header)
    assert cli("ledger", "import", str(old)).exit_code == 0
    assert {row["site"] for row in ledger_json(cli)} == {""}

    assert cli("ledger", "edit", "10.20.1.1", "--site", "north").exit_code == 0
    result = cli("ledger", "import", str(old))
    assert "0 added, 0 updated, 0 retired, 4 unchanged" in result.stderr
    result = cli("ledger", "import", str(old), "--mode", "replace")
    assert "0 added, 0 updated, 0 retired, 4 unchanged" in result.stderr
    sites = {(row["ip"], row["mac"]): row["site"] for row in ledger_json(cli)}
    assert sites[("10.20.1.1", "00:11:22:33:44:01")] == "north"

    # A file that has the column is the truth, empty cells included.
    new = write_csv(
        tmp_path / "new.csv",
        with_sites(FULL_ROWS, ["", "", "", ""]),
        header=",".join(LEDGER_FIELDS),
    )
    result = cli("ledger", "import", str(new))
    assert "0 added, 1 updated" in result.stderr
    assert {row["site"] for row in ledger_json(cli)} == {""}

    # JSON items decide one by one: an item without the key keeps the site.
    cli("ledger", "edit", "10.20.1.1", "--site", "north")
    items = [{"ip": "10.20.1.1", "mac": "00:11:22:33:44:01", "hostname": "gw-core"}]
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    cli("ledger", "import", str(path))
    assert {row["ip"]: row["site"] for row in ledger_json(cli)}["10.20.1.1"] == "north"


def test_a_bad_site_in_a_file_names_the_line(cli: Cli, tmp_path: Path) -> None:
    rows = with_sites(FULL_ROWS[:2], ["north", "y" * 80])
    path = write_csv(tmp_path / "bad.csv", rows, header=",".join(LEDGER_FIELDS))
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    assert "line 3, site" in result.stderr and "at most 64 characters" in result.stderr
