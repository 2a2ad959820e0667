"""Issue 12, cases 11-19: input that crashed with a traceback, ran forever, or got a wrong answer.

Every case runs the CLI on a real ledger and expects one `error:` line with the exit code DESIGN
gives (2 input, 3 operational), and nothing changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_scan import STRANGER, config, fake, scan_json  # noqa: F401 (fixtures)
from tests.conftest import Cli
from tests.fakes import FakeScanner, result
from tests.ledger.test_import_export import ledger_json, row, write_csv

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HUGE = str(2**63)  # one past SQLite's and PostgreSQL's largest integer


def refused(outcome: object, message: str, code: int = 2) -> None:
    """One error line naming the problem, the exit code, and no traceback."""
    assert outcome.exit_code == code, outcome.stderr  # type: ignore[attr-defined]
    stderr: str = outcome.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("error: ") and message in stderr, stderr
    assert "Traceback" not in stderr


# --- 11, 12. nesting and huge numbers ------------------------------------------------------------


@SQLITE_ONLY
def test_deep_json_and_huge_numbers_are_input_errors(cli: Cli, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    refused(cli("ledger", "import", str(deep)), "nested too deeply")
    digits = tmp_path / "digits.json"
    digits.write_text(
        '[{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "asset_tag": %s}]' % ("9" * 5000)
    )
    refused(cli("ledger", "import", str(digits)), "item 1, asset_tag: a 5000-digit number")
    assert ledger_json(cli) == []


@SQLITE_ONLY
def test_deep_configuration_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    deep = tmp_path / "ipguard.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    refused(cli("--config", str(deep), "prune", "--dry-run"), "nested too deeply")


# --- 13, 14. dates and ids past what the machine can count ---------------------------------------


def test_far_dates_and_periods_are_answered_not_crashed(cli: Cli) -> None:
    done = cli("prune", "--older-than", "800000", "--dry-run")
    assert done.exit_code == 0, done.stderr
    done = cli("prune", "--older-than", "10" * 20, "--dry-run")
    assert done.exit_code == 0, done.stderr
    refused(cli("report", "--format", "json", "--until", "9999-12-31"), "give a date before 9999")
    refused(cli("report", "--format", "json", "--since", "9999-12-30"), "give a date before 9999")
    refused(cli("report", "--format", "json", "--month", "9999-12"), "give a month before 9999")


@pytest.mark.parametrize(
    "args",
    [
        ("findings", "show", HUGE),
        ("findings", "resolve", HUGE),
        ("findings", "ack", HUGE, "--note", "n"),
        ("runs", "show", HUGE),
        ("diff", HUGE, "1"),
    ],
)
def test_ids_past_64_bits_are_not_found(cli: Cli, args: tuple[str, ...]) -> None:
    refused(cli(*args), "no ")


def test_runs_list_takes_any_limit(cli: Cli) -> None:
    assert cli("runs", "list", "--limit", HUGE).exit_code == 0


# --- 15. a workbook that declares a huge sheet ----------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("last", "message"),
    [("XFD1048576", "cell XFD1048576 is right of the last column (C)"), ("C1048576", "")],
)
def test_declared_sheet_size_costs_nothing(
    cli: Cli, db_url: str, tmp_path: Path, last: str, message: str
) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ip", "mac", "owner"])
    sheet.append(["10.0.0.1", "02:00:00:00:00:01", "李伟"])
    if message:
        sheet[last] = "x"
    else:  # a styled, empty last row: what a formatted template leaves
        for column in "ABC":
            sheet[f"{column}1048576"].font = Font(bold=True)
    path = tmp_path / "wide.xlsx"
    workbook.save(path)
    assert path.stat().st_size < 20_000
    # A separate process with a time-out, so that a regression fails instead of hanging the run.
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("ipguard")),
            "--db",
            db_url,
            "ledger",
            "import",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if message:
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert ledger_json(cli) == []
    else:
        assert done.returncode == 0, done.stderr
        assert [r["owner"] for r in ledger_json(cli)] == ["李伟"]


# --- 16. every bad row ---------------------------------------------------------------------------


def test_every_bad_row_is_listed_and_all_go_to_the_errors_file(cli: Cli, tmp_path: Path) -> None:
    rows = [row(f"10.0.1.{n}", "bad") for n in range(1, 61)]
    errors = tmp_path / "errors.txt"
    outcome = cli(
        "ledger", "import", str(write_csv(tmp_path / "in.csv", rows)), "--errors", str(errors)
    )
    refused(outcome, "60 bad rows, listed below; nothing was imported")
    lines = outcome.stderr.splitlines()
    assert lines[1] == "  line 2, mac 'bad': not a MAC address (like aa:bb:cc:dd:ee:ff)"
    assert len(lines) == 1 + 50 + 1 and "10 more" in lines[-1]
    written = errors.read_text().splitlines()
    assert written == [
        f"line {n}, mac 'bad': not a MAC address (like aa:bb:cc:dd:ee:ff)" for n in range(2, 62)
    ]
    assert ledger_json(cli) == []


@SQLITE_ONLY
def test_structural_problems_are_all_listed_too(cli: Cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "extra.csv"
    csv_file.write_text(
        "ip,mac\n10.0.0.1,02:00:00:00:00:01,x\n10.0.0.2,02:00:00:00:00:02\n10.0.0.3,zz,y\n"
    )
    outcome = cli("ledger", "import", str(csv_file))
    refused(outcome, "2 bad rows")
    assert "line 2: 3 cells but 2 columns" in outcome.stderr
    assert "line 4: 3 cells but 2 columns" in outcome.stderr
    items = tmp_path / "items.json"
    items.write_text(
        json.dumps([1, {"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "colour": "red"}, "x"])
    )
    outcome = cli("ledger", "import", str(items))
    refused(outcome, "3 bad rows")
    assert "item 1: is int, not an object" in outcome.stderr
    assert "item 2, colour: unknown key" in outcome.stderr
    assert "item 3: is text, not an object" in outcome.stderr


# --- 17. silently accepted input ------------------------------------------------------------------


def test_list_refuses_an_unknown_status(cli: Cli) -> None:
    refused(
        cli("ledger", "list", "--status", "nope"), "status must be active, suspended or retired"
    )
    assert cli("ledger", "list", "--status", "Retired").exit_code == 0


@pytest.mark.parametrize("day", ["2026-01-01Tgarbage", "2026-01-01 junk", "20260101x"])
def test_guest_until_must_be_a_date(cli: Cli, day: str) -> None:
    refused(
        cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--guest-until", day), "not a date"
    )
    assert ledger_json(cli) == []


def test_ack_until_a_past_day_and_unclean_notes_are_refused(
    cli: Cli,
    config: Path,  # noqa: F811 (the fixture)
    fake: FakeScanner,  # noqa: F811
) -> None:
    fake.results = [result(STRANGER)]
    _, first = scan_json(cli, config)
    finding = str(first["findings"][0]["id"])
    refused(cli("findings", "ack", finding, "--note", "n", "--until", "2000-01-01"), "after today")
    refused(cli("findings", "ack", finding, "--note", "x" * 4001), "longer than 4000")
    refused(cli("findings", "ack", finding, "--note", "ok\x1b[31m"), "control characters")
    assert cli("findings", "ack", finding, "--note", "x" * 4000).exit_code == 0


@pytest.mark.parametrize(
    ("actor", "message"),
    [
        ("a" * 201, "longer than 200"),
        ("evil\x1b[31m", "control characters"),
        ("two\nlines", "one line"),
        ("\u202eroot", "bidi"),
    ],
)
def test_audit_actor_follows_the_text_rules(cli: Cli, actor: str, message: str) -> None:
    outcome = cli("--actor", actor, "ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    refused(outcome, message.replace("bidi", "bidirectional"))
    assert ledger_json(cli) == []


@SQLITE_ONLY
def test_empty_config_option_is_an_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ipguard.toml").write_text('[scan]\nsubnets = ["198.18.0.0/24"]\n')
    refused(cli("--config", "", "cron", "install"), "--config is empty")


# --- 18. regular-expression quantifiers in hostname_rule ---------------------------------------


def test_hostname_rule_takes_quantifiers_and_escaped_braces(tmp_path: Path) -> None:
    from ipguard.config import parse_settings
    from ipguard.errors import ConfigError

    for rule in ("^lab-[0-9]{3}$", "^{department}-[a-z]{2,8}$", r"^\{owner\}-{owner}$"):
        assert parse_settings({"policy": {"hostname_rule": rule}}).policy.hostname_rule == rule
    with pytest.raises(ConfigError, match=r"unknown placeholder \{ownr\}"):
        parse_settings({"policy": {"hostname_rule": "^{ownr}$"}})


def test_quantified_hostname_rule_judges_names() -> None:
    from ipguard.policies.naming import HostnameRule

    rule = HostnameRule("^lab-[0-9]{3}$")
    assert rule.fields == ()
    assert rule.accepts("lab-042", ()) and not rule.accepts("lab-42", ())


# --- 19. database URLs and secrets ---------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@127.0.0.1/x", "'mysql' is not supported"),
        ("foo://u:secret@127.0.0.1/x", "not"),
        ("postgresql://u:secret@127.0.0.1:1/x?sslmode=bogus", "sslmode='bogus' is not one of"),
    ],
)
def test_unsupported_database_urls_are_bad_input(cli: Cli, url: str, message: str) -> None:
    outcome = cli("ledger", "list", db=url)
    refused(outcome, message)
    assert "secret" not in outcome.stderr


@SQLITE_ONLY
def test_a_raw_at_sign_in_the_password_shows_no_userinfo(cli: Cli) -> None:
    outcome = cli("ledger", "list", db="postgresql://admin:pass@word@127.0.0.1:1/x")
    refused(outcome, "postgresql://***@127.0.0.1:1/x: the user name or password holds a raw '@'")
    for part in ("admin", "pass@", "word@"):
        assert part not in outcome.stderr


def test_imported_rows_still_round_trip(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv", [row("10.0.0.1", "02:00:00:00:00:01", owner="M\u00fcller")]
    )
    assert cli("ledger", "import", str(path)).exit_code == 0
    assert ledger_json(cli)[0]["owner"] == "Müller"
