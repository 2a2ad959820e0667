"""The one IP and MAC parser and the one IP sort key (ipguard.addresses), used by every layer."""

from __future__ import annotations

import pytest

from ipguard.addresses import AddressError, ip_sort_key, parse_ip, parse_mac


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12345", "not a MAC"),  # netaddr alone reads it as the integer 12345
        ("1122334455", "not a MAC"),  # a spreadsheet number that lost its leading zeros
        ("0011223344556", "not a MAC"),  # 13 digits: a typo, not some other MAC
        ("0x001122334455", "not a MAC"),
        ("00 11 22 33 44 55", "not a MAC"),
        ("02:00:00", "not a MAC"),  # netaddr would pad it to 00:02:00:00:00:00
        ("01:00:5e:00:00:01", "multicast or broadcast"),
        ("00-00-00-00-00-00", "all-zero"),
    ],
)
def test_only_textual_unicast_macs_are_accepted(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_mac(text)


@pytest.mark.parametrize(
    "text", ["00:11:22:33:44:55", "00-11-22-33-44-55", "0011.2233.4455", "001122334455"]
)
def test_textual_mac_notations_are_canonical(text: str) -> None:
    assert parse_mac(text) == "00:11:22:33:44:55"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("::ffff:10.0.0.1", "register it as 10.0.0.1"),
        ("255.255.255.255", "reserved or broadcast"),
        ("240.0.0.1", "reserved or broadcast"),
        ("fe80::1%eth0", "zone index"),
        ("fe80::1%1", "zone index"),
    ],
)
def test_mapped_reserved_and_scoped_addresses_are_refused(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_ip(text)


def test_ipv6_host_addresses_stay_possible() -> None:
    assert parse_ip("2001:DB8::0:1") == "2001:db8::1"
    assert parse_ip("fe80::1") == "fe80::1"
    assert parse_ip("fd00::7") == "fd00::7"


def test_sort_key_orders_numerically_v4_before_v6_and_junk_last() -> None:
    given = ["host-7", "10.0.0.10", None, "2001:db8::1", "10.0.0.9", "9.255.255.255", ""]
    assert sorted(given, key=ip_sort_key) == [
        None,
        "",
        "9.255.255.255",
        "10.0.0.9",
        "10.0.0.10",
        "2001:db8::1",
        "host-7",
    ]


@pytest.mark.parametrize("text", ["0011-2233-4455", "0011-2233-4455 ", "0011:2233:4455"])
def test_huawei_and_h3c_mac_spelling_is_read(text: str) -> None:
    # `display arp` on Huawei VRP and H3C Comware prints MACs as three dash-separated groups.
    assert parse_mac(text) == "00:11:22:33:44:55"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.12E+11", "1.12E+11 is a number in scientific notation"),
        ("1122334455", "1122334455 is a number"),
        ("11223344556.0", "a number"),
    ],
)
def test_a_mac_a_spreadsheet_turned_into_a_number_says_so(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=r"^not a MAC address") as raised:
        parse_mac(text)
    assert reason in str(raised.value) and "format the column as Text" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("0.1.2.3", "this network"),
        ("010.001.002.003", "leading zeros are ambiguous (010 is 8 to some tools): write 10.1.2.3"),
        ("10.0.0.01", "write 10.0.0.1"),
        ("10.0.0.300", "not an IP address"),
        ("010.0.0.300", "not an IP address"),
    ],
)
def test_addresses_no_device_holds_or_that_read_two_ways_are_refused(
    text: str, reason: str
) -> None:
    with pytest.raises(AddressError) as raised:
        parse_ip(text)
    assert reason in str(raised.value)
    assert ("leading zeros" in str(raised.value)) == ("write" in reason)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("１０.０.０.１", "10.0.0.1"),
        ("10。0。0。1", "10.0.0.1"),
        ("２００１：ｄｂ８：：１", "2001:db8::1"),
    ],
)
def test_addresses_typed_with_a_chinese_input_method_are_read(text: str, canonical: str) -> None:
    # Full-width digits and colons, and the ideographic full stop, are what an input method left
    # in Chinese mode types: every administrator reads them as the ASCII address.
    assert parse_ip(text) == canonical


def test_a_full_width_mac_is_read() -> None:
    assert parse_mac("００：１１：２２：３３：４４：５５") == "00:11:22:33:44:55"
    assert parse_mac("００－１１－２２－３３－４４－５５") == "00:11:22:33:44:55"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.1/32", "not an IP address: a network; give the address alone (10.0.0.1)"),
        ("2001:db8::1/128", "a network; give the address alone (2001:db8::1)"),
        ("10.0.0.0/24", "not an IP address: a network, not one device's address"),
        ("02:00:00:00:00:01", "not an IP address: a MAC address (are the columns swapped?)"),
    ],
)
def test_an_ip_written_otherwise_says_what_it_is(text: str, reason: str) -> None:
    with pytest.raises(AddressError) as raised:
        parse_ip(text)
    assert reason in str(raised.value)
