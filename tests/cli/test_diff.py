"""`ipguard diff` between a run of the whole site and a run of part of it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli
from tests.fakes import FakeScanner, result

CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "lab"\n'
FIRST = ("198.18.1.10", "02:00:00:00:01:10")
SECOND = ("198.18.2.10", "02:00:00:00:02:10")


def test_a_run_of_part_of_the_site_does_not_make_the_rest_disappear(
    cli: Cli, tmp_path: Path
) -> None:
    # `ipguard scan --subnet 198.18.1.0/24` by hand after the cron scan of the /16: `diff` said
    # every host of the other /24s had disappeared, though nobody had looked for them.
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    cli.scanner = FakeScanner([result(FIRST, SECOND), result(FIRST), result(FIRST)])
    scan = ["--config", str(config), "scan", "--quiet", "--no-services"]
    assert cli(*scan).exit_code == 1  # two unregistered hosts
    assert cli(*scan, "--subnet", "198.18.1.0/24").exit_code == 1

    def changes(*runs: str) -> dict:
        out = cli("diff", *runs, "--format", "json")
        assert out.exit_code == 0, out.stderr
        return json.loads(out.stdout)

    assert changes()["disappeared"] == []
    assert cli(*scan).exit_code == 1  # the whole /16 again: the second host is gone
    assert changes("2", "3")["disappeared"] == []  # run 2 did not look for it
    assert changes("1", "3")["disappeared"] == [{"ip": SECOND[0], "mac": SECOND[1]}]
