"""ipguard run by one user on what belongs to another: root's hand scan on the cron user's ledger,
an ordinary user naming someone else's crontab."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # one `nobody` may run (this venv's is root's)
CONFIG = '[scan]\ninterface = "eth0"\nsubnets = ["198.18.0.0/16"]\nsite = "lab"\n'


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory of nobody's with its configuration, for its ledger."""
    if os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or shutil.which("runuser") is None:
        pytest.skip("needs root, runuser and a system python3.11")
    root = Path(tempfile.mkdtemp(prefix="ipg-lockowner-"))
    try:
        root.chmod(0o755)
        home = root / "home"
        home.mkdir()
        (home / "ipguard.toml").write_text(CONFIG)
        shutil.chown(home, "nobody", "nogroup")
        yield home
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_scan_by_hand_as_root_leaves_the_users_cron_scans_working(home: Path) -> None:
    # `sudo ipguard --db /var/lib/ipguard/ledger.db scan` made the site's lock file root's
    # (mode 600): every later cron scan as the ipguard user failed, exit 3, "cannot open the
    # scan lock: Permission denied; the ledger's directory … must be writable" (it was).
    deps = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{deps}:{REPO}",
        "IPGUARD_ACTOR": "cron",
        "HOME": str(home),
    }
    ledger = ["--db", str(home / "ledger.db"), "--config", str(home / "ipguard.toml")]

    def scan(python: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
        argv = [*prefix, str(python), "-m", "tests.hardening.fake_cli", "--hosts", "3", "--"]
        argv += [*ledger, "scan", "--quiet"]
        return subprocess.run(
            argv, capture_output=True, text=True, env=environment, cwd=REPO, timeout=120
        )

    as_nobody = (shutil.which("runuser") or "runuser", "-u", "nobody", "--")
    # Root makes the ledger (an import before the user's first scan): it becomes nobody's, whose
    # directory it is in; it was root's, and every scan as nobody failed on a read-only ledger.
    made = subprocess.run(
        [sys.executable, "-m", "tests.hardening.fake_cli", "--", *ledger, "ledger", "list"],
        capture_output=True, text=True, env=environment, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        if (home / name).exists():
            assert (home / name).stat().st_uid == home.stat().st_uid, name
    by_hand = scan(Path(sys.executable))  # root, the first scan of the site
    assert by_hand.returncode == 1, by_hand.stderr
    (lock,) = home.glob("ledger.db.scan-*.lock")
    assert (lock.stat().st_uid, lock.stat().st_mode & 0o777) == (home.stat().st_uid, 0o600)
    again = scan(SYSTEM_PYTHON, *as_nobody)
    assert again.returncode == 1, again.stderr

    # A lock file left by an older ipguard is named with its owner and what to do.
    shutil.chown(lock, "root", "root")
    refused = scan(SYSTEM_PYTHON, *as_nobody)
    assert refused.returncode == 3
    assert refused.stderr == (
        f"error: cannot open the scan lock {lock}: it belongs to root, not to the user scanning "
        "(an ipguard run by hand as another user made it); remove it, or give it to the "
        "ledger's owner with chown\n"
    )


def test_another_users_crontab_without_root_is_bad_input(home: Path) -> None:
    # `ipguard cron remove --user root` as an ordinary user was exit 3, "crontab -l: must be
    # privileged to use -u": a machine failure, for what is a usage error.
    if shutil.which("crontab") is None:
        pytest.skip("needs crontab")
    deps = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{deps}:{REPO}", "HOME": str(home)}
    as_nobody = [shutil.which("runuser") or "runuser", "-u", "nobody", "--"]
    code = "import sys; from ipguard.cli.main import run; sys.argv[0] = 'ipguard'; run()"
    done = subprocess.run(
        [*as_nobody, str(SYSTEM_PYTHON), "-c", code, "cron", "remove", "--user", "root"],
        capture_output=True, text=True, env=environment, cwd=home, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        2,
        "error: --user root: only root may change another user's crontab; run it with sudo, "
        "or as root without --user\n",
    )
