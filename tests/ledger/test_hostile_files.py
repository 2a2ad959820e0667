"""Ledger files as administrators really hand them over: what spreadsheets and scripts do to values.

Each refusal is one `error:` line naming the file, the line (item, row or cell), the field and the
value, exit 2, and the ledger unchanged; what every administrator would read one way is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ledger.test_import_export import ledger_json

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BASE = '"ip": "10.0.0.1", "mac": "02:00:00:00:00:01"'


def refused_unchanged(cli: Cli, path: Path, *messages: str) -> None:
    """The import of `path` is refused with one error line holding `messages`; nothing changed."""
    before = ledger_json(cli)
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"error: {path}: "), result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr
    assert ledger_json(cli) == before


# --- JSON: what a script or a hand-edited file puts where a value belongs ------------------------

JSON_REFUSED = {
    "null in the ipv6 list": ('"ipv6": [null]', "item 1, ipv6: list entry 1 is null"),
    "null after an address": (
        '"ipv6": ["2001:db8::1", null]',
        "item 1, ipv6: list entry 2 is null",
    ),
    "empty text in the ipv6 list": ('"ipv6": ["2001:db8::1", ""]', "list entry 2 is empty"),
    "number in the ipv6 list": ('"ipv6": [2001]', "list entry 1 is a number"),
    "null in roles": ('"roles": ["server", null]', "item 1, roles: list entry 2 is null"),
    "true in services": ('"allowed_services": [true]', "list entry 1 is true/false"),
    "a list for the owner": ('"owner": ["Li", "Wang"]', "item 1, owner: a list where one value"),
    "a list for the MAC": (
        '"ip": "10.0.0.2", "mac": ["02:00:00:00:00:02"]',
        "item 1, mac: a list where one value",
    ),
    "a list for isolated": ('"isolated": [true]', "item 1, isolated: a list where one value"),
    "keys differing in case": ('"MAC": "02:00:00:00:00:02"', "item 1, mac: the key appears twice"),
    "keys differing in spaces": ('"owner": "a", " Owner ": "b"', "owner: the key appears twice"),
    "a float that lost its digits": (
        '"asset_tag": 123456789012345678901234567890.0',
        "item 1, asset_tag: the number 123456789012345678901234567890.0 cannot be kept exactly",
    ),
    "a fraction that lost its digits": (
        '"notes": 0.12345678901234567890123',
        "notes: the number 0.12345678901234567890123 cannot be kept exactly",
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("case", JSON_REFUSED)
def test_json_values_that_would_be_guessed_are_refused(cli: Cli, tmp_path: Path, case: str) -> None:
    extra, message = JSON_REFUSED[case]
    body = extra if extra.startswith('"ip"') else f"{BASE}, {extra}"
    path = tmp_path / "in.json"
    path.write_text(f"[{{{body}}}]")
    refused_unchanged(cli, path, message)


@SQLITE_ONLY
def test_json_values_read_one_way_are_taken(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    item = {
        "ip": "10.0.0.1",
        "mac": "02:00:00:00:00:01",
        "ipv6": ["2001:db8::1", "fd00::1"],
        "roles": ["server", "printer"],
        "allowed_services": [],
        "asset_tag": 12.0,
        "location": 1e3,
        "notes": 0.1,
        "owner": None,
        "isolated": True,
    }
    path.write_text(json.dumps([item]))
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 0, result.stderr
    (record,) = ledger_json(cli)
    assert record["ipv6"] == "2001:db8::1;fd00::1"
    assert (record["roles"], record["allowed_services"]) == ("printer;server", "")
    assert (record["asset_tag"], record["location"], record["notes"]) == ("12", "1000", "0.1")
    assert (record["owner"], record["isolated"]) == ("", "true")
