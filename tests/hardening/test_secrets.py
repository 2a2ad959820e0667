"""Secrets never show: a database password and alert URL tokens stay out of every output.

Errors, `--debug` tracebacks, warnings, reports, metrics, the run history and the spool are all
searched for the secret strings. Every process runs in a network namespace of its own with no
interface up (`unshare -n`), so a database "server down" or an alert target is unreachable for
certain and nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.helpers import (
    CONFIG,
    REPO,
    Cluster,
    env,
    fake_cli_argv,
    ipguard_argv,
    own_cluster,
)

SECRET = "S3cret-Pa55"
TOKENS = ("T0ken-AAA1", "T0ken-BBB2", "T0ken-CCC3")
ALERT_URLS = (
    f"json://ipguard:{TOKENS[0]}@198.19.200.9:8080/hook",
    f"mailto://alerts:{TOKENS[1]}@198.19.200.9?to=noc@example.invalid",
    f"tgram://123456789:{TOKENS[2]}/-100200300",
)


def offline(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a fresh network namespace (nothing reachable), capturing everything."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare (util-linux) for a network namespace")
    return subprocess.run(
        ["unshare", "--net", "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env(tmp_path),
        check=False,
    )


def leaks(*texts: str) -> list[str]:
    return [secret for secret in (SECRET, *TOKENS) if any(secret in text for text in texts)]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        # Exit 3 when the server cannot be reached, 2 when the URL itself is wrong.
        (f"postgresql+psycopg://ipguard:{SECRET}@127.0.0.1:5432/ledger", 3),
        (f"postgresql+psycopg://ipguard@127.0.0.1:5432/ledger?password={SECRET}", 3),
        (f"postgresql+psycopg://ipguard:{SECRET}@127.0.0.1:5432/ledger?bogus=1", 2),
        (f"postgresql+psycopg://ipguard:{SECRET}@[::1:5432/ledger", 2),
        (f"postgresql+nodriver://ipguard:{SECRET}@127.0.0.1/ledger", 3),
    ],
    ids=["server-down", "password-in-query", "bad-option", "unparseable", "no-driver"],
)
def test_an_unusable_database_url_never_shows_its_password(
    tmp_path: Path, url: str, code: int
) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG)
    for command in (("ledger", "list"), ("--config", str(config), "scan")):
        done = offline(ipguard_argv("--debug", "--db", url, *command), tmp_path)
        assert done.returncode == code, done.stderr
        assert "error: " in done.stderr and not leaks(done.stdout, done.stderr)


@pytest.fixture(scope="module")
def password_server() -> Iterator[Cluster]:
    """A PostgreSQL server that wants a password (SCRAM), on a Unix socket only."""
    with own_cluster(5433, password="the-right-one") as cluster:
        yield cluster


def test_a_wrong_password_is_a_clear_error_without_the_password(
    tmp_path: Path, password_server: Cluster
) -> None:
    url = password_server.url(password=SECRET)
    done = offline(ipguard_argv("--debug", "--db", url, "ledger", "list"), tmp_path)
    assert done.returncode == 3
    assert "password authentication failed" in done.stderr
    assert "postgres:***@" in done.stderr and not leaks(done.stdout, done.stderr)


def test_alert_tokens_stay_out_of_warnings_reports_metrics_and_history(tmp_path: Path) -> None:
    config = tmp_path / "ipguard.toml"
    urls = ", ".join(f'"{url}"' for url in ALERT_URLS)
    config.write_text(CONFIG + f'\n[alerts]\nurls = [{urls}]\nmin_severity = "low"\n')
    db = str(tmp_path / "ledger.db")
    metrics = tmp_path / "ipguard.prom"
    base = ("--debug", "--db", db, "--config", str(config))
    outputs = []
    scan = offline(fake_cli_argv(*base, "scan", "--metrics-file", str(metrics), hosts=5), tmp_path)
    assert scan.returncode == 1, scan.stderr
    warnings = [line for line in scan.stderr.splitlines() if line.startswith("warning: alert")]
    assert len(warnings) == len(ALERT_URLS), scan.stderr
    outputs += [scan.stdout, scan.stderr, metrics.read_text()]
    for command in (
        ("runs", "show", "1", "--format", "json"),
        ("findings", "list", "--format", "json"),
        ("findings", "show", "1"),
        ("report", "--since", "2000-01-01", "--format", "html"),
        ("report", "--since", "2000-01-01", "--format", "json"),
        ("report", "--since", "2000-01-01", "--format", "csv"),
        ("report", "--since", "2000-01-01", "--format", "md"),
    ):
        done = offline(ipguard_argv(*base, *command), tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        outputs += [done.stdout, done.stderr]
    assert not leaks(*outputs)
    stored = Path(db).read_bytes() + b"".join(
        path.read_bytes() for path in tmp_path.rglob("*") if path.is_file() and path != config
    )
    assert not [token for token in TOKENS if token.encode() in stored]


@pytest.mark.parametrize(
    "alerts",
    [
        f'urls = "{ALERT_URLS[0]}"',
        f'urls = ["{ALERT_URLS[0]}", 7]',
        f'url = ["{ALERT_URLS[0]}"]',
    ],
)
def test_a_bad_alerts_section_is_reported_without_its_urls(tmp_path: Path, alerts: str) -> None:
    config = tmp_path / "ipguard.toml"
    config.write_text(CONFIG + f"\n[alerts]\n{alerts}\n")
    done = offline(
        ipguard_argv("--debug", "--config", str(config), "--db", str(tmp_path / "l.db"), "scan"),
        tmp_path,
    )
    assert done.returncode == 2 and "error: " in done.stderr
    assert not leaks(done.stdout, done.stderr)
