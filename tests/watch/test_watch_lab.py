"""`ipguard watch` on the lab, against real tools: arpspoof, arping, udhcpc, arpwatch, dnsmasq.

The watcher runs in the scanner's namespace, as on a sensor; the attacks come from other hosts of
the lab. Findings are read the way an administrator reads them: `ipguard findings list --format
json`, while the watcher runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hardening.helpers import env
from tests.lab import netns
from tests.lab.builder import Lab
from tests.lab.fixtures import LabFactory, requires_lab
from tests.watch.lab import (
    IPGUARD,
    WATCH_CONFIG,
    arpwatch_events,
    as_hub,
    background,
    watch_scenario,
)

needs_lab = requires_lab("dnsmasq", "arpspoof", "arping", "udhcpc", "arpwatch")
GATEWAY, PC, ATTACKER, NEWCOMER, LAPTOP, ROGUE = (
    "198.18.0.1",
    "198.18.0.20",
    "198.18.0.66",
    "198.18.0.91",
    "198.18.0.95",
    "198.18.0.77",
)
DEADLINE = 15.0  # seconds; the latency itself is measured by bench/watch.py (target: < 1 s)


class Watching:
    """A watcher running in the lab's scanner namespace, and the ledger it writes."""

    def __init__(self, lab: Lab, files: Path) -> None:
        self.lab, self.files = lab, files
        self.process: subprocess.Popen[str] | None = None
        self.started = 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [IPGUARD, "--db", str(self.files / "ledger.db")]
        argv += ["--config", str(self.files / "ipguard.toml"), *args]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env=env(self.files), check=False
        )

    def start(self, **environment: str) -> None:
        """Start a watcher (`environment`: more variables for it, NOTIFY_SOCKET say)."""
        # A watcher killed with SIGKILL leaves its run "running" until the next one marks it
        # aborted: only a run that was not there before is this watcher's.
        before = self.run_ids()
        argv = [IPGUARD, "--db", str(self.files / "ledger.db")]
        argv += ["--config", str(self.files / "ipguard.toml"), "watch"]
        self.started += 1
        # Its output goes to a file, read whenever a wait fails: a pipe nobody reads while it
        # runs would also stop a talkative watcher once full.
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                netns.exec_argv(self.lab.scanner_ns, argv),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                env=env(self.files, **environment),
            )
        # Listening once its run is recorded (the capture opens first): `runs list` shows it.
        self.wait(
            lambda: self.running_run(besides=before) is not None, "the watch run to be recorded"
        )

    @property
    def stderr_path(self) -> Path:
        """Where the latest watcher writes its standard error (its start line, findings, stop)."""
        return self.files / f"watch-{self.started}.stderr"

    def stderr(self) -> str:
        """What the latest watcher has written to standard error so far."""
        return self.stderr_path.read_text() if self.started else ""

    def wait(self, condition: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
        """`wait_for`, failing with what the watcher wrote to standard error."""
        wait_for(condition, what, deadline, explain=self.stderr)

    def run_ids(self) -> set[int]:
        # A failed listing must not pass for "no runs yet": a killed watcher's run, still
        # "running", would then be taken for the new watcher's before it listens.
        done = self.cli("runs", "list", "--format", "json")
        assert done.returncode == 0, done.stderr
        return {run["id"] for run in json.loads(done.stdout)}

    def running_run(self, besides: frozenset[int] | set[int] = frozenset()) -> dict | None:
        done = self.cli("runs", "list", "--format", "json")
        if done.returncode != 0:
            return None
        runs = [
            run
            for run in json.loads(done.stdout)
            if run.get("status") == "running" and run["id"] not in besides
        ]
        return runs[0] if runs else None

    def findings(self) -> list[dict]:
        done = self.cli("findings", "list", "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["findings"]

    def finding(self, kind: str, ip: str, mac: str | None = None) -> dict:
        """Wait for the finding to be visible; fail after DEADLINE seconds."""
        found: list[dict] = []

        def visible() -> bool:
            found[:] = [
                f
                for f in self.findings()
                if f["kind"] == kind and f["ip"] == ip and (mac is None or f["mac"] == mac)
            ]
            return bool(found)

        self.wait(visible, f"{kind} {ip} {mac or ''}", deadline=DEADLINE)
        return found[0]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        return self.process.returncode, self.stderr()


def wait_for(
    condition: Callable[[], bool],
    what: str,
    deadline: float = 60.0,
    explain: Callable[[], str] | None = None,
) -> None:
    """Poll `condition` until it holds; fail after `deadline` s, with `explain()` when given."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    told = f"; the watcher's standard error:\n{explain()}" if explain is not None else ""
    raise AssertionError(f"timed out waiting for {what}{told}")


@pytest.fixture
def watching(lab_factory: LabFactory, tmp_path: Path) -> Iterator[Watching]:
    lab = lab_factory(watch_scenario())
    yield from watched(lab, tmp_path, WATCH_CONFIG.format(subnet=lab.subnet))


def watched(lab: Lab, tmp_path: Path, config: str) -> Iterator[Watching]:
    """A watcher's files (the lab's ledger imported, `config`); on the way out, no watcher left
    running and every watcher's standard error printed."""
    lab.write_ledger_csv(tmp_path / "ledger.csv")
    (tmp_path / "ipguard.toml").write_text(config)
    watching = Watching(lab, tmp_path)
    imported = watching.cli("ledger", "import", str(tmp_path / "ledger.csv"))
    assert imported.returncode == 0, imported.stderr
    try:
        yield watching
    finally:
        if watching.process is not None and watching.process.poll() is None:
            watching.process.kill()
            watching.process.wait(timeout=30)
        # pytest shows what a test printed only when it fails: then, every watcher's stderr.
        for started in range(1, watching.started + 1):
            said = (tmp_path / f"watch-{started}.stderr").read_text()
            print(f"--- standard error of watcher {started} ---\n{said}")


@needs_lab
def test_watch_sees_spoofing_newcomers_moves_and_rogue_dhcp_as_they_happen(
    watching: Watching,
) -> None:
    lab = watching.lab
    as_hub(lab)  # the scanner's port sees unicast frames too, as a mirror port does
    arpdat = lab.workdir / "arp.dat"
    arpdat.touch()
    arpwatch = ["arpwatch", "-d", "-p", "-i", "eth0", "-f", str(arpdat), "-n", lab.subnet]
    with background(lab, "scanner", arpwatch) as beside:
        watching.start()
        # The gateway speaks (its own ARP), then the attacker claims its address.
        lab.run("office-gw01", ["arping", "-q", "-c", "1", "-i", "eth0", PC], check=False)
        with background(lab, "attacker", ["arpspoof", "-i", "eth0", GATEWAY]):
            spoof = watching.finding("ip-mac-mismatch", GATEWAY, "02:66:00:00:00:66")
            assert spoof["severity"] == "critical"
            assert spoof["detail"]["escalation"] == "gateway-spoofing"
            assert spoof["detail"]["registered_mac"] == "02:18:00:00:00:01"
            # The real gateway answering too, within the duplicate window: arpwatch's flip flop.
            lab.run("office-gw01", ["arping", "-U", "-c", "2", "-i", "eth0", GATEWAY], check=False)
            flip = watching.finding("duplicate-ip", GATEWAY)
            assert flip["severity"] == "critical"
            assert set(flip["detail"]["macs"]) == {"02:18:00:00:00:01", "02:66:00:00:00:66"}

        # One gratuitous ARP from a host nobody registered.
        lab.run("newcomer", ["arping", "-U", "-c", "1", "-i", "eth0", NEWCOMER], check=False)
        newcomer = watching.finding("unregistered-host", NEWCOMER, "00:16:3e:00:00:91")
        assert newcomer["detail"]["randomized"] is False
        assert newcomer["detail"]["observed"][0]["sources"] == ["arp"]

        # An ARP probe (sender 0.0.0.0) for the registered PC's address, from another MAC.
        lab.run("newcomer", ["arping", "-0", "-c", "1", "-i", "eth0", PC], check=False)
        watching.finding("ip-mac-mismatch", PC, "00:16:3e:00:00:91")

        # The PC changes its MAC and announces itself.
        lab.run("math-pc01", ["ip", "link", "set", "eth0", "address", "02:99:00:00:00:20"])
        lab.run("math-pc01", ["arping", "-U", "-c", "1", "-i", "eth0", PC], check=False)
        moved = watching.finding("ip-mac-mismatch", PC, "02:99:00:00:00:20")
        assert moved["severity"] == "high"

        # A real DHCP client takes a lease from the rogue dnsmasq.
        client = ["udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", "/bin/true", "-t", "5"]
        client += ["-x", "hostname:laptop-95"]
        leased = lab.run("laptop", client, check=False, timeout=60)
        assert leased.returncode == 0, leased.stderr
        rogue = watching.finding("rogue-dhcp", ROGUE, "02:66:00:00:00:77")
        assert rogue["severity"] == "critical"
        # The laptop's DHCP fingerprint is shown with any finding about its MAC.
        lab.run("laptop", ["arping", "-U", "-c", "1", "-i", "eth0", LAPTOP], check=False)
        laptop = watching.finding("unregistered-host", LAPTOP, "00:16:3e:00:00:95")
        shown = json.loads(
            watching.cli("findings", "show", str(laptop["id"]), "--format", "json").stdout
        )
        (fingerprint,) = shown["dhcp_fingerprint"]
        assert fingerprint["hostname"] == "laptop-95"
        assert fingerprint["vendor_class"].startswith("udhcp")
        assert fingerprint["parameter_request_list"]  # udhcpc's own list, e.g. "1,3,6,12,15,28,42"
        table = watching.cli("findings", "show", str(laptop["id"])).stdout
        assert "DHCP fingerprint at site lab" in table and "laptop-95" in table
        beside.terminate()  # arpwatch -d prints its reports on standard output, flushed at exit
        report, _err = beside.communicate(timeout=30)
    events = arpwatch_events(report)
    code, err = watching.stop()
    assert code == 0, err

    # Whatever arpwatch reported, watch saw too: every pair in its sightings, every flip flop
    # and changed address as a finding.
    assert events, "arpwatch reported nothing"
    run = json.loads(watching.cli("runs", "show", "1", "--format", "json").stdout)
    assert run["run"]["status"] == "complete" and run["counts"]["frames_read"] > 0
    sighted = sightings(watching.files / "ledger.db")
    findings = {(f["kind"], f["ip"]) for f in watching.findings()}
    for event, ip, mac in events:
        if ip == lab.scanner_ip:
            continue  # the sensor's own frames: watch does not listen to what its host sends
        assert (ip, mac) in sighted, (event, ip, mac)
        if event in ("flip flop", "changed ethernet address"):
            assert ("duplicate-ip", ip) in findings or ("ip-mac-mismatch", ip) in findings


def sightings(database: Path) -> set[tuple[str, str]]:
    import sqlite3

    from ipguard.ledger import packing

    query = "SELECT data FROM run_records WHERE kind = 'observations'"
    with sqlite3.connect(database) as connection:
        packed = [data for (data,) in connection.execute(query)]
    seen = [record for data in packed for record in packing.unpack(data)]
    return {(record["ip"], record["mac"]) for record in seen if record["mac"] is not None}


@needs_lab
def test_watch_killed_and_restarted_reports_each_finding_once(watching: Watching) -> None:
    lab = watching.lab
    watching.start()
    lab.run("newcomer", ["arping", "-U", "-c", "1", "-i", "eth0", NEWCOMER], check=False)
    first = watching.finding("unregistered-host", NEWCOMER)
    code, _err = watching.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL

    watching.start()
    lab.run("newcomer", ["arping", "-U", "-c", "1", "-i", "eth0", NEWCOMER], check=False)
    watching.wait(
        lambda: watching.finding("unregistered-host", NEWCOMER)["last_seen"] != first["last_seen"],
        "the restarted watcher to see the newcomer again",
    )
    code, err = watching.stop(signal.SIGTERM)
    assert code == 0, err
    assert "earlier watch run(s) 1 had died" in err
    same = [f for f in watching.findings() if f["ip"] == NEWCOMER]
    assert [f["id"] for f in same] == [first["id"]]
    runs = json.loads(watching.cli("runs", "list", "--format", "json").stdout)
    assert sorted(run["status"] for run in runs) == ["aborted", "complete"]


@needs_lab
def test_watch_alerts_in_digests_at_most_every_interval_never_twice(watching: Watching) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[float, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            received.append((time.monotonic(), str(body.get("message", ""))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    lab = watching.lab
    with netns.inside(lab.scanner_ns):  # the watcher posts to 127.0.0.1 of its own namespace
        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    port = server.server_address[1]
    config = watching.files / "ipguard.toml"
    text = config.read_text().replace("alert_interval = 30", "alert_interval = 4")
    config.write_text(text + f'[alerts]\nurls = ["json://127.0.0.1:{port}/"]\n')
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        watching.start()
        started = time.monotonic()
        lab.run("newcomer", ["arping", "-U", "-c", "1", "-i", "eth0", NEWCOMER], check=False)
        watching.finding("unregistered-host", NEWCOMER)
        watching.wait(lambda: len(received) >= 1, "the first digest", deadline=DEADLINE)
        spoof = ["arping", "-U", "-c", "1", "-i", "eth0", "-S", GATEWAY, GATEWAY]
        lab.run("attacker", spoof, check=False)
        watching.finding("ip-mac-mismatch", GATEWAY)
        watching.wait(lambda: len(received) >= 2, "the second digest", deadline=DEADLINE)
        time.sleep(9)  # two more intervals: nothing new, so nothing is sent
        code, err = watching.stop()
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, err
    assert len(received) == 2, [message for _at, message in received]
    (first_at, first), (second_at, second) = received
    assert NEWCOMER in first and GATEWAY not in first
    assert GATEWAY in second and NEWCOMER not in second  # never twice for one finding
    assert second_at - first_at >= 4 - 0.5 and first_at - started < DEADLINE
