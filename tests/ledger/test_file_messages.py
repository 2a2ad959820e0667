"""Issue 12, "messages to make actionable": each says what it is and what to do about it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ledger.test_import_export import ledger_json, row, write_csv

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IPGUARD = str(Path(sys.executable).with_name("ipguard"))
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def refused(outcome: object, *messages: str, code: int = 2) -> None:
    assert outcome.exit_code == code, outcome.stderr  # type: ignore[attr-defined]
    stderr: str = outcome.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("error: "), stderr
    for message in messages:
        assert message in stderr, stderr


FILES = {
    "utf-16 csv without a BOM": (
        "in.csv",
        "ip,mac\r\n10.0.0.1,02:00:00:00:00:01\r\n".encode("utf-16-le"),
        ["is UTF-16 text", '"CSV UTF-8"'],
    ),
    "pipes": ("in.csv", b"ip|mac|owner\r\n10.0.0.1|02:00:00:00:00:01|x\r\n", ["by '|'"]),
    "xls": ("old.xls", OLE2 + bytes(600), ["Excel 97-2003 (.xls)", ".xlsx"]),
    "xls named xlsx": ("old.xlsx", OLE2 + bytes(600), ["Excel 97-2003 (.xls)"]),
    "encrypted xlsx": (
        "locked.xlsx",
        OLE2 + bytes(100) + "EncryptedPackage".encode("utf-16-le") + bytes(100),
        ["password-protected", "without one"],
    ),
    "empty header cell": (
        "in.csv",
        b"ip,mac,,owner\r\n10.0.0.1,02:00:00:00:00:01,,x\r\n",
        ["column 3 has an empty header"],
    ),
    "unterminated quote": (
        "in.csv",
        b'ip,mac,notes\r\n10.0.0.1,02:00:00:00:00:01,"open\r\n10.0.0.2,02:00:00:00:00:02,x\r\n',
        ["line 2: a quoted cell opens here and is never closed"],
    ),
}


@pytest.mark.parametrize("case", FILES)
def test_unusable_files_say_what_they_are_and_what_to_do(
    cli: Cli, tmp_path: Path, case: str
) -> None:
    name, data, messages = FILES[case]
    path = tmp_path / name
    path.write_bytes(data)
    refused(cli("ledger", "import", str(path)), *messages)
    assert ledger_json(cli) == []


def test_unsupported_format_is_named(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [row("10.0.0.1", "02:00:00:00:00:01")])
    refused(
        cli("ledger", "import", str(path), "--format", "yaml"), "--format 'yaml' is not supported"
    )
    refused(cli("ledger", "export", "-", "--format", "yaml"), "use csv, xlsx or json")


def test_xlsx_problems_count_rows_as_the_header_does(cli: Cli, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["ip", "mac"])
    workbook.active.append(["10.0.0.1", "nope"])
    path = tmp_path / "in.xlsx"
    workbook.save(path)
    refused(cli("ledger", "import", str(path)), "row 2 (Sheet!B2), mac 'nope': not a MAC address")
    workbook.active["C1"] = "colour"
    workbook.save(path)
    refused(cli("ledger", "import", str(path)), "row 1: unknown column 'colour' in column 3")


@SQLITE_ONLY
def test_config_and_db_directories_are_named_as_directories(cli: Cli, tmp_path: Path) -> None:
    refused(cli("--config", str(tmp_path), "prune", "--dry-run"), "is a directory")
    refused(cli("ledger", "list", db=str(tmp_path)), "is a directory")
    refused(cli("ledger", "list", db=f"sqlite:///{tmp_path}"), "is a directory")


@SQLITE_ONLY
def test_bad_ports_name_the_key(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nports = "tcp/80;web"\n')
    refused(cli("--config", str(config), "prune", "--dry-run"), "scan.ports: 'web' is not")


@SQLITE_ONLY
def test_a_write_locked_ledger_names_the_lock_and_the_way_out(cli: Cli, db_url: str) -> None:
    assert cli("ledger", "list").exit_code == 0  # the ledger exists
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        outcome = cli("--wait", "0.2", "ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    refused(outcome, "another process", "holds the ledger's write lock", "--wait", code=3)
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01").exit_code == 0


@SQLITE_ONLY
def test_export_into_a_closed_pipe_exits_quietly(cli: Cli, db_url: str, tmp_path: Path) -> None:
    rows = [
        row(f"10.0.{n >> 8}.{n & 255}", "02:00:00:00:" + n.to_bytes(2).hex(":"))
        for n in range(1, 3000)
    ]
    assert cli("ledger", "import", str(write_csv(tmp_path / "in.csv", rows))).exit_code == 0
    env = {**os.environ, "IPGUARD_DB": db_url}
    process = subprocess.Popen(
        [IPGUARD, "ledger", "export", "-", "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.read(100)
    process.stdout.close()  # the reader goes away, as `| head -1` does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and stderr == b""


def test_export_to_a_missing_directory_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    refused(cli("ledger", "export", str(tmp_path / "nope" / "out.csv")), "cannot write")
    # `cron remove --user nosuch` is the same contract: tests/cli/test_cron.py checks it.
