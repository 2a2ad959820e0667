"""Alerts after a scan, delivered by apprise to real local receivers (HTTP for json://, SMTP)."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ipguard.alerts import MAX_LINES, digest, due, mask_url
from ipguard.config import AlertSettings
from ipguard.ledger.scan_tables import FindingRow
from ipguard.ledger.store import Store
from ipguard.model import Severity
from tests.conftest import Cli
from tests.fakes import FakeScanner, result

REGISTERED = ("198.18.0.10", "02:00:00:00:00:10")
STRANGER = ("198.18.0.66", "02:00:00:00:00:66")
SECRET = "s3cret-Pa55"


@dataclass
class Inbox:
    """What a receiver got."""

    port: int = 0
    messages: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def receiving(delay: float = 0.0) -> Iterator[Inbox]:
    """An HTTP server on 127.0.0.1 keeping every JSON body POSTed to it (apprise json://),
    answering `delay` seconds after it."""
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            inbox.messages.append(json.loads(self.rfile.read(length) or b"null"))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    inbox.port = server.server_address[1]
    with serving(server):
        yield inbox


@pytest.fixture
def webhook() -> Iterator[Inbox]:
    """A webhook that answers at once."""
    with receiving() as inbox:
        yield inbox


@pytest.fixture
def slow_webhook() -> Iterator[Inbox]:
    """A webhook that takes a second to answer."""
    with receiving(1.0) as inbox:
        yield inbox


@pytest.fixture
def mailbox() -> Iterator[Inbox]:
    """A small SMTP server on 127.0.0.1: EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT."""
    inbox = Inbox()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, text: str) -> None:
            self.wfile.write(text.encode() + b"\r\n")

        def line(self) -> str:
            return self.rfile.readline(65536).decode("utf-8", "replace").rstrip("\r\n")

        def handle(self) -> None:
            self.reply("220 localhost ESMTP ipguard-test")
            for _ in range(100):  # bounded: one delivery is a handful of commands
                command = self.line()
                verb = command.split(" ", 1)[0].upper()
                if not command or verb == "QUIT":
                    self.reply("221 bye")
                    return
                if verb == "EHLO":
                    self.reply("250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")
                elif verb == "AUTH":
                    inbox.logins.append(self.login(command.split()))
                    self.reply("235 2.7.0 accepted")
                elif verb == "DATA":
                    self.reply("354 end with .")
                    lines = []
                    for _ in range(10_000):
                        text = self.line()
                        if text == ".":
                            break
                        lines.append(text[1:] if text.startswith("..") else text)
                    inbox.messages.append("\n".join(lines))
                    self.reply("250 queued")
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    self.reply("250 ok")

        def login(self, parts: list[str]) -> tuple[str, str]:
            if parts[1].upper() == "PLAIN":
                _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                return user, password
            self.reply("334 VXNlcm5hbWU6")
            user = base64.b64decode(self.line()).decode()
            self.reply("334 UGFzc3dvcmQ6")
            return user, base64.b64decode(self.line()).decode()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    inbox.port = server.server_address[1]
    with serving(server):
        yield inbox


@dataclass
class Trickle:
    """A webhook that answers a byte every half second, never finishing in time."""

    port: int = 0
    answering: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # its answer ended
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    """Like a webhook behind a hung proxy: each byte comes before any read timeout, the answer
    never ends (30 s at most: bounded, and what a scan waited for before it had a deadline)."""
    slow = Trickle()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for _ in range(200):  # the request's headers (apprise sends a small body after)
                if self.rfile.readline(65536) in (b"\r\n", b""):
                    break
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            slow.answering.set()
            for _ in range(60):
                if slow.stop.wait(0.5):
                    return
                self.wfile.write(b"a")
                self.wfile.flush()
            slow.finished.set()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    slow.port = server.server_address[1]
    with serving(server):
        try:
            yield slow
        finally:
            slow.stop.set()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def json_url(port: int) -> str:
    return f"json://ipguard:{SECRET}@127.0.0.1:{port}/hook"


def mail_url(port: int) -> str:
    return (
        f"mailto://ipguard:{SECRET}@127.0.0.1:{port}?mode=insecure"
        "&to=netadmin@school.example&from=ipguard@school.example"
    )


def write_config(
    path: Path, urls: list[str], min_severity: str = "high", overrides: str = ""
) -> Path:
    path.write_text(
        "\n".join(
            [
                "[scan]",
                'interface = "eth0"',
                'subnets = ["198.18.0.0/24"]',
                'site = "lab"',
                "[policy]",
                'hostname_rule = ""',
                *(["[policy.severity]", overrides] if overrides else []),
                "[alerts]",
                f"urls = {json.dumps(urls)}",
                f'min_severity = "{min_severity}"',
                "",
            ]
        )
    )
    path.chmod(0o600)  # its alert URLs hold passwords
    return path


@pytest.fixture
def fake(cli: Cli) -> FakeScanner:
    scanner = FakeScanner([result(REGISTERED, STRANGER)])
    cli.scanner = scanner
    return scanner


def scan(cli: Cli, config: Path, *args: str) -> tuple[int, str, str]:
    outcome = cli("--config", str(config), "scan", "--quiet", *args)
    return outcome.exit_code, outcome.stdout, outcome.stderr


def alerted(db_url: str) -> dict[str, str | None]:
    from sqlmodel import select

    store = Store(db_url)
    with store.session(write=False) as session:
        rows = {row.kind: row.alerted_severity for row in session.exec(select(FindingRow))}
    store.close()
    return rows


def test_one_digest_to_every_target_and_never_twice(
    cli: Cli, fake: FakeScanner, webhook: Inbox, mailbox: Inbox, tmp_path: Path, db_url: str
) -> None:
    cli("ledger", "add", *REGISTERED)
    config = write_config(
        tmp_path / "ipguard.toml", [json_url(webhook.port), mail_url(mailbox.port)]
    )
    assert scan(cli, config) == (1, "", "")
    (message,) = webhook.messages
    assert message["title"] == "ipguard: 1 finding needs attention at site lab (high)"
    assert "[HIGH] #1 unregistered-host 198.18.0.66 02:00:00:00:00:66" in message["message"]
    assert "report due" in message["message"]
    (mail,) = mailbox.messages
    assert "Subject: ipguard: 1 finding needs attention at site lab (high)" in mail
    assert "To: netadmin@school.example" in mail
    assert mailbox.logins == [("ipguard", SECRET)]
    assert alerted(db_url) == {"unregistered-host": "high"}

    assert scan(cli, config) == (1, "", "")  # seen again: no second alert
    assert len(webhook.messages) == 1 and len(mailbox.messages) == 1


def test_below_the_threshold_nothing_until_it_escalates(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path
) -> None:
    cli("ledger", "add", *REGISTERED, "--services", "tcp/22")
    cli("ledger", "add", *STRANGER)
    fake.results = [result(REGISTERED, STRANGER, services=[(REGISTERED[0], "tcp/8080")])]
    config = tmp_path / "ipguard.toml"
    write_config(config, [json_url(webhook.port)], min_severity="medium")
    assert scan(cli, config) == (0, "", "")  # medium: alerted, below fail_on (high)
    (first,) = webhook.messages
    assert "[MEDIUM] #1 unexpected-service 198.18.0.10" in first["message"]

    write_config(config, [json_url(webhook.port)], "medium", 'unexpected-service = "critical"')
    assert scan(cli, config)[0] == 1
    second = webhook.messages[1]
    assert second["title"].endswith("(critical)")
    assert "[CRITICAL] #1 unexpected-service" in second["message"]
    assert "(escalated from medium)" in second["message"]
    assert scan(cli, config) == (1, "", "")
    assert len(webhook.messages) == 2

    # Alerts count from min_severity: a medium finding under `high` is never sent.
    write_config(config, [json_url(webhook.port)], "high", 'unexpected-service = "medium"')
    assert cli("findings", "resolve", "1").exit_code == 0
    assert scan(cli, config) == (0, "", "")  # a new medium finding, #2: below both thresholds
    assert len(webhook.messages) == 2


def test_acknowledged_findings_are_not_alerted(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path
) -> None:
    cli("ledger", "add", *REGISTERED)
    config = tmp_path / "ipguard.toml"
    write_config(config, [])
    assert scan(cli, config)[0] == 1
    assert cli("findings", "ack", "1", "--note", "guest of 王芳").exit_code == 0
    write_config(config, [json_url(webhook.port)])
    assert scan(cli, config)[0] == 0
    assert webhook.messages == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_acknowledgement_that_ends_brings_the_alert_back(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path, db_url: str
) -> None:
    # Alerted, then acknowledged "until the printer is replaced, 31 December": on 1 January the
    # finding failed scans again, but was never alerted again (it had been, at that severity).
    import sqlalchemy as sa

    cli("ledger", "add", *REGISTERED)
    config = write_config(tmp_path / "ipguard.toml", [json_url(webhook.port)])
    assert scan(cli, config)[0] == 1 and len(webhook.messages) == 1
    ack = cli("findings", "ack", "1", "--note", "guest printer", "--until", "2999-12-31")
    assert ack.exit_code == 0, ack.stderr
    assert scan(cli, config)[0] == 0 and len(webhook.messages) == 1  # acknowledged: quiet
    store = Store(db_url)
    with store.session() as session:  # the day passes
        ended = datetime(2026, 1, 1, tzinfo=UTC)
        session.execute(sa.update(FindingRow).values(ack_until=ended))
    store.close()
    assert scan(cli, config)[0] == 1
    assert len(webhook.messages) == 2
    assert (
        "[HIGH] #1 unregistered-host 198.18.0.66 02:00:00:00:00:66 (acknowledged until "
        "2026-01-01T00:00:00Z: ended)" in webhook.messages[1]["message"]
    )
    assert scan(cli, config)[0] == 1 and len(webhook.messages) == 2  # and once only


def test_a_dead_target_warns_once_masks_secrets_and_keeps_the_exit_code(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path, db_url: str
) -> None:
    dead_json, dead_mail = json_url(closed_port()), mail_url(closed_port())
    config = write_config(tmp_path / "ipguard.toml", [dead_json, dead_mail])
    code, out, err = scan(cli, config)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: alert to json://ipguard:****@127.0.0.1:")
    assert lines[1].startswith("warning: alert to mailto://ipguard:****@127.0.0.1:")
    assert all(line.endswith("failed; the scan itself is unaffected") for line in lines)
    assert SECRET not in err + out
    assert alerted(db_url) == {"unregistered-host": None}  # not delivered: tried again next time

    # With fail_on critical the same scan exits 0, dead target or not.
    assert scan(cli, config, "--fail-on", "critical")[0] == 0

    write_config(config, [dead_json, json_url(webhook.port)])
    code, _, err = scan(cli, config, "--format", "json")
    assert code == 1 and len(err.splitlines()) == 1 and len(webhook.messages) == 1
    assert alerted(db_url) == {"unregistered-host": "high"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_target_that_never_finishes_answering_does_not_hold_the_scan(
    cli: Cli,
    fake: FakeScanner,
    trickle: Trickle,
    webhook: Inbox,
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A webhook answering a byte every half second never trips apprise's read timeout: the scan
    # from cron waited for it as long as it kept answering (forever, behind a hung proxy), and
    # wrote no metrics meanwhile.
    import ipguard.alerts

    monkeypatch.setattr(ipguard.alerts, "DEADLINE", 3.0)
    metrics = tmp_path / "ipguard.prom"
    config = write_config(tmp_path / "ipguard.toml", [json_url(trickle.port)])
    code, out, err = scan(cli, config, "--metrics-file", str(metrics))
    assert trickle.answering.is_set() and not trickle.finished.is_set()
    assert (code, out) == (1, "")
    assert err.startswith("warning: alert to json://ipguard:****@127.0.0.1:")
    assert err.endswith(" did not answer within 3 s; the scan itself is unaffected\n")
    assert len(err.splitlines()) == 1 and SECRET not in err
    assert 'ipguard_scan_success{site="lab"} 1' in metrics.read_text()
    assert alerted(db_url) == {"unregistered-host": None}  # not lost: sent with the next digest

    # The slow target beside one that works: the digest is delivered, at the same time.
    write_config(config, [json_url(trickle.port), json_url(webhook.port)])
    code, _, err = scan(cli, config)
    assert code == 1 and len(webhook.messages) == 1 and "did not answer" in err
    assert alerted(db_url) == {"unregistered-host": "high"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_password_in_an_alert_url_of_a_file_others_may_read_is_warned_of(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path
) -> None:
    # The README installed the configuration with mode 644, and its own [alerts] example holds
    # the mail password: every local user could read it, and nothing said so.
    config = write_config(tmp_path / "ipguard.toml", [json_url(webhook.port)])
    config.chmod(0o644)
    code, out, err = scan(cli, config)
    assert (code, out) == (1, "") and len(webhook.messages) == 1
    assert err == (
        f"warning: {config} holds an alert URL with a password and other users may read it "
        "(mode 644): chmod 600 it\n"
    )
    assert SECRET not in err
    write_config(config, [f"json://127.0.0.1:{webhook.port}/hook?token={SECRET}"]).chmod(0o640)
    assert "(mode 640): chmod 600 it" in scan(cli, config)[2]
    write_config(config, [f"json://127.0.0.1:{webhook.port}/hook"]).chmod(0o644)
    assert scan(cli, config) == (1, "", "")  # nothing secret in it: nothing to say
    write_config(config, [json_url(webhook.port)])  # mode 600
    assert scan(cli, config) == (1, "", "")


def test_a_scan_and_a_watcher_of_one_site_never_send_the_same_findings_twice(
    cli: Cli, fake: FakeScanner, slow_webhook: Inbox, tmp_path: Path, db_url: str
) -> None:
    # The README's set-up, a watcher between the cron scans of one site: both read the scan's
    # new findings as due, and when their digests met (the scan's, sent at its end, and the
    # watcher's, every alert_interval) both were sent.
    from ipguard.alerts import send_digest

    assert scan(cli, write_config(tmp_path / "ipguard.toml", []))[0] == 1
    settings = AlertSettings(urls=(json_url(slow_webhook.port),), min_severity=Severity.HIGH)
    outcomes = []

    def sensor() -> None:  # each with its own connection, as two processes
        store = Store(db_url)
        now = datetime.now(UTC)
        outcomes.append(send_digest(store, settings, site="lab", run_id=None, now=now))
        store.close()

    both = [threading.Thread(target=sensor) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(30)
    assert len(slow_webhook.messages) == 1
    assert sorted(len(outcome.sent) for outcome in outcomes) == [0, 2]  # two strangers
    assert all(outcome.failed == [] for outcome in outcomes)
    assert alerted(db_url) == {"unregistered-host": "high"}


def test_a_failed_scan_sends_nothing(
    cli: Cli, fake: FakeScanner, webhook: Inbox, tmp_path: Path
) -> None:
    from ipguard.errors import InterfaceError

    fake.error = InterfaceError("interface eth9 does not exist")
    config = write_config(tmp_path / "ipguard.toml", [json_url(webhook.port)])
    assert scan(cli, config) == (3, "", "error: interface eth9 does not exist\n")
    assert webhook.messages == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"json://u:{SECRET}@127.0.0.1:9/x?token=abc", "json://u:****@127.0.0.1:9/x"),
        (f"mailto://u:{SECRET}@mail.example", "mailto://u:****@mail.example"),
        ("nosuchscheme://user:pw@host", "nosuchscheme://***"),
        ("garbage", "?://***"),
    ],
)
def test_masking(url: str, shown: str) -> None:
    assert mask_url(url).startswith(shown)
    assert SECRET not in mask_url(url) and "pw@" not in mask_url(url)


def finding_row(
    id: int, severity: str, state: str = "open", alerted: str | None = None, **extra: Any
) -> FindingRow:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    return FindingRow(
        id=id,
        site="lab",
        kind="unregistered-host",
        subject=f"198.18.0.{id}||",
        ip=f"198.18.0.{id}",
        severity=severity,
        state=state,
        summary=f"host {id}\nwith a line break",
        first_seen_at=now,
        last_seen_at=now,
        alerted_severity=alerted,
        **extra,
    )


def test_which_findings_are_due() -> None:
    now = datetime(2026, 5, 2, tzinfo=UTC)
    rows = [
        finding_row(1, "high"),
        finding_row(2, "medium"),
        finding_row(3, "critical", alerted="high"),
        finding_row(4, "high", alerted="high"),
        finding_row(5, "high", alerted="critical"),
        finding_row(6, "critical", state="acknowledged"),
        finding_row(7, "critical", state="acknowledged", ack_until=now - timedelta(days=1)),
        finding_row(8, "critical", state="resolved"),
    ]
    chosen = due(rows, AlertSettings(urls=("json://x",), min_severity=Severity.HIGH), now)
    assert [row.id for row in chosen] == [3, 7, 1]


def test_a_long_digest_is_cut() -> None:
    rows = [finding_row(index, "high") for index in range(1, MAX_LINES + 8)]
    title, body = digest(rows, site="lab", run_id=4)
    assert title == f"ipguard: {MAX_LINES + 7} findings need attention at site lab (high)"
    assert body.startswith("Scan run 4 at site lab found:")
    assert "… and 7 more: `ipguard findings list --site lab`" in body
    assert "host 1 with a line break" in body


def test_hostile_names_and_a_careless_site_name_add_no_mail_header(
    cli: Cli, mailbox: Inbox, tmp_path: Path
) -> None:
    """A device's name and the site's name reach the digest; neither becomes a header line."""
    from ipguard.model import NameObservation

    hostile = "pc\r\nBcc: thief@example.com\x1b]0;pwned\x07\U000e0041"
    cli("ledger", "add", *REGISTERED)
    names = [NameObservation(REGISTERED[0], hostile, "dns")]
    cli.scanner = FakeScanner([result(REGISTERED, names=names)])
    config = write_config(tmp_path / "ipguard.toml", [mail_url(mailbox.port)], "low")
    text = config.read_text().replace('hostname_rule = ""', 'hostname_rule = "^x$"')
    # A site name of two lines is refused by the configuration itself (config.check_site).
    refused = text.replace('site = "lab"', 'site = "lab\\nBcc: thief@example.com"')
    config.write_text(refused)
    code, _, stderr = scan(cli, config)
    assert code == 2 and "a site name is one line of text" in stderr
    config.write_text(text)
    code, _, stderr = scan(cli, config)
    assert code == 0, stderr  # hostname-policy is low: below fail_on
    (mail,) = mailbox.messages
    headers, _, body = mail.partition("\n\n")
    assert not any(line.lower().startswith("bcc") for line in mail.splitlines()), mail
    subject = next(line for line in headers.splitlines() if line.startswith("Subject:"))
    assert subject.endswith("at site lab (low)")
    assert "hostname-policy" in body and "\x1b" not in mail and "\U000e0041" not in mail
