"""Many administrators and sensors on one ledger: concurrent `ledger edit` processes lose nothing.

Fifty real `ipguard ledger edit` processes run at once, half of them on one record and half on
records of their own. Every edit must be applied and audited, and the audit trail of the shared
record must be one unbroken chain (each change's `before` is the previous change's `after`): a lost
update shows as an edit whose `before` is a state another edit had already replaced.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.ledger.store import Store
from ipguard.ledger.tables import AuditEntry

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
SHARED = ("198.18.0.10", "02:00:00:00:00:10")
EDITORS = 50
FIELDS = ("notes", "location", "owner", "hostname", "asset_tag")


def own(i: int) -> tuple[str, str]:
    """The record only editor `i` changes."""
    return f"198.18.1.{i}", f"02:00:00:00:01:{i:02x}"


def ipguard(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [IPGUARD, "--db", url, "--actor", "editor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def edits_of(url: str, ip: str) -> list[AuditEntry]:
    store = Store(url)
    with store.session(write=False) as session:
        query = sa.select(AuditEntry).where(
            AuditEntry.key == ip, AuditEntry.action == "device.edit"
        )
        rows = list(session.scalars(query.order_by(AuditEntry.id)))
    store.close()
    return rows


@pytest.mark.slow
def test_fifty_concurrent_edits_lose_nothing(db_url: str, tmp_path: Path) -> None:
    shared_half = EDITORS // 2
    ledger = tmp_path / "ledger.csv"
    lines = ["ip,mac,owner", f"{SHARED[0]},{SHARED[1]},nobody"]
    lines += [f"{ip},{mac}," for ip, mac in map(own, range(shared_half, EDITORS))]
    ledger.write_text("\n".join(lines) + "\n")
    setup = ipguard(db_url, "ledger", "import", str(ledger))
    assert setup.communicate(timeout=60) and setup.returncode == 0

    editors = []
    for i in range(EDITORS):
        if i < shared_half:  # each sets one field of the shared record to a value of its own
            field = FIELDS[i % len(FIELDS)]
            change = (SHARED[0], f"--{field.replace('_', '-')}", f"{field}-{i}")
        else:
            change = (own(i)[0], "--owner", f"owner-{i}")
        editors.append(ipguard(db_url, "ledger", "edit", *change))
    errors = [process.communicate(timeout=300)[1] for process in editors]
    outcomes = list(zip([process.returncode for process in editors], errors, strict=True))
    assert [code for code, _ in outcomes] == [0] * EDITORS, [err for code, err in outcomes if code]

    chain = edits_of(db_url, SHARED[0])
    assert len(chain) == shared_half
    assert chain[0].before is not None and chain[0].before["owner"] == "nobody"
    for earlier, later in itertools.pairwise(chain):
        assert later.before == earlier.after, "an edit started from a state already replaced"
    written = {f"{FIELDS[i % len(FIELDS)]}-{i}" for i in range(shared_half)}
    changed = set()
    for entry in chain:
        assert entry.before is not None and entry.after is not None
        changed |= {entry.after[name] for name in FIELDS if entry.after[name] != entry.before[name]}
    assert changed == written

    store = Store(db_url)
    with store.session(write=False) as session:
        columns = ", ".join(FIELDS)
        rows = {
            ip: tuple(values)
            for ip, *values in session.execute(sa.text(f"SELECT ip, {columns} FROM device"))
        }
    store.close()
    last = chain[-1].after
    assert last is not None
    assert rows[SHARED[0]] == tuple(last[name] for name in FIELDS)
    for i in range(shared_half, EDITORS):
        ip = own(i)[0]
        assert rows[ip][FIELDS.index("owner")] == f"owner-{i}"
        (entry,) = edits_of(db_url, ip)
        assert entry.before is not None and entry.after is not None
        assert (entry.before["owner"], entry.after["owner"]) == ("", f"owner-{i}")


@pytest.mark.slow
def test_one_address_claimed_at_once_by_ten_devices_goes_to_exactly_one(db_url: str) -> None:
    claimants = [
        ipguard(db_url, "ledger", "add", "198.18.0.99", f"02:00:00:00:02:{i:02x}")
        for i in range(10)
    ]
    errors = [process.communicate(timeout=300)[1] for process in claimants]
    codes = [process.returncode for process in claimants]
    assert sorted(codes) == [0] + [2] * 9, errors
    refused = [error for code, error in zip(codes, errors, strict=True) if code == 2]
    assert all(error.startswith("error: IP 198.18.0.99 ") for error in refused), refused
    store = Store(db_url)
    with store.session(write=False) as session:
        active = session.execute(sa.text("SELECT count(*) FROM device WHERE ip = '198.18.0.99'"))
        assert active.scalar() == 1
    store.close()
