"""Privilege and the link: nothing runs without the right, a half sweep decides nothing.

(That nothing is probed outside the subnets, whatever the network says: test_hostile_lab.)

- Without CAP_NET_RAW the scan says so, naming the capability; the least-privilege set-up the
  README documents (an unprivileged user, a copy of the interpreter with file capabilities)
  scans for real.
- The interface goes down in the middle of a sweep: the run fails cleanly (exit 3, status
  failed) and no finding is resolved or raised on the strength of a half sweep.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.helpers import REPO, env
from tests.hardening.labtools import config_text, ipguard
from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import small

# --- privilege -------------------------------------------------------------------------------


def scan_argv(lab: Lab, files: Path, python: str) -> list[str]:
    code = "import sys; from ipguard.cli.main import run; sys.argv[0] = 'ipguard'; run()"
    return [
        python,
        "-c",
        code,
        "--db",
        str(files / "ledger.db"),
        "--config",
        str(files / "ipguard.toml"),
        "scan",
        "--no-services",
    ]


@requires_lab()
def test_without_cap_net_raw_the_scan_says_what_it_needs(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    lab = lab_factory(small())
    (tmp_path / "ipguard.toml").write_text(config_text(lab, ports="tcp/22"))
    # Root, but stripped of every capability: what a service manager's sandbox may leave.
    drop = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]
    done = subprocess.run(
        netns.exec_argv(lab.scanner_ns, [*drop, *scan_argv(lab, tmp_path, sys.executable)]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env(tmp_path),
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ") and "CAP_NET_RAW" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def least_privilege(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The README's set-up: a venv with its own copy of the interpreter, given file capabilities,
    run by an unprivileged user (nobody) whose files live in a directory it owns."""
    system_python = Path("/usr/bin/python3.11")
    if not system_python.exists() or shutil.which("setcap") is None or os.geteuid() != 0:
        pytest.skip("needs root, setcap and a system python3.11 to copy")
    root = Path(tempfile.mkdtemp(prefix="ipg-leastpriv-"))
    try:
        root.chmod(0o755)
        venv = root / "venv"
        subprocess.run(
            [str(system_python), "-m", "venv", "--copies", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # The checkout and its dependencies, as `pip install` would have put them.
        site = next((venv / "lib").glob("python3*/site-packages"))
        deps = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        (site / "ipguard-checkout.pth").write_text(f"{deps}\n{REPO}\n")
        python = venv / "bin" / "python3"
        subprocess.run(
            ["setcap", "cap_net_raw,cap_net_admin+ep", str(python)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        home = root / "home"
        home.mkdir()
        shutil.chown(home, "nobody", "nogroup")
        yield python, home
    finally:
        shutil.rmtree(root, ignore_errors=True)


@requires_lab("nmap")
def test_the_documented_least_privilege_setup_scans(
    lab_factory: LabFactory, tmp_path: Path, least_privilege: tuple[Path, Path]
) -> None:
    python, home = least_privilege
    lab = lab_factory(small())
    (home / "ipguard.toml").write_text(config_text(lab, ports="tcp/80"))
    lab.write_ledger_csv(home / "ledger.csv")
    shutil.chown(home / "ipguard.toml", "nobody", "nogroup")
    as_nobody = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ]
    environment = {**env(home), "HOME": str(home)}
    environment.pop("PYTHONPATH")

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            netns.exec_argv(lab.scanner_ns, [*as_nobody, *argv]),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=home,
            env=environment,
        )

    code = "import sys; from ipguard.cli.main import run; sys.argv[0] = 'ipguard'; run()"
    base = [
        str(python),
        "-c",
        code,
        "--db",
        str(home / "ledger.db"),
        "--config",
        str(home / "ipguard.toml"),
    ]
    assert run([*base, "ledger", "import", str(home / "ledger.csv")]).returncode == 0
    done = run([*base, "scan", "--format", "json"])
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    found = {(f["kind"], f["ip"]) for f in document["findings"]}
    assert found == {(kind, ip) for kind, ip, _mac, _port in lab.expected_findings()}
    assert (home / "ledger.db").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    # Without the file capabilities the same user cannot sweep, and is told why.
    subprocess.run(["setcap", "-r", str(python)], check=True, capture_output=True, timeout=30)
    refused = run([*base, "scan"])
    assert refused.returncode == 3 and "CAP_NET_RAW" in refused.stderr


# --- the link goes down ----------------------------------------------------------------------


@requires_lab()
def test_the_interface_going_down_mid_sweep_fails_the_run_and_resolves_nothing(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = lab_factory(small())
    (tmp_path / "ipguard.toml").write_text(config_text(lab, ports="tcp/22;tcp/80"))
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0
    first = ipguard(lab, tmp_path, "scan", "--format", "json", "--no-services", in_lab=True)
    assert first.returncode == 1, first.stderr
    before = json.loads(first.stdout)["findings"]
    assert before

    argv = netns.exec_argv(
        lab.scanner_ns,
        [
            str(Path(sys.executable).with_name("ipguard")),
            "--db",
            str(tmp_path / "ledger.db"),
            "--config",
            str(tmp_path / "ipguard.toml"),
            "scan",
            "--rate",
            "50",
            "--no-services",
        ],
    )
    scan = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path),
    )
    try:
        time.sleep(2.5)  # 254 probes at 50 a second: the sweep is under way
        lab.run("scanner", ["ip", "link", "set", "eth0", "down"])
        out, err = scan.communicate(timeout=120)
    finally:
        if scan.poll() is None:
            scan.kill()
    assert scan.returncode == 3, (out, err)
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "went down" in line and "Traceback" not in err, err
    runs = json.loads(ipguard(lab, tmp_path, "runs", "list", "--format", "json").stdout)
    assert [run["status"] for run in reversed(runs)] == ["complete", "failed"]
    listed = ipguard(lab, tmp_path, "findings", "list", "--state", "resolved", "--format", "json")
    assert json.loads(listed.stdout)["findings"] == []
    after = json.loads(ipguard(lab, tmp_path, "findings", "list", "--format", "json").stdout)
    assert [(f["id"], f["last_seen"]) for f in after["findings"]] == [
        (f["id"], f["last_seen"]) for f in before
    ]
