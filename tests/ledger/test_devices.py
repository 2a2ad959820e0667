"""Managing bindings from the command line, and the audit trail every change leaves."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import Cli


def show(cli: Cli, key: str) -> list[dict[str, str]]:
    result = cli("ledger", "show", key, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_add_normalises_and_show_finds_by_ip_or_mac(cli: Cli) -> None:
    result = cli(
        "ledger",
        "add",
        "10.0.0.5",
        "AA-BB-CC-00-00-05",
        "--owner",
        "李伟",
        "--roles",
        "server;host",
        "--services",
        "tcp/80;tcp/22",
        "--isolated",
        "--guest-until",
        "2027-01-01",
    )
    assert result.exit_code == 0, result.stderr
    (record,) = show(cli, "aabb.cc00.0005")
    assert record["ip"] == "10.0.0.5" and record["mac"] == "aa:bb:cc:00:00:05"
    assert record["roles"] == "host;server" and record["allowed_services"] == "tcp/22;tcp/80"
    assert record["isolated"] == "true" and record["guest_until"] == "2027-01-01"
    assert show(cli, "10.0.0.5") == [record]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("10.0.0.300", "02:00:00:00:00:01"), "ip '10.0.0.300': not an IP address"),
        (("10.0.0.1", "02:00"), "mac '02:00': not a MAC address"),
        (("10.0.0.1", "02:00:00:00:00:01", "--roles", "wifi"), "unknown role 'wifi'"),
        (("10.0.0.1", "02:00:00:00:00:01", "--status", "gone"), "status must be active"),
        (("10.0.0.1", "02:00:00:00:00:01", "--guest-until", "tomorrow"), "not a date"),
    ],
)
def test_add_refuses_bad_values_with_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli("ledger", "add", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert json.loads(cli("ledger", "list", "--format", "json").stdout) == []


def test_an_active_ip_is_registered_once_but_a_mac_may_hold_several(cli: Cli) -> None:
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01").exit_code == 0
    assert cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:01").exit_code == 0
    result = cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:09")
    assert result.exit_code == 2 and "already registered to 02:00:00:00:00:01" in result.stderr
    result = cli("ledger", "edit", "02:00:00:00:00:01", "--owner", "x")
    assert (
        result.exit_code == 2
        and "holds 2 active records (10.0.0.1, 10.0.0.2); name the IP" in result.stderr
    )


def test_edit_changes_only_given_fields_and_moves_ip(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "李伟", "--location", "B2")
    assert cli("ledger", "edit", "10.0.0.1", "--location", "B3", "--ip", "10.0.0.7").exit_code == 0
    (record,) = show(cli, "02:00:00:00:00:01")
    assert (record["ip"], record["owner"], record["location"]) == ("10.0.0.7", "李伟", "B3")
    result = cli("ledger", "edit", "10.0.0.1", "--owner", "x")
    assert result.exit_code == 2 and "no active ledger record for IP 10.0.0.1" in result.stderr


def test_edit_refuses_moving_onto_a_taken_ip(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:02")
    result = cli("ledger", "edit", "10.0.0.2", "--ip", "10.0.0.1")
    assert result.exit_code == 2 and "IP 10.0.0.1 is already registered" in result.stderr


def test_remove_retires_and_purge_deletes(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:02")
    assert cli("ledger", "remove", "10.0.0.1").exit_code == 0
    assert show(cli, "10.0.0.1")[0]["status"] == "retired"
    # The address is free again for a new registration.
    assert cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:03").exit_code == 0
    assert cli("ledger", "remove", "10.0.0.2", "--purge").exit_code == 0
    result = cli("ledger", "show", "10.0.0.2")
    assert result.exit_code == 2 and "no ledger record for 10.0.0.2" in result.stderr


def test_history_records_every_change_with_actor_before_and_after(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01", "--owner", "李伟")
    cli("--actor", "王芳", "ledger", "edit", "10.0.0.1", "--owner", "张三")
    cli("ledger", "edit", "10.0.0.1", "--ip", "10.0.0.9")
    cli("ledger", "remove", "10.0.0.9")
    entries = json.loads(cli("ledger", "history", "02:00:00:00:00:01", "--format", "json").stdout)
    assert [e["action"] for e in entries] == [
        "device.add",
        "device.edit",
        "device.edit",
        "device.edit",
        "device.retire",
    ]
    assert entries[1]["actor"] == "王芳" and entries[0]["actor"] == "tester"
    assert entries[1]["before"]["owner"] == "李伟" and entries[1]["after"]["owner"] == "张三"
    # The move is found from the old address too.
    old = json.loads(cli("ledger", "history", "10.0.0.1", "--format", "json").stdout)
    assert old[-1]["after"]["ip"] == "10.0.0.9"
    table = cli("ledger", "history", "10.0.0.1").stdout
    assert "owner: '李伟' → '张三'" in table


def test_the_database_refuses_to_change_or_delete_audit_rows(cli: Cli, db_url: str) -> None:
    cli("ledger", "add", "10.0.0.1", "02:00:00:00:00:01")
    engine = sa.create_engine(db_url)
    for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    engine.dispose()
    assert len(json.loads(cli("ledger", "history", "10.0.0.1", "--format", "json").stdout)) == 1


def test_no_command_can_modify_the_audit_trail(cli: Cli) -> None:
    from typer.main import get_command

    from ipguard.cli.main import app

    def walk(command, path=()):  # every command path of the CLI
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    paths = {" ".join(p) for p in walk(get_command(app))}
    assert not any("audit" in path for path in paths)
    assert "ledger history" in paths


def test_list_filters_and_formats(cli: Cli) -> None:
    cli("ledger", "add", "10.0.0.2", "02:00:00:00:00:02", "--department", "math")
    cli(
        "ledger",
        "add",
        "10.0.0.10",
        "02:00:00:00:00:10",
        "--department",
        "physics",
        "--status",
        "suspended",
    )
    rows = json.loads(cli("ledger", "list", "--format", "json").stdout)
    assert [r["ip"] for r in rows] == ["10.0.0.2", "10.0.0.10"]  # numeric order
    rows = json.loads(cli("ledger", "list", "--status", "suspended", "--format", "json").stdout)
    assert [r["ip"] for r in rows] == ["10.0.0.10"]
    csv_out = cli("ledger", "list", "--department", "math", "--format", "csv").stdout.splitlines()
    assert len(csv_out) == 2 and csv_out[1].startswith("10.0.0.2,,02:00:00:00:00:02")
    table = cli("ledger", "list").stdout
    assert "10.0.0.10" in table and "suspended" in table


def test_hostile_text_is_escaped_in_tables(cli: Cli, tmp_path) -> None:
    path = tmp_path / "in.json"
    path.write_text(
        json.dumps(
            [
                {
                    "ip": "10.0.0.1",
                    "mac": "02:00:00:00:00:01",
                    "owner": "[bold]x[/bold]",
                    "notes": "a\nb",
                }
            ]
        )
    )
    assert cli("ledger", "import", str(path)).exit_code == 0
    out = cli("ledger", "show", "10.0.0.1").stdout
    assert "[bold]x[/bold]" in out and "a\\nb" in out
