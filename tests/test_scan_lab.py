"""The main job on the lab: a real scan finds exactly what was planted; a second sees changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenarios import demo

needs_lab = requires_lab("nmap", "tinyproxy", "dnsmasq", "socat")
IPGUARD = str(Path(sys.executable).with_name("ipguard"))

Finding = tuple[str, str, str | None, str | None]


def ipguard(
    lab: Lab, files: Path, *args: str, in_lab: bool = False
) -> subprocess.CompletedProcess[str]:
    argv = [
        IPGUARD,
        "--db",
        str(files / "ledger.db"),
        "--config",
        str(files / "ipguard.toml"),
        *args,
    ]
    if in_lab:
        argv = ["ip", "netns", "exec", lab.scanner_ns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def expected(lab: Lab) -> set[Finding]:
    return {
        (kind, ip, mac, f"tcp/{port}" if port is not None else None)
        for kind, ip, mac, port in lab.expected_findings()
    }


def scan(lab: Lab, files: Path, code: int) -> dict:
    """One scan in the lab, which must exit with `code`; its JSON document."""
    done = ipguard(lab, files, "scan", "--format", "json", in_lab=True)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def found(document: dict) -> set[Finding]:
    return {(f["kind"], f["ip"], f["mac"], f["port"]) for f in document["findings"]}


@pytest.fixture(scope="module")
def lab_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scanlab")


@needs_lab
def test_demo_scan_finds_the_planted_findings_and_a_second_scan_sees_the_changes(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = lab_factory(demo())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    imported = ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv"))
    assert imported.returncode == 0, imported.stderr

    first = scan(lab, tmp_path, 1)
    assert first["run"]["status"] == "complete"
    assert found(first) == expected(lab)
    first_ids = {(f["kind"], f["ip"], f["port"]): f["id"] for f in first["findings"]}

    # The lab changes: a host moves, a service stops, the thief leaves.
    lab.move_host("math-pc10")
    lab.stop_service("math-pc05", 23)
    thief = lab.host("thief")
    lab.remove_host("thief")
    second = scan(lab, tmp_path, 1)  # the rogue DHCP server and the proxy are still there
    assert found(second) == expected(lab)
    # What stayed is the same finding (same id), not a new one.
    for f in second["findings"]:
        key = (f["kind"], f["ip"], f["port"])
        if key in first_ids:
            assert f["id"] == first_ids[key]

    resolved = json.loads(
        ipguard(lab, tmp_path, "findings", "list", "--state", "resolved", "--format", "json").stdout
    )
    gone = {(f["kind"], f["ip"], f["port"]) for f in resolved["findings"]}
    assert ("ip-mac-mismatch", thief.ip, None) in gone
    assert ("unexpected-service", lab.host("math-pc05").ip, "tcp/23") in gone

    changes = json.loads(ipguard(lab, tmp_path, "diff", "--format", "json").stdout)
    moved = lab.host("math-pc10")
    assert {"mac": moved.mac, "from": ["198.18.0.46"], "to": [moved.ip]} in changes["ip_changed"]
    assert {"ip": thief.ip, "mac": thief.mac} in changes["disappeared"]
    assert any(
        c["ip"] == lab.host("math-pc05").ip and c["port"] == "tcp/23"
        for c in changes["services_closed"]
    )


@needs_lab
def test_incremental_service_scan_skips_unchanged_hosts(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    from tests.lab.scenarios import small

    lab = lab_factory(small())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    lab.write_config(tmp_path / "ipguard.toml")
    assert ipguard(lab, tmp_path, "ledger", "import", str(tmp_path / "ledger.csv")).returncode == 0

    def counts(run_id: int) -> dict:
        shown = ipguard(lab, tmp_path, "runs", "show", str(run_id), "--format", "json")
        return json.loads(shown.stdout)["counts"]

    # Exit 1 each time: the visitor is an unregistered host, a high finding.
    first = scan(lab, tmp_path, 1)
    second = scan(lab, tmp_path, 1)
    assert (counts(1)["service_mode"], counts(1)["services_rescanned"]) == ("full", 3)
    assert (counts(2)["service_mode"], counts(2)["services_rescanned"]) == ("incremental", 0)
    assert found(second) == found(first) == expected(lab)
    assert counts(2)["services"] == counts(1)["services"]

    lab.stop_service("math-pc02", 80)  # one host's open ports change: only it is probed again
    scan(lab, tmp_path, 1)
    assert (counts(3)["service_mode"], counts(3)["services_rescanned"]) == ("incremental", 1)
    assert counts(3)["services"] == counts(1)["services"] - 1
    done = ipguard(lab, tmp_path, "scan", "--full", "--quiet", in_lab=True)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert counts(4)["service_mode"] == "full"
