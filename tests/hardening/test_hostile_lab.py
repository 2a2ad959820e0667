"""A hostile lab, scanned for real once: its text shown safely, its pointers never followed.

On the lab's LAN (198.18.0.0/24, of which ipguard may scan 198.18.0.0/25 only):

- `hostile` (198.18.0.66, registered) answers DNS, mDNS and NetBIOS with a name made of terminal
  escapes, HTML, a formula, a bidi override, NUL and invalid UTF-8; serves a page whose title is
  as bad; announces itself over SSDP with such a SERVER string. Its SSDP LOCATION, its proxy
  port's redirect and its DNS answer (a CNAME) all point at the trap.
- `rogue-dhcp` (198.18.0.67) offers leases whose router option is the trap.
- `trap` (198.18.0.200): on the same link, outside the scanned subnets, listening for anything.

One scan (module fixture) with sniffers in the scanner's and the trap's namespaces; one test reads
every output, the other checks where packets went.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.hardening.labtools import config_text, daemon, ipguard
from tests.hardening.test_hostile_output import (
    BIDI,
    ESCAPES,
    FORMULA,
    HTML,
    INVISIBLE,
    assert_inert,
    assert_inert_csv,
    check_every_output,
    contains,
)
from tests.lab.builder import Lab
from tests.lab.fixtures import lab_unavailable
from tests.lab.scenario import DhcpServer, Host, Registration, Scenario
from tests.lab.scenarios import LOCATIONS, lan_ip, mac_for, small

TRAP = lan_ip(200)
SCOPE = "198.18.0.0/25"
PORTS = "tcp/80;tcp/8080"  # what ipguard scans: the hostile host's web pages
LABELS = [ESCAPES.encode(), HTML.encode()[:60], FORMULA.encode(), BIDI.encode(), b"a\x00b\xff\xfe"]
LABELS.append(INVISIBLE.encode())
TITLE = (ESCAPES + " Broadband Router " + HTML + FORMULA + BIDI).encode() + b"\xff\xfe\x00" * 20
SSDP_SERVER = ("Linux UPnP/1.0 " + ESCAPES + HTML + FORMULA).encode() + b"\x00\xff"


def hostile_lab() -> Scenario:
    base = small()
    ip = lan_ip(66)
    registration = Registration(
        ip=ip,
        mac=mac_for(ip),
        hostname="math-pc66",
        owner=FORMULA,
        department="math",
        location=LOCATIONS["math"],
        asset_tag="pc66",
        notes=HTML,
    )
    extra = (
        Host(name="hostile", ip=ip, mac=mac_for(ip), registration=registration),
        Host(
            name="rogue-dhcp",
            ip=lan_ip(67),
            mac="02:66:00:00:00:67",
            dhcp=DhcpServer(lan_ip(150), lan_ip(160), router=TRAP),
        ),
        Host(name="trap", ip=TRAP, mac="02:66:00:00:02:00"),
    )
    return dataclasses.replace(
        base, name="hostile", hosts=(*base.hosts, *extra), ports="tcp/22;tcp/80;tcp/8080"
    )


def hostile_spec(ip: str) -> dict:
    trap_reverse = ".".join(reversed(TRAP.split("."))) + ".in-addr.arpa"
    return {
        "ip": ip,
        "http": [
            {"port": 80, "title": TITLE.hex()},
            {"port": 8080, "location": f"http://{TRAP}:3128/"},  # a "proxy" sending us on
        ],
        "ssdp": {
            "server": SSDP_SERVER.hex(),
            "location": f"http://{TRAP}:80/rootDesc.xml",
            "st": ["urn:schemas-upnp-org:device:InternetGatewayDevice:1"],
        },
        "names": {"labels": [label.hex() for label in LABELS], "cname": trap_reverse},
        "netbios": b"\x1b[2J\x00EVIL".hex(),
    }


@dataclass
class Scanned:
    """The lab after one scan, with what the scan printed and where its packets went."""

    lab: Lab
    files: Path
    scan: Result
    scanner_sent: dict
    trap_received: dict


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    reason = lab_unavailable("nmap", "dnsmasq")
    if reason:
        pytest.skip(reason)
    files = tmp_path_factory.mktemp("hostile")
    with Lab.build(hostile_lab()) as lab:
        hostile = lab.host("hostile")
        config = config_text(lab, ports=PORTS, dns=[hostile.ip])
        (files / "ipguard.toml").write_text(
            config.replace(json.dumps([lab.subnet]), f'["{SCOPE}"]')
        )
        lab.write_ledger_csv(files / "ledger.csv")
        assert ipguard(lab, files, "ledger", "import", str(files / "ledger.csv")).returncode == 0
        sent, received = files / "scanner.json", files / "trap.json"
        with (
            daemon(lab, "hostile", "tests.hardening.hostile", hostile_spec(hostile.ip)),
            daemon(lab, "trap", "tests.hardening.sniffer", {"out": str(received)}),
            daemon(lab, "scanner", "tests.hardening.sniffer", {"out": str(sent), "outgoing": True}),
        ):
            done = ipguard(lab, files, "scan", in_lab=True)
            time.sleep(0.3)  # the last frames reach the sniffers
        yield Scanned(
            lab,
            files,
            Result(done.returncode, done.stdout, done.stderr),
            json.loads(sent.read_text()),
            json.loads(received.read_text()),
        )


def test_hostile_text_from_a_real_scan_is_shown_inert_everywhere(scanned: Scanned) -> None:
    lab, files = scanned.lab, scanned.files
    assert scanned.scan.exit_code == 1, scanned.scan.stderr
    assert_inert(scanned.scan.stdout + scanned.scan.stderr, "scan")

    def cli(*args: str) -> Result:
        done = ipguard(lab, files, *args)
        return Result(done.returncode, done.stdout, done.stderr)

    document = check_every_output(cli)  # type: ignore[arg-type]
    exported = cli("ledger", "export", "-", "--format", "csv")  # the hostile owner and notes
    assert exported.exit_code == 0 and "HYPERLINK" in exported.stdout
    assert_inert_csv(exported.stdout, "ledger export")
    hostile = lab.host("hostile").ip
    kinds = {(f["kind"], f["ip"]) for f in document["findings"]}
    assert {
        ("hostname-policy", hostile),
        ("rogue-router", hostile),
        ("unexpected-service", hostile),
    } <= kinds
    assert contains(document, "\x1b[31mred")  # the name as sent, JSON-escaped, decoded back
    assert contains(document, INVISIBLE)  # characters that draw nothing arrive too (and are
    # shown as escapes by every output: check_every_output)
    # Title and SSDP fields come as the scanner cleans them: one printable line, cut with …
    mine = [f for f in document["findings"] if f["ip"] == hostile]
    for fragment in ("Broadband Router", "Linux UPnP/1.0", "<script>", "\\x1b[31m", "…"):
        assert contains(mine, fragment), fragment


def test_nothing_is_sent_outside_the_subnets_whatever_the_network_says(scanned: Scanned) -> None:
    lab = scanned.lab
    assert scanned.scan.exit_code == 1, scanned.scan.stderr
    trap, sent = scanned.trap_received, scanned.scanner_sent
    assert trap["ipv4"].get(TRAP, 0) == 0 and trap["arp_who_has"].get(TRAP, 0) == 0, trap
    scope = ipaddress.ip_network(SCOPE)
    allowed = {"255.255.255.255", "239.255.255.250"}
    strays = {
        ip: n
        for ip, n in sent["ipv4"].items()
        if ip not in allowed and ipaddress.ip_address(ip) not in scope
    }
    asked = {
        ip: n for ip, n in sent["arp_who_has"].items() if ipaddress.ip_address(ip) not in scope
    }
    assert strays == {} and asked == {}, (strays, asked)
    assert lab.host("hostile").ip in sent["ipv4"]  # the sniffer did see the scan's traffic
    # What pointed at the trap was seen and kept as evidence, never followed.
    listed = json.loads(ipguard(lab, scanned.files, "findings", "list", "--format", "json").stdout)
    rogue = lab.host("rogue-dhcp").ip
    dhcp = next(f for f in listed["findings"] if (f["kind"], f["ip"]) == ("rogue-dhcp", rogue))
    assert contains(dhcp, TRAP)
    hostile = [f for f in listed["findings"] if f["ip"] == lab.host("hostile").ip]
    assert contains(hostile, f"LOCATION http://{TRAP}:80/rootDesc.xml not fetched")
