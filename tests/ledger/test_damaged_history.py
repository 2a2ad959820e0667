"""A run's packed history that cannot be read back (a damaged row): the user is told which run,
in one line, and the site's scans go on."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.ledger import packing
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "lab"\n'
HOST = ("198.18.1.10", "02:00:00:00:01:10")
SSH = [(HOST[0], "tcp/22")]


@pytest.mark.parametrize(
    "damage",
    [b"garbage", packing.pack([{"ip": "198.18.1.10"}], ["ip"])[:-6]],
    ids=["overwritten", "truncated"],
)
def test_a_damaged_run_is_named_and_the_next_scan_runs_in_full(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    # One damaged run_records row (a bad sector, a restore gone wrong): `ipguard diff` and every
    # later cron scan (which reads the last run's services as its baseline) died on a zlib.error
    # traceback, for ever.
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    cli = Cli(sqlite_url)
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    cli.scanner = scanner = FakeScanner([result(HOST, services=SSH)])
    scan = ["--config", str(config), "scan", "--quiet"]
    assert cli(*scan).exit_code == 1 and cli(*scan).exit_code == 1
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        damaged = sa.text("UPDATE run_records SET data = :data WHERE run_id = 2")
        connection.execute(damaged, {"data": damage})
    engine.dispose()

    shown = cli("diff")
    assert shown.exit_code == 3 and shown.stdout == ""
    assert shown.stderr.startswith("error: run 2: what it saw (")
    assert "cannot be read back from the ledger" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1

    assert cli(*scan).exit_code == 1  # the baseline is unreadable: this scan's services are full
    assert scanner.requests[-1].known_services is None
    assert cli(*scan).exit_code == 1  # and the next one's baseline is that scan
    assert scanner.requests[-1].known_services is not None
