"""`scan --metrics-file`: Prometheus text exposition for node_exporter's textfile collector."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipguard.metrics import escape_label, write_textfile
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

REGISTERED = ("198.18.0.10", "02:00:00:00:00:10")
STRANGER = ("198.18.0.66", "02:00:00:00:00:66")
CONFIG = """
[scan]
interface = "eth0"
subnets = ["198.18.0.0/24"]
site = "lab"
[policy]
hostname_rule = ""
"""

# The exposition format, line by line: comments, or name{labels} value.
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)?\}})? "
    r"(?P<value>-?[0-9.e+]+|NaN|[+-]Inf)$"
)


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Check the format strictly and return the samples; every family has HELP then TYPE."""
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    described: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("# "):
            kind, name, rest = line[2:].split(" ", 2)
            assert kind in ("HELP", "TYPE"), line
            described.setdefault(name, []).append(kind)
            if kind == "TYPE":
                assert rest in ("gauge", "counter"), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        assert described.get(match["name"]) == ["HELP", "TYPE"], line
        labels = frozenset(
            (key, value.encode().decode("unicode_escape"))
            for key, value in re.findall(
                r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', match["labels"] or ""
            )
        )
        samples[(match["name"], labels)] = float(match["value"])
    return samples


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ipguard.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def fake(cli: Cli) -> FakeScanner:
    scanner = FakeScanner([result(REGISTERED, STRANGER)])
    cli.scanner = scanner
    return scanner


def test_metrics_after_a_complete_scan(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path
) -> None:
    cli("ledger", "add", *REGISTERED)
    target = tmp_path / "textfiles" / "ipguard.prom"
    target.parent.mkdir()
    outcome = cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (1, "", "")
    samples = parse(target.read_text())
    assert value(samples, "ipguard_scan_success", site="lab") == 1
    assert value(samples, "ipguard_hosts_seen", site="lab") == 2
    assert value(samples, "ipguard_run_id", site="lab") == 1
    assert value(samples, "ipguard_run_status", site="lab", status="complete") == 1
    assert value(samples, "ipguard_run_status", site="lab", status="failed") == 0
    open_high = value(
        samples, "ipguard_findings_open", site="lab", kind="unregistered-host", severity="high"
    )
    assert open_high == 1
    assert sum(v for (name, _), v in samples.items() if name == "ipguard_findings_open") == 1
    assert 0 <= value(samples, "ipguard_scan_duration_seconds", site="lab") < 60
    last = value(samples, "ipguard_scan_last_success_timestamp_seconds", site="lab")
    attempt = value(samples, "ipguard_scan_last_attempt_timestamp_seconds", site="lab")
    assert 0 < last <= attempt + 1
    # Written whole: nothing else left in the collector's directory, readable by node_exporter.
    assert [path.name for path in target.parent.iterdir()] == ["ipguard.prom"]
    assert target.stat().st_mode & 0o044 == 0o044

    # Acknowledged findings no longer count as open.
    cli("findings", "ack", "1", "--note", "known")
    cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    samples = parse(target.read_text())
    assert sum(v for (name, _), v in samples.items() if name == "ipguard_findings_open") == 0
    assert value(samples, "ipguard_run_id", site="lab") == 2


def test_a_failed_scan_still_writes_metrics(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path
) -> None:
    from ipguard.errors import InterfaceError

    target = tmp_path / "ipguard.prom"
    cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    fake.error = InterfaceError("interface eth9 does not exist")
    outcome = cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    assert outcome.exit_code == 3
    samples = parse(target.read_text())
    assert value(samples, "ipguard_scan_success", site="lab") == 0
    assert value(samples, "ipguard_run_status", site="lab", status="failed") == 1
    assert value(samples, "ipguard_run_status", site="lab", status="complete") == 0
    # What the last good run saw is still there.
    assert value(samples, "ipguard_hosts_seen", site="lab") == 2
    assert value(samples, "ipguard_scan_last_success_timestamp_seconds", site="lab") > 0


def test_site_labels_are_escaped(cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path) -> None:
    target = tmp_path / "ipguard.prom"
    site = 'b"ld\\7 x'  # a site name is one line: --site refuses a line break
    cli("--config", str(config), "scan", "--quiet", "--site", site, "--metrics-file", str(target))
    text = target.read_text()
    assert 'site="b\\"ld\\\\7 x"' in text
    assert value(parse(text), "ipguard_hosts_seen", site=site) == 2
    reference_check(target)  # and Prometheus's parser reads the same site back


def test_an_unwritable_metrics_file_is_a_warning(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "ipguard.prom"
    outcome = cli("--config", str(config), "scan", "--quiet", "--metrics-file", str(target))
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(f"warning: cannot write metrics to {target}")


def test_a_broken_ledger_still_says_the_scan_failed(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    target = tmp_path / "ipguard.prom"
    outcome = cli(
        "--config", str(config), "scan", "--metrics-file", str(target), db=f"sqlite:///{junk}"
    )
    assert outcome.exit_code == 3
    samples = parse(target.read_text())
    assert value(samples, "ipguard_scan_success", site="lab") == 0
    assert ("ipguard_hosts_seen", frozenset({("site", "lab")})) not in samples


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("lab", "lab"), ('a"b', 'a\\"b'), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb"), ("李伟", "李伟")],
)
def test_label_escaping(raw: str, escaped: str) -> None:
    assert escape_label(raw) == escaped


def test_the_file_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "ipguard.prom"
    target.write_text("old\n")
    inode = target.stat().st_ino
    write_textfile(target, "new\n")
    assert target.read_text() == "new\n" and target.stat().st_ino != inode
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ipguard.prom"]


def reference_check(path: Path) -> None:
    """The file as Prometheus's own tools read it: the Python client's parser of the text format
    (the same samples as ours), and `promtool check metrics` when it is installed."""
    import shutil
    import subprocess

    from prometheus_client.parser import text_string_to_metric_families

    text = path.read_text()
    families = list(text_string_to_metric_families(text))
    assert families and all(family.type == "gauge" for family in families)
    theirs = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }
    assert theirs == parse(text)
    promtool = shutil.which("promtool")
    if promtool is not None:
        with path.open("rb") as handle:
            done = subprocess.run([promtool, "check", "metrics"], stdin=handle, capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_metrics_write_reads_the_ledger_without_scanning(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path
) -> None:
    cli("ledger", "add", *REGISTERED)
    cli("--config", str(config), "scan", "--quiet")
    scans = len(fake.requests)
    target = tmp_path / "textfiles" / "ipguard.prom"
    target.parent.mkdir()
    written = cli("--config", str(config), "metrics", "write", str(target))
    assert written.exit_code == 0, written.stderr
    assert len(fake.requests) == scans  # no scan
    assert written.stderr == f"metrics of site lab written to {target}\n"
    samples = parse(target.read_text())
    reference_check(target)
    assert value(samples, "ipguard_scan_success", site="lab") == 1
    assert value(samples, "ipguard_run_id", site="lab") == 1
    assert value(samples, "ipguard_hosts_seen", site="lab") == 2
    attempt = value(samples, "ipguard_scan_last_attempt_timestamp_seconds", site="lab")
    assert attempt == value(samples, "ipguard_scan_last_success_timestamp_seconds", site="lab")
    assert (
        value(
            samples, "ipguard_findings_open", site="lab", kind="unregistered-host", severity="high"
        )
        == 1
    )
    assert [path.name for path in target.parent.iterdir()] == ["ipguard.prom"]
    # Another sensor's site ([scan] site), which never ran: its open findings are zero and no
    # run is claimed. (Named with --site instead, a site the ledger never heard of is refused.)
    north = tmp_path / "north.toml"
    north.write_text(config.read_text().replace('site = "lab"', 'site = "north"'))
    other = cli("--config", str(north), "metrics", "write", str(target))
    assert other.exit_code == 0, other.stderr
    samples = parse(target.read_text())
    assert value(samples, "ipguard_scan_success", site="north") == 0
    assert ("ipguard_run_id", frozenset({("site", "north")})) not in samples
    # Nor an attempt: the time it was written stood for one, so `time() - last_attempt` never
    # grew while something (a cron `metrics write`, `findings ack`) kept rewriting the file.
    north_attempt = ("ipguard_scan_last_attempt_timestamp_seconds", frozenset({("site", "north")}))
    assert north_attempt not in samples
    assert sum(v for (name, _), v in samples.items() if name == "ipguard_findings_open") == 0


def test_metrics_write_to_a_missing_directory_is_an_input_error(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "ipguard.prom"
    out = cli("metrics", "write", str(target))
    assert out.exit_code == 2
    assert out.stderr.startswith(f"error: cannot write metrics to {target}")


def test_ack_and_resolve_refresh_the_configured_metrics_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "ipguard.prom"
    config = tmp_path / "metrics.toml"
    config.write_text(CONFIG.replace('site = "lab"', f'site = "lab"\nmetrics_file = "{target}"'))
    second = ("198.18.0.67", "02:00:00:00:00:67")
    scanner = FakeScanner([result(STRANGER, second)])
    cli.scanner = scanner
    scanned = cli("--config", str(config), "scan", "--quiet")
    assert scanned.exit_code == 1, scanned.stderr

    def open_high() -> float:
        return value(
            parse(target.read_text()),
            "ipguard_findings_open",
            site="lab",
            kind="unregistered-host",
            severity="high",
        )

    assert open_high() == 2  # the scan wrote the configured file
    acked = cli("--config", str(config), "findings", "ack", "1", "--note", "known")
    assert acked.exit_code == 0, acked.stderr
    assert open_high() == 1  # the gauge dropped without a scan
    resolved = cli("--config", str(config), "findings", "resolve", "2")
    assert resolved.exit_code == 0, resolved.stderr
    assert open_high() == 0
    reference_check(target)
    assert len(scanner.requests) == 1


def test_a_finding_acknowledged_during_a_scan_does_not_say_the_scans_fail(
    cli: Cli, config: Path, fake: FakeScanner, tmp_path: Path, db_url: str
) -> None:
    # `findings ack` while the cron scan ran (a /16 with services takes minutes) rewrote the
    # metrics from the newest run, the one still running: ipguard_scan_success 0, and the
    # dashboard's "scans failing" alert fired until the scan ended.
    from ipguard.ledger import runs
    from ipguard.ledger.store import Store

    target = tmp_path / "ipguard.prom"
    config.write_text(
        config.read_text().replace('site = "lab"', f'site = "lab"\nmetrics_file = "{target}"')
    )
    assert cli("--config", str(config), "scan", "--quiet").exit_code == 1
    store = Store(db_url)
    with store.session() as session:  # the next scan, under way
        runs.start(session, site="lab", interface="eth0", subnets=["198.18.0.0/24"],
                   settings={}, actor="cron", sensor="sensor-1", version="test")  # fmt: skip
    store.close()
    acked = cli("--config", str(config), "findings", "ack", "1", "--note", "known")
    assert acked.exit_code == 0, acked.stderr
    samples = parse(target.read_text())
    assert value(samples, "ipguard_scan_success", site="lab") == 1
    finished = value(samples, "ipguard_scan_last_success_timestamp_seconds", site="lab")
    assert value(samples, "ipguard_scan_last_attempt_timestamp_seconds", site="lab") == finished
    assert value(samples, "ipguard_run_status", site="lab", status="running") == 1
    assert value(samples, "ipguard_run_id", site="lab") == 2


def test_a_finding_of_another_site_leaves_this_sites_metrics_file_alone(
    cli: Cli, tmp_path: Path
) -> None:
    # `scan --site north` and `findings ack` of a finding of site north, run with the
    # configuration of site lab, wrote north's metrics into lab's file: lab vanished from its
    # dashboard, and node_exporter met north's series twice (north's own file beside it).
    target = tmp_path / "ipguard.prom"
    config = tmp_path / "metrics.toml"
    config.write_text(CONFIG.replace('site = "lab"', f'site = "lab"\nmetrics_file = "{target}"'))
    cli.scanner = FakeScanner([result(STRANGER)])
    assert cli("--config", str(config), "scan", "--quiet").exit_code == 1  # finding 1: lab
    before = target.read_text()
    north = cli("--config", str(config), "scan", "--quiet", "--site", "north")
    assert north.exit_code == 1  # finding 2: north's
    assert target.read_text() == before  # and so was the scan of north's, into lab's file
    for command in (("ack", "2", "--note", "known"), ("resolve", "2")):
        done = cli("--config", str(config), "findings", *command)
        assert done.exit_code == 0, done.stderr
        assert target.read_text() == before  # lab's, as it was
    assert 'site="north"' not in before
    acked = cli("--config", str(config), "findings", "ack", "1", "--note", "known")
    assert acked.exit_code == 0 and target.read_text() != before  # lab's own: refreshed


def test_a_target_that_is_no_regular_file_is_written_to_not_replaced(
    cli: Cli, tmp_path: Path
) -> None:
    """`metrics write /dev/null` run as root replaced the device node with a regular file (the
    temporary file was renamed over it), and `report -o /dev/stdout` would replace that link.
    A named pipe stands in for them here: it is written to and stays a pipe. A symbolic link to
    a regular file stays a link, and the file it names gets the text."""
    import os
    import stat
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    heard: list[str] = []
    reader = threading.Thread(target=lambda: heard.append(pipe.read_text()), daemon=True)
    reader.start()
    assert cli("metrics", "write", str(pipe)).exit_code == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert heard and "ipguard_scan_success" in heard[0]

    real = tmp_path / "exports" / "ipguard.prom"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "ipguard.prom"
    link.symlink_to(real)
    assert cli("metrics", "write", str(link)).exit_code == 0
    assert link.is_symlink() and "ipguard_scan_success" in real.read_text()

    reader = threading.Thread(target=lambda: heard.append(pipe.read_text()), daemon=True)
    reader.start()
    assert cli("report", "--format", "md", "-o", str(pipe)).exit_code == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and heard[-1].startswith("# ipguard report")


def test_metrics_write_for_a_site_the_ledger_never_heard_of_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    """`--site nosuch` wrote all zeros: a dashboard showed a mistyped site as a quiet one."""
    target = tmp_path / "typo.prom"
    result = cli("metrics", "write", str(target), "--site", "nrth")
    assert result.exit_code == 2, result.stderr
    assert "--site 'nrth': the ledger knows no such site" in result.stderr
    assert not target.exists()
    assert cli("metrics", "write", str(target)).exit_code == 0  # [scan] site: a new sensor's zeros
