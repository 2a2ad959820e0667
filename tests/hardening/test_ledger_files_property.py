"""Issue 12's property: any generated ledger file imports whole and round-trips, or changes nothing.

Hypothesis writes CSV, XLSX and JSON files from random rows: good ones, and rows with one known-bad
field (hostile text included). Importing them into a real SQLite ledger that already holds a record
must either succeed, and then export → import into a fresh ledger gives the same ledger, or exit 2
with exactly the bad rows listed (`--errors FILE`) and the ledger unchanged. Never a traceback,
exit 1, or an import longer than 30 s.
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ipguard.cli.main import app

FIELDS = (
    "ip",
    "ipv6",
    "mac",
    "owner",
    "notes",
    "roles",
    "allowed_services",
    "status",
    "guest_until",
)
GOOD_TEXT = [
    "<script>alert(1)</script>",
    '=HYPERLINK("http://198.19.200.9","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "'quoted",
    "李伟",
    "Müller",
    "مرحبا",
    "",
]
# (field, value, formats that can hold the value at all)
BAD_VALUES = [
    ("ip", "10.0.0.256", "csv xlsx json"),
    ("ip", "::ffff:10.0.0.1", "csv xlsx json"),
    ("ip", "fe80::1%eth0", "csv xlsx json"),
    ("ip", "255.255.255.255", "csv xlsx json"),
    ("ipv6", "fe80::1", "csv xlsx json"),
    ("ipv6", "2001:db8::1%eth0", "csv xlsx json"),
    ("ipv6", "ff02::1", "csv xlsx json"),
    ("ipv6", "::ffff:10.0.0.1", "csv xlsx json"),
    ("ipv6", "10.0.0.1", "csv xlsx json"),
    ("ipv6", "2001:db8:9::1;2001:DB8:9:0::1", "csv xlsx json"),
    ("mac", "12345", "csv xlsx json"),
    ("mac", "01:00:5e:00:00:01", "csv xlsx json"),
    ("status", "nope", "csv xlsx json"),
    ("guest_until", "2026-01-01Tgarbage", "csv xlsx json"),
    ("roles", "wifi", "csv xlsx json"),
    ("allowed_services", "http", "csv xlsx json"),
    ("owner", "x" * 5000, "csv xlsx json"),
    ("notes", "\u202eevil\u202c", "csv xlsx json"),
    ("notes", "\x1b[31mred", "csv json"),  # XLSX cannot store control characters at all
    ("owner", "a\x00b", "json"),
]
CHECK = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_WHERE = re.compile(r"^(?:line|row|item) (\d+)")


@st.composite
def ledger_rows(draw: Any, fmt: str) -> list[tuple[dict[str, str], bool]]:
    """Rows with unique addresses; each good, or with one known-bad field (then True)."""
    count = draw(st.integers(min_value=0, max_value=12))
    rows = []
    for index in range(count):
        values = {
            "ip": f"10.1.{index // 200}.{index % 200 + 1}",
            "ipv6": draw(
                st.sampled_from(
                    [
                        "",
                        f"2001:db8:1::{index + 1:x}",
                        f"2001:DB8:1:0::{index + 1:x};fd00:1::1:{index}",
                    ]
                )
            ),
            "mac": f"02:00:00:00:{index // 256:02x}:{index % 256:02x}",
            "owner": draw(st.sampled_from(GOOD_TEXT)),
            "notes": draw(
                st.sampled_from(GOOD_TEXT)
                | st.text(st.characters(categories=("L", "N", "P", "Zs")), max_size=30)
            ),
            "roles": draw(st.sampled_from(["", "host", "server;printer"])),
            "allowed_services": draw(st.sampled_from(["", "tcp/22", "tcp/80;udp/161"])),
            "status": draw(st.sampled_from(["", "active", "suspended", "retired"])),
            "guest_until": draw(st.sampled_from(["", "2027-01-31"])),
        }
        bad = draw(st.booleans()) and draw(st.booleans())
        if bad:
            field, value, _formats = draw(st.sampled_from([b for b in BAD_VALUES if fmt in b[2]]))
            values[field] = value
        rows.append((values, bad))
    return rows


def write(path: Path, fmt: str, rows: list[dict[str, str]]) -> None:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(FIELDS)
        writer.writerows([[values[name] for name in FIELDS] for values in rows])
        path.write_bytes(buffer.getvalue().encode("utf-8"))
    elif fmt == "json":
        # Static IPv6 addresses as the list of strings an export writes.
        items = [{**values, "ipv6": [a for a in values["ipv6"].split(";") if a]} for values in rows]
        path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    else:
        from openpyxl import Workbook

        workbook = Workbook()
        workbook.active.append(FIELDS)
        for values in rows:
            workbook.active.append([values[name] for name in FIELDS])
        for cells in workbook.active.iter_rows():
            for cell in cells:
                cell.data_type = "s"  # text cells, as a careful spreadsheet user makes them
        workbook.save(path)


@contextmanager
def at_most(seconds: int) -> Iterator[None]:
    def hung(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"an import took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(db: Path, *args: str) -> Any:
    with at_most(30):
        outcome = CliRunner().invoke(app, ["--db", str(db), *args])
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), outcome.exception
    assert outcome.exit_code in (0, 2), outcome.stderr
    assert "Traceback" not in outcome.stderr
    return outcome


def ledger(db: Path) -> list[dict[str, str]]:
    listed = run(db, "ledger", "list", "--format", "json")
    rows = json.loads(listed.stdout)
    for item in rows:
        item.pop("updated_at")
    return sorted(rows, key=lambda item: (item["ip"], item["mac"]))


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
@CHECK
@given(data=st.data())
def test_import_is_whole_or_nothing_and_round_trips(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, fmt: str, data: Any
) -> None:
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    rows = data.draw(ledger_rows(fmt))
    where = tmp_path_factory.mktemp(fmt)
    db, file, errors = where / "a.db", where / f"in.{fmt}", where / "errors.txt"
    run(
        db,
        "ledger",
        "add",
        "10.9.9.9",
        "02:99:99:99:99:99",
        "--owner",
        "existing",
        "--ipv6",
        "fd00:9::9",
    )
    before = ledger(db)
    write(file, fmt, [values for values, _ in rows])

    outcome = run(db, "ledger", "import", str(file), "--errors", str(errors))

    first = 2 if fmt != "json" else 1  # the line, row or item of the first data row
    expected_bad = {index + first for index, (_, bad) in enumerate(rows) if bad}
    if outcome.exit_code == 2:
        assert outcome.stderr.startswith("error: ")
        listed = {int(m.group(1)) for m in map(_WHERE.match, errors.read_text().splitlines()) if m}
        assert listed == expected_bad
        assert ledger(db) == before
        return
    assert not expected_bad
    exported = where / f"out.{fmt}"
    run(db, "ledger", "export", str(exported))
    fresh = where / "b.db"
    run(fresh, "ledger", "import", str(exported))
    assert ledger(fresh) == ledger(db)
