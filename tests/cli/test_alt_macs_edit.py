"""`ledger edit --mac` given one of the record's other MACs (`alt_macs`)."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

GATEWAY, ROUTER_1, ROUTER_2, NIC = (
    "198.18.0.1",
    "00:11:22:33:44:0a",
    "00:11:22:33:44:0b",
    "00:11:22:33:44:0c",
)


def test_making_a_failover_twin_the_records_mac_says_how_to_swap(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Router 1 of a keepalived pair was retired: its twin answers the gateway for good. `ledger
    # edit GATEWAY --mac TWIN` said "alt_macs 'TWIN': is the record's mac already", about an
    # option the administrator never gave, and not what to give.
    monkeypatch.setenv("IPGUARD_ACTOR", "tester")
    cli = Cli(sqlite_url)
    added = cli(
        "ledger", "add", GATEWAY, ROUTER_1, "--roles", "gateway", "--alt-macs", f"{ROUTER_2};{NIC}"
    )
    assert added.exit_code == 0
    refused = cli("ledger", "edit", GATEWAY, "--mac", ROUTER_2.upper())
    assert refused.exit_code == 2
    hint = f"give --mac {ROUTER_2} --alt-macs '{ROUTER_1};{NIC}'\n"
    assert refused.stderr.startswith(f"error: alt_macs '{ROUTER_2}': ") and refused.stderr.endswith(
        hint
    )
    swapped = cli("ledger", "edit", GATEWAY, "--mac", ROUTER_2, "--alt-macs", f"{ROUTER_1};{NIC}")
    assert swapped.exit_code == 0, swapped.stderr
