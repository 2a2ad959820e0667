"""Pieces of the sweeps that need no network: vendor lookup, kernel filters, frame templates."""

from __future__ import annotations

import pytest

from ipguard.scanners import rawsock
from ipguard.scanners.arp import _reply_filter, _request_template, lookup_vendors
from ipguard.scanners.icmp import _echo_template, _ones_sum


@pytest.mark.parametrize(
    ("mac", "vendor"),
    [
        ("00:1b:21:12:34:56", "Intel Corporate"),
        ("02:c6:13:00:01:00", None),  # locally administered: no registry entry
        ("00:00:00:00:00:01", "XEROX CORPORATION"),
    ],
)
def test_vendor_from_the_ieee_registry(mac: str, vendor: str | None) -> None:
    assert lookup_vendors([mac]) == {mac: vendor}


def test_match_all_jumps_to_the_final_reject() -> None:
    a, b = rawsock.Insn(rawsock.LDH_ABS, k=12), rawsock.Insn(rawsock.LDB_ABS, k=23)
    program = rawsock.match_all([(a, 0x0800), (b, 1)], 64)
    assert program == [
        a,
        rawsock.Insn(rawsock.JEQ_K, 0, 3, 0x0800),  # → index 5
        b,
        rawsock.Insn(rawsock.JEQ_K, 0, 1, 1),  # → index 5
        rawsock.Insn(rawsock.RET_K, k=64),
        rawsock.Insn(rawsock.RET_K, k=0),
    ]


def test_arp_reply_filter_checks_ethertype_opcode_and_our_address() -> None:
    program = _reply_filter(bytes([198, 19, 0, 254]))
    checks = [(i.code, i.k) for i in program if i.code != rawsock.JEQ_K]
    values = [i.k for i in program if i.code == rawsock.JEQ_K]
    assert checks[:3] == [(rawsock.LDH_ABS, 12), (rawsock.LDH_ABS, 20), (rawsock.LDW_ABS, 38)]
    assert values == [0x0806, 2, 0xC61300FE]


def test_arp_request_template() -> None:
    frame = _request_template("aa:bb:cc:dd:ee:01", "198.19.0.254")
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("aabbccddee01")
    assert frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01"
    assert frame[28:32] == bytes([198, 19, 0, 254]) and frame[38:42] == bytes(4)


@pytest.mark.parametrize("seq", [0, 1, 0x1234, 0xFFFF])
def test_patched_echo_checksum_matches_a_full_computation(seq: int) -> None:
    template = bytearray(_echo_template(0xBEEF))
    total = _ones_sum(template) + seq
    total = (total & 0xFFFF) + (total >> 16)
    template[2:4] = (~total & 0xFFFF).to_bytes(2, "big")
    template[6:8] = seq.to_bytes(2, "big")
    assert _ones_sum(template) == 0xFFFF  # a correct checksum makes the sum all ones
    from scapy.layers.inet import ICMP

    assert ICMP(bytes(template)).chksum == int.from_bytes(template[2:4], "big")
    rebuilt = ICMP(bytes(template))
    del rebuilt.chksum
    assert bytes(rebuilt) == bytes(template)
