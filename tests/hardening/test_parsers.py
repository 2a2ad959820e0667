"""Property tests: every parser of input files and network replies, fed anything at all.

Each parser may only fail with its documented error type (LedgerFileError, ConfigError, FieldError,
ValueError …) or answer None; never with anything else, never hang. Valid data round-trips.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ipguard.config import check_hostname_rule, parse_port_spec, parse_settings
from ipguard.errors import ConfigError, LedgerFileError
from ipguard.fields import (
    FieldError,
    binding_from_fields,
    binding_to_fields,
    parse_mac,
)
from ipguard.ledger import files
from ipguard.ledger.importer import validate_rows
from ipguard.model import LEDGER_FIELDS
from ipguard.scanners import arp, dhcp, dnswire, http, icmp, nmapfacts, sweep, upnp
from ipguard.scanners.probing import ProbeLog, run_schedule
from ipguard.scanners.rawsock import InterfaceInfo
from ipguard.scanners.sweep import Link, ReplyBudget

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FEW = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Text that hurts: terminal escapes, HTML, formulas, NUL, bidi overrides, surrogates, huge.
HOSTILE = [
    "\x1b[31mred\x1b[0m",
    "\x1b]0;pwned\x07",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://198.19.200.9","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "a\x00b",
    "\u202eevil\u202c",
    "\ud800",
    "\x9b31m",
    "tag\U000e0041\u3164",
    "x" * 70_000,
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=200))


def shown_as_is(text: str) -> bool:
    """Whether a scanner's one line of text holds nothing `ipguard.escape.visible` would escape.

    That is the one rule every output follows: no control, format, bidi or line-breaking
    character survives, while letters and spaces of any script (李\u3000伟) do.
    """
    from ipguard.escape import visible

    return visible(text) == text


# --- ledger files ----------------------------------------------------------------------------


def read(tmp_path: Path, data: bytes, fmt: str) -> list[files.FileRow] | None:
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    try:
        rows = files.read_rows(str(path), fmt)
    except LedgerFileError:
        return None
    for row in rows:
        assert isinstance(row.line, int)
        assert all(isinstance(value, str) for value in row.values.values())
        assert set(row.values) <= set(LEDGER_FIELDS)
    try:
        validate_rows(str(path), rows)
    except LedgerFileError as error:
        assert error.problems
    return rows


@PROPERTY
@given(st.binary(max_size=2000))
@example(b"ip,mac\n\x00")
@example(b"\xff\xfe\x00i")
@example(b'ip,mac\n"unterminated')
def test_csv_reader_takes_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    read(tmp_path_factory.mktemp("csv"), data, "csv")


header_line = ",".join(LEDGER_FIELDS)


@PROPERTY
@given(st.lists(st.lists(hostile_text, max_size=18), max_size=8))
def test_csv_reader_takes_any_cells(
    tmp_path_factory: pytest.TempPathFactory, table: list[list[str]]
) -> None:
    buffer = io.StringIO()
    import csv

    writer = csv.writer(buffer)
    writer.writerow(LEDGER_FIELDS)
    for cells in table:
        writer.writerow(cells)
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    read(tmp_path_factory.mktemp("csv"), data, "csv")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@PROPERTY
@given(
    st.one_of(
        json_values,
        st.lists(st.dictionaries(st.sampled_from(LEDGER_FIELDS), json_values), max_size=5),
    )
)
@example([{"ip": "198.18.0.1", "mac": "02:00:00:00:00:01", "notes": "\ud800"}])
@example([{"ip": "198.18.0.1", "mac": "02:00:00:00:00:01", "notes": "a\x00b"}])
def test_json_reader_takes_any_document(
    tmp_path_factory: pytest.TempPathFactory, document: object
) -> None:
    data = json.dumps(document).encode()
    read(tmp_path_factory.mktemp("json"), data, "json")


@FEW
@given(st.binary(max_size=3000))
def test_xlsx_reader_takes_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    read(tmp_path_factory.mktemp("xlsx"), data, "xlsx")


xlsx_cells = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.datetimes(min_value=datetime(1901, 1, 1)),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=60),
)


@FEW
@given(st.lists(st.lists(xlsx_cells, max_size=17), max_size=6))
def test_xlsx_reader_takes_any_cells(
    tmp_path_factory: pytest.TempPathFactory, table: list[list[object]]
) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(LEDGER_FIELDS))
    for cells in table:
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    read(tmp_path_factory.mktemp("xlsx"), buffer.getvalue(), "xlsx")


# Text a ledger field accepts: anything but controls, bidi overrides, lone surrogates and the
# noncharacters (U+FDD0-U+FDEF, U+FFFE, U+FFFF: no XLSX cell may hold them); formulas, HTML and
# every script included.
NONCHARACTERS = "".join(map(chr, range(0xFDD0, 0xFDF0))) + "\ufffe\uffff"
field_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
        blacklist_characters="\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        + NONCHARACTERS,
    ),
    max_size=40,
).map(str.strip)
macs = st.binary(min_size=6, max_size=6).map(lambda raw: bytes([raw[0] & 0xFE | 0x02]) + raw[1:])
bindings = st.builds(
    lambda ip, mac, texts, roles, services, flags: binding_from_fields(
        {
            "ip": socket.inet_ntoa(struct.pack("!I", ip)),
            "mac": mac.hex(":"),
            **dict(
                zip(("hostname", "owner", "department", "location", "notes"), texts, strict=True)
            ),
            "roles": ";".join(roles),
            "allowed_services": ";".join(f"tcp/{port}" for port in services),
            "status": flags[0],
            "isolated": flags[1],
        }
    ),
    st.integers(0x0A000001, 0x0AFFFFFE),
    macs,
    st.lists(field_text, min_size=5, max_size=5),
    st.lists(st.sampled_from(["host", "server", "router", "printer"]), max_size=3),
    st.lists(st.integers(1, 65535), max_size=3),
    st.tuples(
        st.sampled_from(["active", "suspended", "retired"]), st.sampled_from(["true", "false"])
    ),
)


@pytest.mark.parametrize("fmt", files.FORMATS)
@FEW
@given(st.lists(bindings, min_size=1, max_size=5, unique_by=lambda b: b.ip))
def test_export_then_import_is_lossless(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, records: list
) -> None:
    path = tmp_path_factory.mktemp("roundtrip") / f"ledger.{fmt}"
    rows = [files.ExportRow(binding_to_fields(binding)) for binding in records]
    files.write(str(path), fmt, rows)
    back = files.read_rows(str(path), fmt)
    again = [binding for _line, binding in validate_rows(str(path), back)]
    assert [binding_to_fields(b) for b in again] == [binding_to_fields(b) for b in records]


@PROPERTY
@given(hostile_text)
def test_spreadsheet_escape_round_trips_and_neutralises(text: str) -> None:
    escaped = files.escape_cell(text)
    assert files.unescape_cell(escaped) == text
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))


@PROPERTY
@given(st.dictionaries(st.sampled_from(LEDGER_FIELDS), hostile_text))
@example({"ip": "198.18.0.1", "mac": "02:00:00:00:00:01", "notes": "\ud800"})
@example({"ip": "198.18.0.1", "mac": "02:00:00:00:00:01", "owner": "\udcff"})
def test_fields_fail_only_with_field_error(values: dict[str, str]) -> None:
    try:
        binding = binding_from_fields(values)
    except FieldError as error:
        assert error.reason
        return
    # What a field accepts can be stored (UTF-8 encodable) and exported to every format.
    for text in binding_to_fields(binding).values():
        text.encode("utf-8")


@PROPERTY
@given(st.text(max_size=40) | st.binary(max_size=12).map(lambda b: b.hex(":")))
def test_mac_parser(text: str) -> None:
    try:
        mac = parse_mac(text)
    except FieldError:
        return
    assert parse_mac(mac) == mac and len(mac) == 17


# --- configuration ---------------------------------------------------------------------------

toml_values = st.recursive(
    st.none().map(lambda _: "") | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=10,
)
config_documents = st.dictionaries(
    st.sampled_from(["scan", "policy", "retention", "alerts", "names", "other"]),
    st.dictionaries(
        st.sampled_from(
            [
                "interface",
                "subnets",
                "rate",
                "retries",
                "timeout",
                "services",
                "ports",
                "site",
                "full_rescan_hours",
                "default_allowed_services",
                "hostname_rule",
                "stale_after_days",
                "unregistered_grace_days",
                "fail_on",
                "severity",
                "days",
                "urls",
                "min_severity",
                "dns_servers",
                "unknown",
            ]
        ),
        toml_values,
    )
    | toml_values,
)


@PROPERTY
@given(config_documents)
@example({"scan": {"timeout": float("nan")}})
@example({"scan": {"subnets": ["198.18.0.0/33"]}})
@example({"policy": {"hostname_rule": "(" * 200}})
@example({"policy": {"severity": {"hostname-policy": ["x"]}}})
def test_config_parser_fails_only_with_config_error(document: dict) -> None:
    try:
        parse_settings(document, "ipguard.toml")
    except ConfigError as error:
        assert str(error).startswith("ipguard.toml")


@PROPERTY
@given(st.binary(max_size=400))
def test_config_file_reader_takes_any_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    from ipguard.config import load_settings

    path = tmp_path_factory.mktemp("toml") / "ipguard.toml"
    path.write_bytes(data)
    try:
        settings_read = load_settings(str(path))
    except ConfigError as error:
        assert str(error).startswith("error") or str(path) in str(error), error
        return
    # A UTF-8 byte order mark (Notepad) is not part of the document.
    assert settings_read == parse_settings(tomllib.loads(data.decode("utf-8-sig")), str(path))


@PROPERTY
@given(hostile_text)
def test_port_spec_and_hostname_rule(text: str) -> None:
    with contextlib.suppress(ConfigError):
        normalised = parse_port_spec(text)
        assert parse_port_spec(normalised) == normalised  # the normal form is a fixed point
    try:
        check_hostname_rule(text, "rule")
    except ConfigError as error:
        assert str(error).startswith("rule"), error


# --- DNS / NetBIOS / mDNS wire format --------------------------------------------------------


def dns_message(draw: st.DrawFn) -> bytes:
    """A header, then random sections: plausible enough to get past the first checks."""
    counts = draw(st.tuples(*(st.integers(0, 4) for _ in range(4))))
    head = struct.pack("!HHHHHH", draw(st.integers(0, 65535)), 0x8400, *counts)
    return head + draw(st.binary(max_size=300))


@PROPERTY
@given(st.binary(max_size=600) | st.composite(dns_message)())
@example(b"\x00" * 12 + b"\xc0\x0c")
@example(struct.pack("!HHHHHH", 1, 0x8400, 0, 1, 0, 0) + b"\xc0\x0c" * 200)
def test_dns_parser_raises_only_value_error(data: bytes) -> None:
    try:
        message = dnswire.parse(data)
    except ValueError:
        return
    for record in message.records:
        try:
            name = message.name_at(record.offset)
        except ValueError:
            continue
        assert len(dnswire.text(name)) <= dnswire.NAME_LIMIT
        if record.rtype == dnswire.TYPE_NBSTAT:
            try:
                for name_text, _suffix, _group in dnswire.netbios_names(record.rdata):
                    assert len(name_text) <= dnswire.NAME_LIMIT
            except ValueError:
                pass


@PROPERTY
@given(st.binary(max_size=400))
def test_netbios_table_raises_only_value_error(data: bytes) -> None:
    try:
        names = dnswire.netbios_names(data)
    except ValueError:
        return
    assert len(names) == data[0]  # one entry per name the table's count announces
    for name, suffix, _group in names:
        assert len(name) <= 15 and 0 <= suffix <= 255  # 15 bytes of name, then the suffix


@PROPERTY
@given(st.binary(max_size=300), st.integers(0, 400))
def test_name_reader_never_loops(data: bytes, offset: int) -> None:
    try:
        name, end = dnswire.read_name(data, offset)
    except ValueError:
        return
    assert len(name) <= dnswire.MAX_LABELS and end <= len(data)


# --- DHCP offers -----------------------------------------------------------------------------


def offer_frame(draw: st.DrawFn) -> bytes:
    """An Ethernet/IPv4/UDP/BOOTP frame with a random tail of DHCP options."""
    xid = 0x1234ABCD
    options = draw(st.binary(max_size=200))
    bootp = (
        bytes([2, 1, 6, 0])
        + struct.pack("!I", xid)
        + bytes(8)  # secs, flags, ciaddr
        + socket.inet_aton("198.18.0.150")  # yiaddr
        + bytes(8)  # siaddr, giaddr
        + bytes(16)
        + bytes(192)
        + b"\x63\x82\x53\x63"
        + draw(st.sampled_from([b"\x35\x01\x02", b"", b"\x35\x00", b"\x35\xff\x02"]))
        + options
    )
    udp = struct.pack("!HHHH", 67, 68, 8 + len(bootp), 0) + bootp
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton("198.18.0.36"),
        socket.inet_aton("255.255.255.255"),
    )
    frame = b"\xff" * 6 + b"\x02\x18\x00\x00\x00\x36" + b"\x08\x00" + ip + udp
    cut = draw(st.integers(0, len(frame)))
    return frame if draw(st.booleans()) else frame[:cut]


@PROPERTY
@given(st.binary(max_size=700) | st.composite(offer_frame)())
def test_dhcp_offer_parser_never_raises(frame: bytes) -> None:
    offer = dhcp.parse_offer(frame, 0x1234ABCD, datetime.now(UTC))
    if offer is not None:
        socket.inet_aton(offer.offered_ip)
        assert all(socket.inet_aton(ip) for ip in offer.dns)


# --- ARP and ICMP replies --------------------------------------------------------------------


def _log(count: int) -> ProbeLog:
    """The log of a real (instant, packet-free) schedule over `count` targets."""
    return run_schedule(count, lambda _batch: None, list, rate=1e6, retries=0, timeout=0.0)


_SOCKETS = socket.socketpair()  # what a link holds; the receive path never touches them
_IFACE = InterfaceInfo("eth0", 2, "02:00:00:00:00:02", "198.18.0.2", 24, True, True)


def _receive(link: Link, packed: list[bytes], frames: list[bytes]) -> tuple[ReplyBudget, list]:
    """The receive path of a sweep that asked every target: the budget, then the parsing."""
    index = {ip: i for i, ip in enumerate(packed)}
    budget = ReplyBudget(index, link)
    budget.asking(range(len(packed)))
    records = [(1.5, frame) for frame in frames if budget(frame)]
    found = sweep._observations(records, index, packed, link, _log(len(packed)), 1e9)
    assert len(found) == len(records)  # every kept reply is an observation
    assert len(records) + budget.unsolicited + budget.over_limit == len(frames)
    return budget, found


ARP_SAMPLES = [
    b"\x02" * 6
    + bytes([2, 0, 0, 0, 0, n])
    + b"\x08\x06"
    + bytes.fromhex("0001080006040002")
    + bytes([2, 0, 0, 0, 0, n])
    + socket.inet_aton(f"198.18.0.{20 + n % 3}")
    + b"\x02" * 6
    + socket.inet_aton("198.18.0.2")
    for n in range(40)
]


@PROPERTY
@given(
    st.lists(st.binary(max_size=80) | st.sampled_from(ARP_SAMPLES), max_size=200),
    st.binary(min_size=4, max_size=4),
)
def test_arp_receive_path_takes_any_frames_and_keeps_a_bounded_few(
    frames: list[bytes], target: bytes
) -> None:
    packed = list(
        dict.fromkeys([socket.inet_aton("198.18.0.20"), socket.inet_aton("198.18.0.21"), target])
    )
    link = arp._ArpLink(_SOCKETS[0], None, packed, _IFACE)  # type: ignore[arg-type]  # never sends
    _budget, found = _receive(link, packed, frames)
    per_address = arp.MAX_MACS_PER_ADDRESS + arp.MAX_REPEATS_PER_ADDRESS
    assert len(found) <= len(packed) * per_address
    for seen in found:
        assert seen.ip in {socket.inet_ntoa(ip) for ip in packed} and seen.source == "arp"
        assert seen.mac is not None and len(seen.mac) == 17


@PROPERTY
@given(st.lists(st.binary(max_size=80), max_size=30), st.integers(0, 65535))
@example([bytes(16)], 0)
@example([b"\x45" + bytes(11) + socket.inet_aton("198.18.0.20") + bytes(12)], 0)
@example([b""], 0)
def test_icmp_receive_path_takes_any_frames(frames: list[bytes], ident: int) -> None:
    packed = [socket.inet_aton("198.18.0.20")]
    # Plant the target address where a reply carries its source, so parsing goes deep.
    planted = [frame[:12] + packed[0] + frame[16:] for frame in frames]
    link = icmp._IcmpLink(_SOCKETS[0], _SOCKETS[1], packed, ident)
    budget, found = _receive(link, packed, planted + frames)
    assert len(found) <= 1 + sweep.MAX_REPEATS_PER_TARGET
    for seen in found:
        assert (seen.ip, seen.mac, seen.source) == ("198.18.0.20", None, "icmp")
        assert seen.ttl is not None and 0 <= seen.ttl <= 255
    assert budget.over_limit == 0 or len(found) == 1 + sweep.MAX_REPEATS_PER_TARGET


# --- SSDP / UPnP -----------------------------------------------------------------------------


@PROPERTY
@given(
    st.binary(max_size=2048)
    | st.lists(hostile_text.map(lambda t: t[:300]), max_size=8).map(
        lambda lines: ("HTTP/1.1 200 OK\r\n" + "\r\n".join(lines)).encode("utf-8", "surrogatepass")
    )
)
def test_ssdp_reply_parser(data: bytes) -> None:
    headers = upnp.parse_reply(data)
    if headers is not None:
        for name, value in headers.items():
            assert shown_as_is(value) and len(value) <= upnp.FIELD_LIMIT, (name, value)


@PROPERTY
@given(
    st.binary(max_size=3000)
    | st.lists(hostile_text.map(lambda t: t[:100]), max_size=6).map(
        lambda texts: (
            '<?xml version="1.0"?><root><device><deviceType>'
            + "</deviceType><friendlyName>".join(texts)
            + "</friendlyName></device></root>"
        ).encode("utf-8", "surrogatepass")
    )
)
@example(b'<?xml version="1.0" encoding="x-nonsense"?><root/>')
@example(b'<!DOCTYPE r [<!ENTITY a "aaaa">]><root>&a;</root>')
def test_upnp_description_parser(body: bytes) -> None:
    described = upnp.parse_description(body)
    if described is not None:
        for text in (described.friendly_name, described.manufacturer, described.model):
            assert shown_as_is(text) and len(text) <= upnp.FIELD_LIMIT


@PROPERTY
@given(hostile_text)
@example("http://198.19.200.9:80/desc.xml")
@example("http://[::1/x")
@example("http://198.18.0.5:99999/")
def test_upnp_location_is_read_only_inside_the_scope(location: str) -> None:
    from ipguard.scanners.scope import Scope

    # An empty scope: every location is refused before any connection is attempted.
    described = upnp.describe(location, Scope([]), timeout=0.05)
    assert isinstance(described, str | upnp.Description)


# --- HTTP ------------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=3000), st.integers(0, 4096))
@example(b"HTTP/1.0 200 OK\r\n\r\n<title>\x1b[31m&#27;</title>", 4096)
@example(b"HTTP/1.0 200 OK\r\ncontent-type: text/html; charset=x-klingon\r\n\r\n<title>a", 4096)
def test_http_reply_parser_and_title(data: bytes, limit: int) -> None:
    for raw in (data, b"HTTP/1.1 200 OK\r\n\r\n<title>" + data + b"</title>"):
        try:
            reply = http._parse(raw, limit)
        except ValueError:
            continue
        title = http.title(reply)
        if title is not None:
            assert shown_as_is(title) and len(title) <= http.TITLE_LIMIT


@PROPERTY
@given(hostile_text)
def test_http_request_path_cannot_inject_headers(path: str) -> None:
    safe = http._safe_path(path)
    assert "\r" not in safe and "\n" not in safe and " " not in safe


# --- nmap output -----------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=2000) | hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(
    b'<nmaprun><host><address addr="198.18.0.5" addrtype="ipv4"/><ports>'
    b'<port protocol="tcp" portid="x"><service servicefp="r(NULL,4,&quot;\\x1b[&quot;)"/>'
    b"</port></ports></host></nmaprun>"
)
def test_nmap_xml_reader(xml: bytes) -> None:
    try:
        fingerprints, _ = nmapfacts.xml_facts(xml)
    except ValueError:
        return  # a bad port number in nmap's own XML
    for raw in fingerprints.values():
        banner = nmapfacts.banner_line(raw)
        assert shown_as_is(banner)


@PROPERTY
@given(st.binary(max_size=500))
def test_banner_is_one_printable_line(raw: bytes) -> None:
    banner = nmapfacts.banner_line(raw)
    assert shown_as_is(banner)


def test_a_netbios_name_cut_inside_a_chinese_character_keeps_its_whole_characters() -> None:
    """Windows cuts a computer's name to 15 bytes of its OEM code page, even inside a
    double-byte character: the name read back drops the half, not the whole name to mojibake."""
    cut = "a数学-张小明老师".encode("gbk")[:15]  # the last byte is half of 师
    table = bytes([1]) + cut + bytes([0x00]) + struct.pack("!H", 0x0400)
    assert dnswire.netbios_names(table) == [("a数学-张小明老", 0, False)]
    whole = "财务-PC02".encode("gbk").ljust(15, b" ")
    table = bytes([1]) + whole + bytes([0x00]) + struct.pack("!H", 0x0400)
    assert dnswire.netbios_names(table) == [("财务-PC02", 0, False)]
