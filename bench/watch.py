"""Section: `ipguard watch`: detection latency, an ARP flood, and arpwatch on the same events.

    python -m bench --only watch            # 200 events, a 60 s flood at 100,000 frames/s
    python -m bench --only watch --quick    # the same with a 5 s flood (shared machines)

On the watch lab (tests.watch.lab), `ipguard watch` runs in the scanner's namespace and arpwatch
(Debian's, `-d`, line-buffered through stdbuf) beside it on the same interface. The bench sends
from the attacker's namespace through its own packet socket:

- 200 events, one after the other: a gratuitous ARP from a MAC nobody registered. Latency is from
  the send to the `unregistered-host` finding being in the ledger (read with SQL every 5 ms;
  `ipguard findings list --format json` then lists them all, its own start-up not counted), and
  to arpwatch printing its report.
- A flood of ARP replies from random MACs for the addresses of the /24 at 100,000 frames a second,
  with one real spoof of the gateway in the middle: watch's CPU (from /proc, in cores), its peak
  memory (VmHWM) and whether the spoof became a critical ip-mac-mismatch.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Log, Section, Target, ipguard_argv, ipguard_in, table
from ipguard.ledger import packing

EVENTS = 200
EVENT_LIMIT = 10.0  # seconds an event may take before it counts as missed
FLOOD_RATE = 100_000
FLOOD_SECONDS = 60.0
QUICK_FLOOD_SECONDS = 5.0
GATEWAY, ATTACKER_MAC = "198.18.0.1", "02:66:00:00:00:66"


def _arp(op: int, mac: str, ip: str, target_ip: str) -> bytes:
    raw_mac = bytes.fromhex(mac.replace(":", ""))
    return (
        b"\xff" * 6
        + raw_mac
        + struct.pack("!HHHBBH", 0x0806, 1, 0x0800, 6, 4, op)
        + raw_mac
        + socket.inet_aton(ip)
        + bytes(6)
        + socket.inet_aton(target_ip)
    )


def _event(k: int) -> tuple[str, str]:
    """The k-th event's (ip, mac): a fresh unregistered pair."""
    return f"198.18.0.{100 + k % 150}", f"00:16:3e:01:{k // 256:02x}:{k % 256:02x}"


class ArpwatchLog(threading.Thread):
    """Reads arpwatch -d's reports as they come: (arrival time, event, ip, mac)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.reports: list[tuple[float, str, str, str]] = []

    def run(self) -> None:
        assert self.process.stdout is not None
        block: dict[str, Any] = {}
        for line in self.process.stdout:
            text = line.strip()
            if text.startswith("Subject:"):
                block = {"at": time.monotonic(), "event": text[8:].split("(")[0].strip()}
            elif text.startswith("ip address:"):
                block["ip"] = text.split(":", 1)[1].strip()
            elif text.startswith("ethernet address:") and "ip" in block:
                mac = text.split(":", 1)[1].strip()
                canonical = ":".join(f"{int(part, 16):02x}" for part in mac.split(":"))
                self.reports.append((block["at"], block["event"], block["ip"], canonical))


def _seen(database: Path, subject: str) -> bool:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        row = connection.execute(
            "SELECT 1 FROM finding WHERE subject = ? AND kind = 'unregistered-host'", (subject,)
        ).fetchone()
    return row is not None


def _latencies(sock: socket.socket, database: Path, log: Log) -> tuple[list[float], dict]:
    watch: list[float] = []
    sent: dict[tuple[str, str], float] = {}
    for k in range(EVENTS):
        ip, mac = _event(k)
        at = time.monotonic()
        sock.send(_arp(2, mac, ip, ip))
        sent[(ip, mac)] = at
        while time.monotonic() - at < EVENT_LIMIT:
            if _seen(database, f"{ip}|{mac}|"):
                watch.append(time.monotonic() - at)
                break
            time.sleep(0.005)
        if (k + 1) % 50 == 0:
            log(f"watch bench: {k + 1}/{EVENTS} events")
    return watch, sent


def _wait_listening(database: Path, watch: subprocess.Popen[bytes]) -> None:
    """Until the watcher has recorded its run (it listens from then on)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and watch.poll() is None:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
                if connection.execute("SELECT 1 FROM scan_run WHERE kind = 'watch'").fetchone():
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise SystemExit("ipguard watch did not start")


def _spoof_seen(database: Path, spoofed_at: float) -> float | None:
    """Seconds from the spoof's send to its finding in the ledger (None: not within 120 s)."""
    while time.monotonic() - spoofed_at < 120:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            row = connection.execute(
                "SELECT 1 FROM finding WHERE kind = 'ip-mac-mismatch' AND ip = ?", (GATEWAY,)
            ).fetchone()
        if row is not None:
            return time.monotonic() - spoofed_at
        time.sleep(0.01)
    return None


def _caught_up(pid: int) -> float:
    """When the watcher went idle after the flood (its CPU time stops growing)."""
    last, _ = _proc(pid)
    while True:
        time.sleep(0.5)
        now, _ = _proc(pid)
        if now - last < 0.05:  # under a tenth of a core over the last half second
            return time.monotonic()
        last = now


def _proc(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, peak resident MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def _flood(sock: socket.socket, seconds: float, log: Log) -> tuple[int, float, float]:
    """ARP replies from random MACs at FLOOD_RATE; the spoof halfway. (frames, rate, spoof time)."""
    chance = random.Random(14)
    frames = [
        _arp(
            2,
            "00:16:3e:" + chance.randbytes(3).hex(":"),
            f"198.18.0.{chance.randint(2, 254)}",
            GATEWAY,
        )
        for _ in range(FLOOD_RATE)
    ]
    spoof = _arp(2, ATTACKER_MAC, GATEWAY, "198.18.0.20")
    batch = FLOOD_RATE // 100  # one batch every 10 ms
    sent, started, spoofed_at = 0, time.monotonic(), 0.0
    while (elapsed := time.monotonic() - started) < seconds:
        if not spoofed_at and elapsed >= seconds / 2:
            sock.send(spoof)
            spoofed_at = time.monotonic()
        start = (sent % FLOOD_RATE) // batch * batch
        for frame in frames[start : start + batch]:
            try:
                sock.send(frame)
            except OSError:  # the queue is full: the flood is as fast as the link takes it
                break
            sent += 1
        pause = sent / FLOOD_RATE - (time.monotonic() - started)
        if pause > 0:
            time.sleep(pause)
    wall = time.monotonic() - started
    log(f"watch bench: flood of {sent:,} frames in {wall:.1f} s")
    return sent, sent / wall, spoofed_at


def _measure(runs: int, log: Log) -> dict[str, Any]:
    from tests.lab import netns
    from tests.lab.builder import Lab
    from tests.watch.lab import WATCH_CONFIG, watch_scenario

    flood_seconds = QUICK_FLOOD_SECONDS if runs == 1 else FLOOD_SECONDS
    with Lab.build(watch_scenario()) as lab, tempfile.TemporaryDirectory(prefix="ipg-") as tmp:
        work = Path(tmp)
        scanner_ip = lab.scanner_ip
        lab.write_ledger_csv(work / "ledger.csv")
        (work / "ipguard.toml").write_text(WATCH_CONFIG.format(subnet=lab.subnet))
        ipguard_in(work, "ledger", "import", str(work / "ledger.csv"))
        (work / "arp.dat").touch()
        argv = ["stdbuf", "-oL", "arpwatch", "-d", "-p", "-i", "eth0", "-f", str(work / "arp.dat")]
        arpwatch = subprocess.Popen(
            netns.exec_argv(lab.scanner_ns, argv), stdout=subprocess.PIPE, text=True
        )
        watch = subprocess.Popen(
            netns.exec_argv(
                lab.scanner_ns,
                ipguard_argv(
                    "--db",
                    str(work / "ledger.db"),
                    "--config",
                    str(work / "ipguard.toml"),
                    "watch",
                    "--quiet",
                ),
            ),
            cwd=work,
            stderr=subprocess.DEVNULL,
        )
        reader = ArpwatchLog(arpwatch)
        reader.start()
        try:
            _wait_listening(work / "ledger.db", watch)
            time.sleep(1.0)  # arpwatch's pcap open too
            with netns.inside(lab.ns("attacker")):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.bind(("eth0", 0))
            watched, sent = _latencies(sock, work / "ledger.db", log)
            listed = ipguard_in(work, "findings", "list", "--format", "json")
            subjects = {
                (f["ip"], f["mac"])
                for f in json.loads(listed.stdout)["findings"]
                if f["kind"] == "unregistered-host"
            }
            time.sleep(2.0)
            cpu_before, _ = _proc(watch.pid)
            flood_started = time.monotonic()
            frames, rate, spoofed_at = _flood(sock, flood_seconds, log)
            cpu_flood, _ = _proc(watch.pid)
            spoof_after = _spoof_seen(work / "ledger.db", spoofed_at)
            # Until the watcher has read and judged what the flood queued: CPU over that span.
            caught_up = _caught_up(watch.pid)
            cpu_after, peak = _proc(watch.pid)
            busy = caught_up - flood_started
            found = json.loads(ipguard_in(work, "findings", "list", "--format", "json").stdout)
            spoof = next(
                (
                    f
                    for f in found["findings"]
                    if f["kind"] == "ip-mac-mismatch" and f["ip"] == GATEWAY
                ),
                None,
            )
            watch.terminate()
            watch.wait(timeout=60)
        finally:
            for process in (watch, arpwatch):
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
            reader.join(timeout=10)
        run = json.loads(ipguard_in(work, "runs", "show", "1", "--format", "json").stdout)
        with sqlite3.connect(work / "ledger.db") as connection:
            query = "SELECT data FROM run_records WHERE kind = 'observations'"
            packed = [data for (data,) in connection.execute(query)]
        sighted = {(r["ip"], r["mac"]) for data in packed for r in packing.unpack(data)}
    # Everything arpwatch said before the flood: the 200 events and whatever else the lab did.
    event_reports = [(ip, mac) for at, _e, ip, mac in reader.reports if at < flood_started]
    arpwatch_latency = [
        at - sent[(ip, mac)] for at, _event, ip, mac in reader.reports if (ip, mac) in sent
    ]
    return {
        "watch_latency": watched,
        "listed": sum(1 for pair in sent if pair in subjects),
        "arpwatch_latency": arpwatch_latency,
        # Before the flood; in the flood arpwatch reports every made-up station, which watch by
        # design does not keep (at most 8 MACs per address): counted, not compared.
        "subset": all((ip, mac) in sighted for (ip, mac) in event_reports if ip != scanner_ip),
        "arpwatch_event_reports": len(event_reports),
        "arpwatch_flood_reports": len(reader.reports) - len(event_reports),
        "flood_seconds": flood_seconds,
        "flood_frames": frames,
        "flood_rate": rate,
        "cpu_cores": (cpu_after - cpu_before) / busy,
        "cpu_cores_during_flood": (cpu_flood - cpu_before) / flood_seconds,
        "busy_seconds": busy,
        "peak_mb": peak,
        "spoof": None if spoof is None else spoof["severity"],
        "spoof_visible_within": spoof_after,
        "counts": run.get("counts", {}),
        "listing_seconds": listed.wall,
    }


def _secs(value: float | None) -> str:
    return "never (120 s)" if value is None else f"{value:.2f} s"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def watch_section(runs: int, context: dict[str, Any], log: Log) -> Section:
    """Detection latency over 200 events, the ARP flood, arpwatch side by side."""
    data = _measure(runs, log)
    watch, arpwatch = data["watch_latency"], data["arpwatch_latency"]
    p50, p99 = _quantile(watch, 0.5), _quantile(watch, 0.99)
    rows = [
        ["ipguard watch", f"{len(watch)}/{EVENTS}", f"{p50:.3f}", f"{p99:.3f}"],
        [
            "arpwatch 2.1a15",
            f"{len(arpwatch)}/{EVENTS}",
            f"{_quantile(arpwatch, 0.5):.3f}",
            f"{_quantile(arpwatch, 0.99):.3f}",
        ],
    ]
    counts = data["counts"]
    markdown = "\n\n".join(
        [
            f"{EVENTS} gratuitous ARPs from unregistered MACs, one at a time, from the lab's "
            "attacker; latency from the send to the finding in the ledger (watch) or the report "
            f"printed (arpwatch). `findings list --format json` listed {data['listed']}/{EVENTS} "
            f"of them afterwards (the command itself took {data['listing_seconds']:.2f} s).",
            table(["", "events reported", "p50 (s)", "p99 (s)"], rows, "lrrr"),
            f"Flood: {data['flood_frames']:,} ARP replies from random MACs in "
            f"{data['flood_seconds']:.0f} s ({data['flood_rate']:,.0f} frames/s), one spoof of "
            f"the gateway halfway: watch used {data['cpu_cores']:.2f} cores from the flood's "
            f"start until it had judged everything ({data['busy_seconds']:.1f} s; "
            f"{data['cpu_cores_during_flood']:.2f} during the flood itself), peak memory "
            f"{data['peak_mb']:.0f} MB; the spoof became a {data['spoof'] or 'MISSING'} "
            f"ip-mac-mismatch, in the ledger {_secs(data['spoof_visible_within'])} after it "
            f"was sent. arpwatch printed {data['arpwatch_flood_reports']:,} reports about the "
            "flood's made-up stations (it keeps every one; watch keeps 8 MACs per address and "
            f"counts the rest). Run counts: {counts.get('frames_read', 0):,} frames read, "
            f"{counts.get('frames_judged', 0):,} judged, {counts.get('frames_ignored', 0):,} "
            f"ignored ({json.dumps(counts.get('ignored', {}))}), "
            f"{counts.get('kernel_drops', 0):,} dropped by the kernel.",
        ]
    )
    targets = [
        Target("detection latency p99", "< 1 s", f"{p99:.3f} s", len(watch) == EVENTS and p99 < 1),
        Target(
            "CPU under the flood", "< 1 core", f"{data['cpu_cores']:.2f}", data["cpu_cores"] < 1
        ),
        Target("peak memory", "< 200 MB", f"{data['peak_mb']:.0f} MB", data["peak_mb"] < 200),
        Target(
            "spoof inside the flood", "reported", str(data["spoof"]), data["spoof"] == "critical"
        ),
        Target("arpwatch's events", "a subset of watch's", str(data["subset"]), data["subset"]),
    ]
    return Section(
        name="watch",
        title="ipguard watch: latency, flood, arpwatch",
        markdown=markdown,
        targets=targets,
        data={k: v for k, v in data.items() if k not in ("watch_latency", "arpwatch_latency")}
        | {"p50": p50, "p99": p99},
    )
