"""`ipguard watch` keeps working: ledger edits, SIGHUP, a lost interface, a ledger that goes down.

The ledger is a PostgreSQL cluster of the test's own, on a Unix socket the lab's namespaces reach,
so that it can really go down and come back while the watcher runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.helpers import Cluster, env, own_cluster
from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.watch.lab import IPGUARD, WATCH_CONFIG, watch_scenario

needs_lab = requires_lab("arping")
NEWCOMER_MAC = "00:16:3e:00:00:91"
PC = "198.18.0.20"  # math-pc01, registered
DEADLINE = 30.0  # the watcher polls every 5 s and must notice within 10 s; the rest is load


class Sensor:
    """A watcher in the scanner namespace writing to a PostgreSQL ledger that may go away."""

    def __init__(self, lab: Lab, files: Path, cluster: Cluster) -> None:
        self.lab, self.files, self.cluster = lab, files, cluster
        self.process: subprocess.Popen[str] | None = None
        self.started = 0

    def argv(self, *args: str) -> list[str]:
        config = str(self.files / "ipguard.toml")
        return [IPGUARD, "--db", self.cluster.url(), "--config", config, *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=120, env=env(self.files)
        )

    def start(self) -> None:
        self.started += 1
        # Standard error goes to a file the test reads while the watcher runs (what it noticed).
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                netns.exec_argv(self.lab.scanner_ns, self.argv("watch")),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                env=env(self.files),
            )

    @property
    def stderr_path(self) -> Path:
        return self.files / f"watch-{self.started}.stderr"

    def stderr(self) -> str:
        """What the latest watcher has written to standard error so far."""
        return self.stderr_path.read_text()

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and the whole standard error."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return self.process.returncode, self.stderr()

    def until_said(self, text: str) -> None:
        """Wait until the watcher writes `text` to standard error (DEADLINE)."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if text in self.stderr():
                return
            time.sleep(0.2)
        raise AssertionError(f"the watcher did not say {text!r}; it said:\n{self.stderr()}")

    def spooled(self) -> list[Path]:
        return sorted((self.files / "state").glob("ipguard/spool/*/watch-*.json"))

    def findings(self) -> list[dict]:
        done = self.cli("findings", "list", "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["findings"]

    def claim(self, ip: str) -> None:
        """The newcomer announces `ip` with one gratuitous ARP."""
        argv = ["arping", "-U", "-c", "1", "-i", "eth0", "-S", ip, ip]
        self.lab.run("newcomer", argv, check=False)

    def until_found(self, kind: str, ip: str, *, claim: bool = True) -> dict:
        """Claim `ip` once a second until the finding is visible (DEADLINE)."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if claim:
                self.claim(ip)
            found = [f for f in self.findings() if f["kind"] == kind and f["ip"] == ip]
            if found:
                return found[0]
            time.sleep(1.0)
        raise AssertionError(f"no {kind} for {ip} within {DEADLINE} s; stderr:\n{self.stderr()}")


@pytest.fixture
def sensor(lab_factory: LabFactory, tmp_path: Path) -> Iterator[Sensor]:
    lab = lab_factory(watch_scenario())
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    (tmp_path / "ipguard.toml").write_text(WATCH_CONFIG.format(subnet=lab.subnet))
    with own_cluster(5447) as cluster:
        sensor = Sensor(lab, tmp_path, cluster)
        done = sensor.cli("ledger", "import", str(tmp_path / "ledger.csv"))
        assert done.returncode == 0, done.stderr
        sensor.start()
        try:
            yield sensor
        finally:
            if sensor.process is not None and sensor.process.poll() is None:
                sensor.process.kill()
                sensor.process.wait(timeout=30)
            # pytest shows what a test printed only when it fails: then, every watcher's stderr.
            for started in range(1, sensor.started + 1):
                said = (tmp_path / f"watch-{started}.stderr").read_text()
                print(f"--- standard error of watcher {started} ---\n{said}")


@needs_lab
def test_watch_follows_the_ledger_its_config_a_lost_interface_and_a_ledger_outage(
    sensor: Sensor,
) -> None:
    lab, process = sensor.lab, sensor.process
    assert process is not None
    sensor.until_found("unregistered-host", "198.18.0.91")

    # A ledger edit, made while it runs, is what the next frames are judged against.
    added = sensor.cli("ledger", "add", "198.18.0.92", "00:16:3e:00:00:99", "--owner", "赵敏")
    assert added.returncode == 0, added.stderr
    mismatch = sensor.until_found("ip-mac-mismatch", "198.18.0.92")
    assert (mismatch["mac"], mismatch["severity"]) == (NEWCOMER_MAC, "high")

    # SIGHUP: the configuration is read again (a severity override here).
    config = sensor.files / "ipguard.toml"
    config.write_text(config.read_text() + '[policy.severity]\n"ip-mac-mismatch" = "medium"\n')
    process.send_signal(signal.SIGHUP)
    assert sensor.cli("ledger", "add", "198.18.0.93", "00:16:3e:00:00:98").returncode == 0
    assert sensor.until_found("ip-mac-mismatch", "198.18.0.93")["severity"] == "medium"

    # The interface goes down, then disappears (renamed away) and comes back.
    lab.run("scanner", ["ip", "link", "set", "eth0", "down"])
    # Noticed at its next check ("interface eth0 is down") or read ("… Network is down").
    sensor.until_said("is down; watching waits for it")
    lab.run("scanner", ["ip", "link", "set", "eth0", "name", "gone0"])
    time.sleep(3)  # a few of its once-a-second attempts to listen again find no eth0 at all
    lab.run("scanner", ["ip", "link", "set", "gone0", "name", "eth0"])
    lab.run("scanner", ["ip", "link", "set", "eth0", "up"])
    sensor.until_found("unregistered-host", "198.18.0.94")
    assert process.poll() is None, "the watcher exited when its interface went away"

    # The ledger goes down: what is seen meanwhile is stored when it comes back.
    sensor.cluster.stop()
    # A reload meanwhile (logrotate, `systemctl reload`) cannot read the ledger: the snapshot
    # it has stays in force, so the registered PC announcing itself is no newcomer.
    process.send_signal(signal.SIGHUP)
    sensor.until_said("configuration reloaded; the ledger is unavailable, its last snapshot")
    lab.run("math-pc01", ["arping", "-U", "-c", "1", "-i", "eth0", PC], check=False)
    for _ in range(3):
        sensor.claim("198.18.0.95")
        time.sleep(1.0)
    assert process.poll() is None, "the watcher exited when the ledger went down"
    sensor.cluster.start()
    sensor.until_found("unregistered-host", "198.18.0.95", claim=False)
    assert not [f for f in sensor.findings() if f["ip"] == PC], "the PC judged without a ledger"

    code, err = sensor.stop()
    assert code == 0, err
    assert "is down; watching waits for it" in err
    assert "listening on eth0 again" in err
    assert "unavailable" in err and "the ledger answers again" in err
    run = json.loads(sensor.cli("runs", "show", "1", "--format", "json").stdout)
    assert run["run"]["status"] == "complete"
    assert run["counts"]["interface_lost"] >= 1


@needs_lab
def test_what_a_watcher_saw_while_the_ledger_was_down_survives_its_kill(sensor: Sensor) -> None:
    process = sensor.process
    assert process is not None
    sensor.until_found("unregistered-host", "198.18.0.91")
    sensor.cluster.stop()
    for _ in range(3):
        sensor.claim("198.18.0.96")
        time.sleep(1.0)
    assert sensor.spooled(), "nothing was spooled while the ledger was down"
    process.kill()
    process.wait(timeout=30)
    sensor.cluster.start()
    sensor.start()  # the next watcher stores the spooled batches before anything else
    sensor.until_found("unregistered-host", "198.18.0.96", claim=False)
    assert sensor.spooled() == []
    code, err = sensor.stop()
    assert code == 0, err
