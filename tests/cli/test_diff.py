"""`ipguard diff` between a run of the whole site and a run of part of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
        assert (out.exit_code, out.stderr) == (0, "")  # complete runs of one site: no warning
        return json.loads(out.stdout)

    assert changes()["disappeared"] == []
    assert cli(*scan).exit_code == 1  # the whole /16 again: the second host is gone
    assert changes("2", "3")["disappeared"] == []  # run 2 did not look for it
    assert changes("1", "3")["disappeared"] == [{"ip": SECOND[0], "mac": SECOND[1]}]


def test_named_runs_that_are_not_comparable_are_said_to_be(cli: Cli, db_url: str) -> None:
    # `ipguard diff 7 9` with run 7 aborted half-way through its sweep listed every host it had
    # not reached yet as appeared in run 9, without a word about run 7.
    from datetime import UTC, datetime, timedelta

    from ipguard.ledger.store import Store
    from ipguard.model import RunStatus
    from tests.reports.history import add_run

    store = Store(db_url)
    start = datetime.now(UTC) - timedelta(hours=3)
    add_run(store, start, hosts=1, status=RunStatus.ABORTED)
    add_run(store, start + timedelta(hours=1), hosts=3)
    add_run(store, start + timedelta(hours=2), hosts=3, site="north")
    store.close()
    out = cli("diff", "1", "2", "--format", "json")
    assert out.exit_code == 0, out.stderr
    assert out.stderr == (
        "warning: run 1 is aborted, not complete: it saw only part of what it would have, and "
        "what it missed shows as changes\n"
    )
    other = cli("diff", "2", "3", "--format", "json")
    assert other.stderr == (
        "warning: runs 2 and 3 are of different sites (lab, north): their hosts are different "
        "networks'\n"
    )
    assert cli("diff", "2", "2").exit_code == 2  # the same run twice is still an error


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_watchers_run_is_said_to_be_one(cli: Cli, sqlite_url: str) -> None:
    # `ipguard diff 1 2` with run 2 a stopped watcher's (complete, kind watch): every host that
    # stayed quiet while it listened "disappeared", without a word.
    from datetime import UTC, datetime, timedelta

    from ipguard.ledger import runs, watching
    from ipguard.ledger.store import Store
    from ipguard.model import RunStatus
    from tests.reports.history import SUBNET, add_run, everything_seen

    store = Store(sqlite_url)
    start = datetime.now(UTC) - timedelta(hours=3)
    add_run(store, start, hosts=3)
    with store.session() as session:
        run, _ = watching.start(
            session, site="lab", now=start + timedelta(hours=1), interface="eth0",
            subnets=[SUBNET], settings={}, actor="tester", sensor="test", version="0",
        )  # fmt: skip
        assert run.id is not None
        heard = everything_seen(start + timedelta(hours=1), hosts=1)
        counts = runs.store_results(session, run.id, heard, sighted=True)
        watching.stop(session, run.id, counts, start + timedelta(hours=2))
        assert run.status == RunStatus.COMPLETE.value
    store.close()
    out = cli("diff", "1", "2", "--format", "json", db=sqlite_url)
    assert out.exit_code == 0, out.stderr
    assert len(json.loads(out.stdout)["disappeared"]) == 2
    assert out.stderr == (
        "warning: run 2 is a watcher's, not a scan: it heard only the hosts that spoke while it "
        "listened, and the others show as changes\n"
    )
