"""Issue 12, cases 1-10: input that used to store wrong data, lose data or destroy the ledger.

Each case runs the CLI on a real ledger (SQLite, and PostgreSQL where the store is involved) and
checks the one `error:` line, the exit code, and that the ledger did not change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipguard.cli.main import app
from tests.conftest import Cli
from tests.ledger.test_import_export import ledger_json, row, write_csv

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IPGUARD = str(Path(sys.executable).with_name("ipguard"))


def history(cli: Cli, key: str) -> list[dict[str, object]]:
    result = cli("ledger", "history", key, "--format", "json")
    assert result.exit_code == 0, result.stderr
    entries: list[dict[str, object]] = json.loads(result.stdout)
    return entries


# --- 1. output written onto the ledger ---------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_export_and_report_refuse_to_overwrite_the_ledger(
    cli: Cli, db_url: str, suffix: str
) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "李伟")
    ledger = db_url.removeprefix("sqlite:///") + suffix
    before = ledger_json(cli)
    for args in (("ledger", "export", ledger, "--format", "csv"), ("report", "-o", ledger)):
        result = cli(*args, *(("--format", "json") if args[0] == "report" else ()))
        assert result.exit_code == 2, (args, result.stderr)
        assert "the ledger's own file" in result.stderr
    assert ledger_json(cli) == before
    assert [entry["action"] for entry in history(cli, "10.0.0.1")] == ["device.add"]


@SQLITE_ONLY
def test_export_refuses_the_ledger_through_a_symlink(cli: Cli, db_url: str, tmp_path: Path) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    link = tmp_path / "innocent.csv"
    link.symlink_to(db_url.removeprefix("sqlite:///"))
    result = cli("ledger", "export", str(link))
    assert result.exit_code == 2 and "the ledger's own file" in result.stderr
    assert len(ledger_json(cli)) == 1


# --- 2. an empty --db or IPGUARD_DB ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--db", ""], {}, "--db is empty"),
        (["--db", " "], {}, "--db is empty"),
        ([], {"IPGUARD_DB": ""}, "IPGUARD_DB is empty"),
        (["--db", " x.db"], {}, "starts or ends with spaces"),
    ],
)
def test_empty_database_option_is_an_error_not_the_default_ledger(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IPGUARD_DB", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, [*args, "ledger", "add", "10.0.0.1", "02:00:00:00:00:01"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the per-user ledger nor a file named ' '


# --- 3. replace with no data rows --------------------------------------------------------------


@pytest.mark.parametrize(("name", "content"), [("empty.json", "[]"), ("header.csv", None)])
def test_replace_that_would_retire_too_much_is_refused_unless_forced(
    cli: Cli, tmp_path: Path, name: str, content: str | None
) -> None:
    for number in range(1, 4):
        cli("ledger", "add", f"10.0.0.{number}", f"02:00:00:00:00:0{number}")
    before = ledger_json(cli)
    path = tmp_path / name
    if content is None:
        write_csv(path, [])
    else:
        path.write_text(content)
    refused = cli("ledger", "import", str(path), "--mode", "replace")
    assert refused.exit_code == 2
    assert "would retire 3 of the ledger's 3 active records" in refused.stderr
    assert "--force" in refused.stderr
    assert ledger_json(cli) == before
    assert (
        cli("ledger", "import", str(path), "--mode", "replace", "--max-retire", "2").exit_code == 2
    )
    assert cli("ledger", "import", str(path), "--mode", "replace", "--force").exit_code == 0
    assert {record["status"] for record in ledger_json(cli)} == {"retired"}


def test_replace_within_the_limit_goes_ahead(cli: Cli, tmp_path: Path) -> None:
    for number in range(1, 11):
        cli("ledger", "add", f"10.0.0.{number}", f"02:00:00:00:00:{number:02x}")
    keep = [row(f"10.0.0.{n}", f"02:00:00:00:00:{n:02x}") for n in range(1, 10)]
    result = cli("ledger", "import", str(write_csv(tmp_path / "in.csv", keep)), "--mode", "replace")
    assert result.exit_code == 0, result.stderr  # one of ten: the default tenth
    assert [r["status"] for r in ledger_json(cli)].count("retired") == 1


# --- 4. digit-only MACs ------------------------------------------------------------------------


@pytest.mark.parametrize("mac", ["12345", "0011223344556", "1122334455"])
def test_digit_only_macs_are_refused(cli: Cli, mac: str) -> None:
    result = cli("ledger", "add", "10.7.7.1", mac)
    assert result.exit_code == 2 and f"mac {mac!r}: not a MAC address" in result.stderr
    assert ledger_json(cli) == []


def test_a_number_cell_for_the_mac_names_the_dropped_zeros(cli: Cli, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ip", "mac"])
    sheet.append(["10.7.7.1", 1122334455])
    path = tmp_path / "numbers.xlsx"
    workbook.save(path)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    assert "cell B2 is the number 1122334455" in result.stderr
    assert "leading zeros" in result.stderr
    assert ledger_json(cli) == []


# --- 5. encodings ------------------------------------------------------------------------------


@SQLITE_ONLY
def test_latin1_is_refused_unless_named(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"ip,mac,owner\r\n10.0.0.1,02:00:00:00:00:01,M\xfcller\r\n")
    refused = cli("ledger", "import", str(path))
    assert refused.exit_code == 2
    assert "line 2" in refused.stderr and "--encoding" in refused.stderr
    assert ledger_json(cli) == []
    assert cli("ledger", "import", str(path), "--encoding", "latin-1").exit_code == 0
    assert ledger_json(cli)[0]["owner"] == "Müller"


@SQLITE_ONLY
def test_utf8_with_one_stray_byte_names_the_line_and_byte(cli: Cli, tmp_path: Path) -> None:
    good = "ip,mac,owner\r\n10.0.0.1,02:00:00:00:00:01,李伟\r\n".encode()
    data = good + b"10.0.0.2,02:00:00:00:00:02,Wang\xe9\r\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    offset = data.index(b"\xe9")
    assert f"line 3: byte {offset} (0xe9) is not UTF-8" in result.stderr
    assert ledger_json(cli) == []


@SQLITE_ONLY
def test_unknown_encoding_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [row("10.0.0.1", "02:00:00:00:00:01")])
    result = cli("ledger", "import", str(path), "--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding" in result.stderr


# --- 6. XLSX -----------------------------------------------------------------------------------


def _workbook(tmp_path: Path, build: object) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "ledger"
    sheet.append(["ip", "mac", "owner"])
    build(workbook, sheet)  # type: ignore[operator]
    path = tmp_path / "in.xlsx"
    workbook.save(path)
    return path


XLSX_CASES = {
    "right of the last column": (
        lambda wb, ws: ws.append(["10.0.0.1", "02:00:00:00:00:01", "a", "lost"]),
        "cell D2 is right of the last column (C)",
    ),
    "formula without a value": (
        lambda wb, ws: ws.append(["10.0.0.1", "02:00:00:00:00:01", "=A1&B1"]),
        "cell C2 holds a formula without a saved result",
    ),
    "formula in the ip cell": (
        lambda wb, ws: ws.append(['=CONCAT("10.0.0.", 1)', "02:00:00:00:00:01"]),
        "cell A2 holds a formula without a saved result",
    ),
    "merged cells": (
        lambda wb, ws: (
            ws.append(["10.0.0.1", "02:00:00:00:00:01", "math"]),
            ws.append(["10.0.0.2", "02:00:00:00:00:02"]),
            ws.merge_cells("C2:C3"),
        ),
        "cells C2:C3 are merged",
    ),
    "error value": (
        lambda wb, ws: ws.append(["10.0.0.1", "02:00:00:00:00:01", "#DIV/0!"]),
        "cell C2 holds the error #DIV/0!",
    ),
}


@pytest.mark.parametrize("case", XLSX_CASES)
def test_xlsx_cells_that_would_be_misread_are_errors_naming_the_cell(
    cli: Cli, tmp_path: Path, case: str
) -> None:
    build, message = XLSX_CASES[case]
    result = cli("ledger", "import", str(_workbook(tmp_path, build)))
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "row 2" in result.stderr
    assert ledger_json(cli) == []


def test_xlsx_reads_the_active_sheet_or_the_named_one(cli: Cli, tmp_path: Path) -> None:
    def build(workbook: object, sheet: object) -> None:
        sheet.append(["10.0.0.9", "02:00:00:00:00:09", "hidden old copy"])  # type: ignore[attr-defined]
        sheet.sheet_state = "hidden"  # type: ignore[attr-defined]
        current = workbook.create_sheet("current")  # type: ignore[attr-defined]
        current.append(["ip", "mac", "owner"])
        current.append(["10.0.0.1", "02:00:00:00:00:01", "李伟"])
        workbook.active = 1  # type: ignore[attr-defined]

    path = _workbook(tmp_path, build)
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert [r["owner"] for r in ledger_json(cli)] == ["李伟"]
    assert cli("ledger", "import", str(path), "--sheet", "ledger").exit_code == 0
    assert [r["owner"] for r in ledger_json(cli)] == ["李伟", "hidden old copy"]
    missing = cli("ledger", "import", str(path), "--sheet", "nope")
    assert (
        missing.exit_code == 2
        and "has no such sheet (it has 'ledger', 'current')" in missing.stderr
    )


# --- 7. JSON values ----------------------------------------------------------------------------

JSON_CASES = {
    "nested object": (
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "notes": {"a": 1}}]',
        "item 1, notes: a nested object",
    ),
    "duplicate key": (
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "owner": "a", "owner": "b"}]',
        "item 1, owner: the key appears twice",
    ),
    "NaN": (
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "notes": NaN}]',
        "item 1, notes: NaN is not a number a ledger holds",
    ),
    "Infinity": (
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01"}, {"ip": "10.0.0.2", '
        '"mac": "02:00:00:00:00:02", "asset_tag": Infinity}]',
        "item 2, asset_tag: Infinity is not a number a ledger holds",
    ),
    "huge exponent": (
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "notes": 1e999}]',
        "item 1, notes: 1e999 is too large a number",
    ),
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_json_values_are_never_coerced(cli: Cli, tmp_path: Path, case: str) -> None:
    text, message = JSON_CASES[case]
    path = tmp_path / "in.json"
    path.write_text(text)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert ledger_json(cli) == []


# --- 8, 9. mapped, reserved and scoped addresses ------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("::ffff:10.0.0.1", "register it as 10.0.0.1"),
        ("::FFFF:a00:1", "register it as 10.0.0.1"),
        ("255.255.255.255", "reserved or broadcast"),
        ("240.0.0.1", "reserved or broadcast"),
        ("fe80::1%eth0", "zone index"),
    ],
)
def test_one_address_one_spelling_in_devices(cli: Cli, ip: str, message: str) -> None:
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01").exit_code == 0
    result = cli("ledger", "add", ip, "02:00:00:00:00:02")
    assert result.exit_code == 2 and message in result.stderr
    assert [r["ip"] for r in ledger_json(cli)] == ["10.0.0.1"]
    assert cli("ledger", "export", "-", "--format", "csv").exit_code == 0


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("::ffff:10.0.0.0/120", "give it as IPv4 (10.0.0.0/24)"),
        ("240.0.0.0/8", "reserved range"),
        ("fe80::%eth0/64", "not a network"),
    ],
)
def test_one_address_one_spelling_in_pools(cli: Cli, cidr: str, message: str) -> None:
    assert cli("pools", "add", "math", "10.0.0.0/24").exit_code == 0
    result = cli("pools", "add", "physics", cidr)
    assert result.exit_code == 2 and message in result.stderr
    listed = cli("pools", "list", "--format", "json")
    assert [pool["cidr"] for pool in json.loads(listed.stdout)] == ["10.0.0.0/24"]


def test_ipv6_device_addresses_remain_possible(cli: Cli) -> None:
    assert cli("ledger", "add", "2001:db8::10", "02:00:00:00:00:10").exit_code == 0
    assert cli("pools", "add", "lab", "2001:db8::/64").exit_code == 0
    assert [r["ip"] for r in ledger_json(cli)] == ["2001:db8::10"]


# --- 10. Ctrl-C during an import ----------------------------------------------------------------


def test_interrupted_import_says_what_happened(tmp_path: Path) -> None:
    rows = [
        row(f"10.{n >> 16}.{n >> 8 & 255}.{n & 255}", "02:00:" + n.to_bytes(4).hex(":"))
        for n in range(1, 30_001)
    ]
    path = write_csv(tmp_path / "big.csv", rows)

    def writing(name: str, process: subprocess.Popen[str], megabytes: int) -> None:
        """Stop the import once it writes its rows: its WAL holds over `megabytes` (30,000 rows
        make about 20 MB; the migrations before them far less).

        The rows take about 0.6 s to write; on a loaded machine this loop may not run at all in
        that time, and every signal came after the import (the suite failed at load 40). So the
        import runs in steps of 2 ms at the lowest priority, stopped (SIGSTOP) while its WAL is
        looked at, and is left stopped there; the caller's SIGINT is delivered at its SIGCONT.
        """
        wal, end = tmp_path / f"{name}-wal", time.monotonic() + 300
        while process.poll() is None and time.monotonic() < end:
            process.send_signal(signal.SIGSTOP)
            if wal.exists() and wal.stat().st_size > megabytes * 1_000_000:
                return
            process.send_signal(signal.SIGCONT)
            time.sleep(0.002)

    def as_a_shell_starts_it(*, lowest: bool) -> None:
        """The import as a terminal's shell starts it: SIGINT at its default and unblocked. The
        suite's worker process need not be so (the whole suite, and only it, saw every signal
        come to nothing: code 0, every row in). `lowest`: at the lowest priority, so that this
        process, waking from its 2 ms sleep, takes the core back at once."""
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if lowest:
            os.nice(19)

    def run(name: str, delay: float | int | None) -> tuple[int, str, int]:
        env = {**os.environ, "IPGUARD_DB": str(tmp_path / name), "IPGUARD_ACTOR": "tester"}
        started = time.monotonic()
        process = subprocess.Popen(
            [IPGUARD, "ledger", "import", str(path)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=partial(as_a_shell_starts_it, lowest=isinstance(delay, int)),
        )
        if isinstance(delay, int):  # megabytes of WAL written
            writing(name, process, delay)
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGCONT)
        elif isinstance(delay, float):
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
        if delay is None:
            run.took = time.monotonic() - started  # type: ignore[attr-defined]
        listed = subprocess.run(
            [IPGUARD, "ledger", "list", "--format", "csv"], env=env, capture_output=True, text=True
        )
        return process.returncode, stderr, max(0, listed.stdout.count("\n") - 1)

    assert run("whole.db", None)[0] == 0
    took: float = run.took  # type: ignore[attr-defined]
    outcomes, seen = [], []
    # Signals just after start-up and near the end, wherever the import then is, and two while
    # it writes its rows, after 1 and 10 MB of its WAL (whatever the load, which may have changed
    # since `took` was measured).
    for index, when in enumerate((0.6, 1, 10, 0.97)):
        code, stderr, count = run(f"l{index}.db", took * when if isinstance(when, float) else when)
        seen.append((when, code, count, stderr))
        assert "Traceback" not in stderr
        # Finished before the signal, or the signal came after the import had said "imported …",
        # while the command or the interpreter was ending (the process then dies of it, or says
        # "interrupted" and exits 130): all rows are in.
        late = stderr.startswith(f"imported {path} (merge): 30000 added") and stderr.endswith(
            "\nerror: interrupted\n"
        )
        if code in (0, -signal.SIGINT) or (code == 130 and late):
            assert count == 30_000, stderr
            continue
        assert code == 130, stderr
        if stderr.startswith("error: interrupted; nothing was imported"):
            assert count == 0
        else:
            assert "(30000 changes); interrupted afterwards" in stderr and count == 30_000
        outcomes.append(code)
    worker = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert outcomes, (
        f"no import was interrupted; the signals all came too late: {seen}; "
        f"this process's SIGINT handler and blocked signals: {worker}"
    )
