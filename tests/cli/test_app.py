"""The command line as a whole: documented commands, fast start-up, errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperOption
from typer.main import get_command

from ipguard.cli.main import app
from tests.conftest import Cli


def all_commands() -> list[tuple[str, Any]]:
    found = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.append((" ".join(path), command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return found


@pytest.mark.parametrize(
    ("path", "command"), all_commands(), ids=[p or "ipguard" for p, _ in all_commands()]
)
def test_every_command_has_help_text(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`ipguard {path}` has no help text"
    for param in command.params:
        if isinstance(param, TyperOption):
            assert param.help, f"`ipguard {path}` option {param.opts} has no help text"


def test_help_lists_the_command_groups(cli: Cli) -> None:
    out = cli("--help").stdout
    for group in ("ledger", "pools"):
        assert group in out


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for path, command in all_commands():
        if path and not getattr(command, "commands", None):
            assert f"ipguard {path}" in readme, f"README does not mention `ipguard {path}`"


def test_start_up_imports_nothing_heavy() -> None:
    code = (
        "import sys; from ipguard.cli.main import app; "
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'alembic', 'scapy', 'nmap', 'openpyxl', "
        "'apprise', 'netaddr') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_version(cli: Cli) -> None:
    from ipguard import __version__

    assert cli("--version").stdout.strip() == f"ipguard {__version__}"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("ledger", "add"), "error: Missing argument 'ip'. (see `ipguard ledger add --help`)"),
        (
            ("ledger", "list", "--format", "xml"),
            "error: Invalid value for '--format': 'xml' is not one of",
        ),
        (("no-such-command",), "error: No such command 'no-such-command'."),
        (("ledger", "frob"), "error: No such command 'frob'. (see `ipguard ledger --help`)"),
        (("--wait", "-1", "ledger", "list"), "error: Invalid value for '--wait': -1.0 is not in"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_2(
    cli: Cli, args: tuple[str, ...], line: str
) -> None:
    """DESIGN: errors print one line `error: …` (click printed three: usage, hint, error)."""
    result = cli(*args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line), result.stderr


def test_unwritable_database_is_an_operational_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the default ledger's directory is made (a named one that is missing is a typo): a file
    # where the data directory belongs is the machine's fault.
    from typer.testing import CliRunner

    from ipguard.cli.main import app

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("IPGUARD_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "sub"))
    result = CliRunner().invoke(app, ["ledger", "list"], catch_exceptions=False)
    assert result.exit_code == 3
    assert result.stderr.startswith("error: cannot create the ledger directory")


def test_unreachable_server_is_exit_3_and_hides_the_password(cli: Cli) -> None:
    url = "postgresql+psycopg://ipguard:s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2"
    result = cli("ledger", "list", db=url)
    assert result.exit_code == 3
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "***" in result.stderr and "unavailable" in result.stderr


def test_not_a_database_file_is_exit_3(cli: Cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = cli("ledger", "list", db=f"sqlite:///{junk}")
    assert result.exit_code == 3 and "unavailable" in result.stderr


def test_installed_entry_point_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ipguard")
    env = {**os.environ, "IPGUARD_DB": str(tmp_path / "l.db")}
    done = subprocess.run(
        [str(exe), "ledger", "add", "10.0.0.1", "zz"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr == "error: mac 'zz': not a MAC address (like aa:bb:cc:dd:ee:ff)\n"


def test_help_lists_every_command_in_order_and_a_typo_gets_a_suggestion(cli: Cli) -> None:
    # The commands are built only when used (ipguard.cli.main.COMMANDS); --help shows them all.
    out = cli("--help").stdout
    listed = [line.split()[0] for line in out.split("Commands:\n", 1)[1].splitlines() if line]
    assert listed == [
        *("scan", "watch", "diff", "report", "prune", "ledger", "pools", "runs"),
        *("findings", "cron", "metrics", "snmp"),
    ]
    typo = cli("scna")
    assert typo.exit_code == 2 and "Did you mean 'scan'?" in typo.stderr


def test_a_command_loads_only_its_own_module_and_exit_handlers_still_run(tmp_path: Path) -> None:
    # The process ends without the interpreter's teardown (ipguard.cli.main._exit_now), after
    # the exit handlers: this one reports which command modules were imported, and whether the
    # garbage collector, off during start-up, was back on once the command ran (context.settle).
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules "
        "if m.startswith('ipguard.cli.')), gc.isenabled(), file=sys.stderr))\n"
        "from ipguard.cli.main import run\n"
        f"sys.argv = ['ipguard', '--db', {str(tmp_path / 'l.db')!r}, 'runs', 'list']\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "scan runs" in done.stdout
    modules = [
        "ipguard.cli.context",
        "ipguard.cli.history",
        "ipguard.cli.main",
        "ipguard.cli.output",
        "ipguard.cli.streams",
    ]
    assert done.stderr.strip() == f"{modules} True"


def test_output_larger_than_a_pipe_arrives_whole_and_the_exit_code_with_it(tmp_path: Path) -> None:
    # The process ends with os._exit once the command is done: what it wrote must be flushed.
    exe = str(Path(sys.executable).with_name("ipguard"))
    env = {**os.environ, "IPGUARD_DB": str(tmp_path / "l.db")}
    ledger = tmp_path / "ledger.csv"
    rows = [
        f"10.1.{n // 250}.{n % 250 + 1},02:00:00:00:{n // 256:02x}:{n % 256:02x}"
        for n in range(3000)
    ]
    ledger.write_text("ip,mac\n" + "\n".join(rows) + "\n")
    subprocess.run([exe, "ledger", "import", str(ledger)], env=env, check=True, capture_output=True)
    listed = subprocess.run(
        [exe, "ledger", "list", "--format", "csv"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0
    assert len(listed.stdout) > 65_536  # more than a pipe holds: written while the reader reads
    assert len(listed.stdout.splitlines()) == 3001
    assert listed.stdout.splitlines()[-1].startswith("10.1.11.250,")
    failed = subprocess.run([exe, "ledger", "show", "10.9.9.9"], env=env, capture_output=True)
    assert failed.returncode != 0 and failed.stderr.startswith(b"error: ")


def test_a_bad_actor_name_is_blamed_on_where_it_came_from(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only --actor was ever named, even for a name that came from the environment (cron's).
    add = ("ledger", "add", "198.18.0.1", "02:00:00:00:00:01")
    monkeypatch.setenv("IPGUARD_ACTOR", "evil\x1b[31m")
    refused = cli(*add)
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: IPGUARD_ACTOR 'evil\\x1b[31m': contains control characters\n",
    )
    monkeypatch.delenv("IPGUARD_ACTOR")
    monkeypatch.setenv("LOGNAME", "two\nlines")
    refused = cli(*add)
    assert (refused.exit_code, refused.stderr) == (
        2,
        "error: the login name (LOGNAME, USER) 'two\\nlines': a name is one line of text; "
        "give --actor NAME\n",
    )
    assert cli("--actor", "root", *add).exit_code == 0


def test_names_too_long_for_the_file_system_are_one_error_line(cli: Cli) -> None:
    # Path checks raised OSError ENAMETOOLONG: a traceback and exit 1.
    long = "a" * 5000
    config = cli("--config", long, "prune", "--dry-run")
    assert (config.exit_code, config.stderr) == (
        2,
        "error: --config names a file that cannot be used: File name too long\n",
    )
    ledger = cli("ledger", "list", db=long)
    assert (ledger.exit_code, ledger.stderr) == (
        2,
        "error: --db names a file that cannot be used: File name too long\n",
    )


def test_a_system_error_nobody_expected_is_one_error_line_and_exit_3(
    cli: Cli, tmp_path: Path
) -> None:
    import errno
    import json

    from tests.fakes import FakeScanner

    config = tmp_path / "ipguard.toml"
    config.write_text('[scan]\nsubnets = ["198.18.0.0/24"]\n')
    cli.scanner = FakeScanner([], error=OSError(errno.ENETDOWN, "Network is down"))
    failed = cli("--config", str(config), "scan")
    assert (failed.exit_code, failed.stderr) == (
        3,
        "error: Network is down; --debug shows where it happened\n",
    )
    runs = json.loads(cli("runs", "list", "--format", "json").stdout)
    assert [run["status"] for run in runs] == ["failed"]
    debug = cli("--debug", "--config", str(config), "scan")
    assert debug.exit_code == 3 and "Traceback" in debug.stderr
