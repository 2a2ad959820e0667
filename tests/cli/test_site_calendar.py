"""`[policy] timezone` is read from each machine's configuration: the sensors of one site that
judge days in different zones are told so by the scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fakes import FakeScanner, result

SCAN = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/24"]\nsite = "north"\n'


def test_a_sensor_judging_the_sites_days_in_another_zone_is_warned(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The site's sensor in Shanghai was replaced by a server whose clock is UTC (the usual for a
    # server), `[policy] timezone` left at "" (this machine's zone): from then on every guest
    # expired at 08:00 instead of midnight, and acknowledgements ended 8 hours late, without a word.
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    monkeypatch.setenv("TZ", "UTC")
    cli = Cli(sqlite_url)
    cli.scanner = FakeScanner([result(("198.18.0.10", "02:00:00:00:00:10"))])
    shanghai, machine = tmp_path / "shanghai.toml", tmp_path / "machine.toml"
    shanghai.write_text(SCAN + '[policy]\ntimezone = "Asia/Shanghai"\n')
    machine.write_text(SCAN + '[policy]\ntimezone = ""\n')

    def scan(config: Path) -> str:
        done = cli("--config", str(config), "scan", "--quiet", "--no-services")
        assert done.exit_code == 1, done.stderr  # the unregistered host
        return done.stderr

    assert scan(shanghai) == "" and scan(shanghai) == ""
    warned = scan(machine)
    assert warned.startswith("warning: run 3 judged days in UTC, the site's run 2 (sensor ")
    assert "in Asia/Shanghai" in warned and "same [policy] timezone" in warned
    assert scan(machine) == ""  # said once: the site's last scan is this zone's now
    shown = cli("runs", "show", "4", "--format", "json")
    assert '"timezone": "UTC"' in shown.stdout
