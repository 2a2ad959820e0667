"""Field parsing: canonical addresses, roles, services, flags and dates, and exact inverses."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipguard.fields import (
    FieldError,
    binding_from_fields,
    binding_to_fields,
    parse_bool,
    parse_date,
    parse_ip,
    parse_mac,
    parse_roles,
    parse_services,
    parse_status,
)
from ipguard.model import Binding, DeviceStatus, Role, Service


@pytest.mark.parametrize(
    "text",
    [
        "AA-BB-CC-DD-EE-01",
        "aabb.ccdd.ee01",
        "aabbccddee01",
        "aa:bb:cc:dd:ee:01",
        " AA:BB:CC:DD:EE:01 ",
    ],
)
def test_mac_notations_are_canonicalised(text: str) -> None:
    assert parse_mac(text) == "aa:bb:cc:dd:ee:01"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "required"),
        ("zz:zz", "not a MAC"),
        ("1.2.3.4", "not a MAC"),
        ("00:00:00:00:00:00", "all-zero"),
        ("ff:ff:ff:ff:ff:ff", "multicast or broadcast"),
        ("01:00:5e:00:00:01", "multicast or broadcast"),
        ("aa:bb:cc:dd:ee:ff:00:11", "not a MAC"),
    ],
)
def test_bad_macs_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(FieldError, match=reason):
        parse_mac(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("10.20.1.7", "10.20.1.7"), (" 198.18.0.1 ", "198.18.0.1"), ("2001:DB8::0:1", "2001:db8::1")],
)
def test_ips_are_canonicalised(text: str, canonical: str) -> None:
    assert parse_ip(text) == canonical


@pytest.mark.parametrize(
    "text", ["", "10.20.1", "10.20.1.256", "0.0.0.0", "224.0.0.1", "host-7", "10.0.0.0/24"]
)
def test_bad_ips_are_refused(text: str) -> None:
    with pytest.raises(FieldError):
        parse_ip(text)


def test_roles_default_to_host_and_refuse_unknown_names() -> None:
    assert parse_roles("") == {Role.HOST}
    assert parse_roles("Gateway; router") == {Role.GATEWAY, Role.ROUTER}
    with pytest.raises(FieldError, match="unknown role 'wifi'"):
        parse_roles("host;wifi")


@pytest.mark.parametrize(
    "text", ["tcp/22;http", "tcp/0", "tcp/65536", "icmp/1", "tcp22", "tcp/22/33"]
)
def test_malformed_services_are_refused(text: str) -> None:
    with pytest.raises(FieldError):
        parse_services(text)


def test_services_parse_in_any_case_and_order() -> None:
    assert parse_services("UDP/161; tcp/22;") == {Service("udp", 161), Service("tcp", 22)}


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("YES", True), ("1", True), ("no", False), ("", False), ("0", False)],
)
def test_flags(text: str, value: bool) -> None:
    assert parse_bool(text, "isolated") is value


def test_bad_flag_status_and_date_are_refused() -> None:
    with pytest.raises(FieldError):
        parse_bool("maybe", "isolated")
    with pytest.raises(FieldError, match="active, suspended or retired"):
        parse_status("gone")
    with pytest.raises(FieldError, match="not a date"):
        parse_date("2026-13-01", "guest_until")
    assert parse_date("2026-12-31", "guest_until") == date(2026, 12, 31)
    assert parse_date("2026-12-31T00:00:00", "guest_until") == date(2026, 12, 31)


def test_text_fields_refuse_control_characters() -> None:
    with pytest.raises(FieldError, match="control characters"):
        binding_from_fields({"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "owner": "Li\x1b[31m"})


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x7f"),
    max_size=30,
).map(str.strip)


@given(
    ip=st.ip_addresses(v=4)
    .filter(lambda a: not (a.is_multicast or a.is_reserved or a.is_loopback or a.packed[0] == 0))
    .map(str),
    mac_int=st.integers(min_value=1, max_value=2**48 - 1).filter(lambda n: not (n >> 40) & 1),
    owner=_text,
    notes=_text,
    roles=st.frozensets(st.sampled_from(list(Role)), min_size=1),
    services=st.frozensets(
        st.builds(Service, st.sampled_from(["tcp", "udp"]), st.integers(1, 65535))
    ),
    status=st.sampled_from(list(DeviceStatus)),
    isolated=st.booleans(),
    guest=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
)
def test_fields_round_trip_exactly(
    ip, mac_int, owner, notes, roles, services, status, isolated, guest
) -> None:
    mac = ":".join(f"{(mac_int >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))
    binding = Binding(
        ip=ip,
        mac=mac,
        owner=owner,
        notes=notes,
        roles=roles,
        allowed_services=services,
        status=status,
        isolated=isolated,
        guest_until=guest,
    )
    assert binding_from_fields(binding_to_fields(binding)) == binding


@pytest.mark.parametrize("text", ["2027/1/31", "2027-1-31", "2027/01/31", "2027.1.31"])
def test_a_year_first_date_as_chinese_excel_writes_it_is_read(text: str) -> None:
    assert parse_date(text, "guest_until") == date(2027, 1, 31)


@pytest.mark.parametrize("text", ["31/01/2027", "1/31/2027", "01.02.2027", "2027/2/30", "27/1/31"])
def test_a_date_not_year_first_or_not_a_day_is_refused(text: str) -> None:
    with pytest.raises(FieldError, match="not a date") as raised:
        parse_date(text, "guest_until")
    # A spreadsheet's locale order (31/01/2027, 1/31/2027) is named as such.
    assert ("either way round" in raised.value.reason) == (not text.startswith("2027"))


@pytest.mark.parametrize(
    ("parse", "text"),
    [(parse_roles, "server, printer"), (parse_services, "tcp/22,tcp/80")],
)
def test_a_list_separated_by_commas_says_to_use_semicolons(parse: object, text: str) -> None:
    with pytest.raises(FieldError, match="separate them with ';'"):
        parse(text)  # type: ignore[operator]
