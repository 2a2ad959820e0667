"""Pieces of the sweeps that need no network: vendor lookup, kernel filters, frame templates."""

from __future__ import annotations

import pytest

from ipguard.scanners import rawsock
from ipguard.scanners.arp import _reply_filter, _request_template, lookup_vendors
from ipguard.scanners.icmp import _echo_template, ones_sum, patch_echo


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


def test_arp_request_template_is_the_frame_scapy_builds() -> None:
    """Built with struct (scapy stays off the sweep path); scapy is the independent oracle."""
    from scapy.layers.l2 import ARP, Ether

    frame = _request_template("aa:bb:cc:dd:ee:01", "198.19.0.254")
    expected = Ether(dst="ff:ff:ff:ff:ff:ff", src="aa:bb:cc:dd:ee:01") / ARP(
        op="who-has", hwsrc="aa:bb:cc:dd:ee:01", psrc="198.19.0.254", pdst="0.0.0.0"
    )
    assert frame == bytes(expected)


@pytest.mark.parametrize("seq", [0, 1, 0x1234, 0xFFFF])
def test_patched_echo_checksum_matches_a_full_computation(seq: int) -> None:
    """The sweep's own patch, checked against scapy's full checksum of the same packet."""
    from scapy.layers.inet import ICMP

    template = _echo_template(0xBEEF)
    assert bytes(ICMP(type="echo-request", id=0xBEEF, seq=0) / template[8:])[4:] == template[4:]
    packet = bytearray(template)
    patch_echo(packet, ones_sum(template), seq)
    rebuilt = ICMP(bytes(packet))
    assert (rebuilt.type, rebuilt.id, rebuilt.seq) == (8, 0xBEEF, seq)
    del rebuilt.chksum  # scapy recomputes it over the whole packet
    assert bytes(rebuilt) == bytes(packet)
