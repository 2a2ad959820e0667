"""hostname-policy: computers named after their users."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ipguard.model import NameObservation
from ipguard.policies.naming import HostnameRule
from tests.policies.helpers import (
    FREE,
    IP1,
    IP2,
    A,
    B,
    X,
    arp,
    device,
    findings,
    judge,
    only,
    settings,
)

RULE = "^{department}-{owner}$"


def named(*names: str, ip: str = IP1, source: str = "dns") -> list[NameObservation]:
    return [NameObservation(ip, name, source) for name in names]


MATH_LIWEI = device(IP1, A, department="math", owner="liwei")
FAILS = {("hostname-policy", IP1, A, None, "low")}

CASES = [
    pytest.param(RULE, MATH_LIWEI, ["math-liwei"], set(), id="follows the rule"),
    pytest.param(RULE, MATH_LIWEI, ["pc-123"], FAILS, id="breaks the rule"),
    pytest.param(RULE, MATH_LIWEI, ["MATH-LIWEI"], set(), id="case-insensitive (NetBIOS)"),
    pytest.param(RULE, MATH_LIWEI, ["math-liwei.school.example"], set(), id="first DNS label"),
    pytest.param(RULE, MATH_LIWEI, ["math-liwei.school.example."], set(), id="root dot"),
    pytest.param(RULE, MATH_LIWEI, ["pc.math-liwei"], FAILS, id="first label only"),
    pytest.param(RULE, MATH_LIWEI, ["math-liwei2"], FAILS, id="anchored rule: whole label"),
    pytest.param(
        r"^{owner}\.lab$", MATH_LIWEI, ["liwei.lab"], set(), id="rule with a dot: whole name"
    ),
    pytest.param(r"^{owner}\.lab$", MATH_LIWEI, ["liwei.lan"], FAILS, id="whole name fails"),
    pytest.param("", MATH_LIWEI, ["anything"], set(), id="empty rule: no check"),
    pytest.param(
        RULE, device(IP1, A, department="", owner="liwei"), ["x"], set(), id="empty field: skip"
    ),
    pytest.param(
        "{asset_tag}",
        device(IP1, A, asset_tag="A17"),
        ["lab-a17-pc"],
        set(),
        id="unanchored rule: searched",
    ),
    pytest.param(
        "^lab{asset_tag}$",
        device(IP1, A, asset_tag="A.1"),
        ["labAx1"],
        FAILS,
        id="field values are literal text",
    ),
    pytest.param(
        "^lab{asset_tag}$",
        device(IP1, A, asset_tag="A.1"),
        ["labA.1"],
        FAILS,
        id="a literal dot in a value: the rule has no dot, so only labA is compared",
    ),
    pytest.param(
        RULE,
        device(IP1, A, department="math", owner="Li Wei"),
        ["math-liwei", "math-li-wei", "MATH-LI_WEI"],
        set(),
        id="a space in a value: nothing, - or _",
    ),
    pytest.param(
        RULE,
        device(IP1, A, department="math", owner="Li Wei"),
        ["math-li--wei"],
        FAILS,
        id="a space is one separator at most",
    ),
    pytest.param(
        "^{department}-{owner}(-\\d+)?$",
        device(IP1, A, department="math", owner="Li Wei"),
        ["math-li_wei-2", "math-liwei"],
        set(),
        id="a space in a value, rule with regular expression parts",
    ),
    pytest.param(
        "^{department}-{owner}(-\\d+)?$",
        device(IP1, A, department="math", owner="Li Wei"),
        ["math-li wei"],
        FAILS,
        id="a space in a name is not a separator",
    ),
    pytest.param(
        RULE, device(IP1, A, department="数学", owner="李伟"), ["数学-李伟"], set(), id="unicode"
    ),
    pytest.param(
        RULE,
        device(IP1, A, department="数学", owner="李\u3000伟"),
        ["数学-李伟"],
        set(),
        id="an ideographic space in a value",
    ),
    pytest.param(
        "^{department}-\\d+$",
        device(IP1, A, department="lab"),
        ["lab-17"],
        set(),
        id="regular expression parts",
    ),
    pytest.param(
        "^{department}-\\d+$",
        device(IP1, A, department="lab"),
        ["lab-x"],
        FAILS,
        id="regular expression parts fail",
    ),
    pytest.param("^{mac}$", device(IP1, A), [A], set(), id="mac placeholder with a dotless rule"),
]


@pytest.mark.parametrize(("rule", "record", "names", "expected"), CASES)
def test_hostname_rule(rule, record, names, expected):
    found = judge(
        [record], [arp(record.ip, record.mac)], settings(hostname_rule=rule), names=named(*names)
    )
    assert found == expected


def test_unregistered_and_inactive_hosts_are_not_judged():
    ledger = [device(IP2, B, department="math", owner="x", status="suspended")]
    found = judge(
        ledger,
        [arp(FREE, X), arp(IP2, B)],
        settings(hostname_rule=RULE),
        names=[*named("bad", ip=FREE), *named("bad", ip=IP2)],
    )
    assert found == {
        ("unregistered-host", FREE, X, None, "high"),
        ("suspended-device-online", IP2, B, None, "medium"),
    }


def test_thief_names_are_not_the_owners():
    found = judge([MATH_LIWEI], [arp(IP1, X)], settings(hostname_rule=RULE), names=named("bad"))
    assert found == {("ip-mac-mismatch", IP1, X, None, "high")}


def test_one_finding_per_host_listing_failing_names():
    names = [
        NameObservation(IP1, "pc-123.school.example", "dns"),
        NameObservation(IP1, "MATH-LIWEI", "netbios"),
        NameObservation(IP1, "PC-123", "mdns"),  # same label as the DNS name
        NameObservation(IP1, "printer", "mdns"),
    ]
    found = findings([MATH_LIWEI], [arp(IP1, A)], settings(hostname_rule=RULE), names=names)
    finding = only(found, "hostname-policy")
    assert [(n["name"], n["source"]) for n in finding.detail["names"]] == [
        ("pc-123.school.example", "dns"),
        ("printer", "mdns"),
    ]
    assert [n["name"] for n in finding.detail["passing_names"]] == ["MATH-LIWEI"]
    assert finding.detail["rule"] == RULE
    assert finding.detail["expanded_rule"] == "^math-liwei$"
    assert "pc-123.school.example" in finding.summary and "liwei" in finding.summary


def test_severity_override():
    policy = settings(hostname_rule=RULE, severity={"hostname-policy": "medium"})
    assert judge([MATH_LIWEI], [arp(IP1, A)], policy, names=named("pc-1")) == {
        ("hostname-policy", IP1, A, None, "medium")
    }


WORD = st.text(alphabet="ab-_ .\u3000", min_size=0, max_size=6)
NOISE = st.text(alphabet="ab-_ .AB", max_size=3)


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[str, str, str]:
    """A department, an owner, and a name built from them with a little noise here and there."""
    department, owner = draw(WORD), draw(WORD)
    pieces = [draw(NOISE), department, draw(st.sampled_from(["-", "", "_", " "])), draw(NOISE)]
    for word in owner.split():
        pieces += [word, draw(st.sampled_from(["", "-", "_", " ", "--"]))]
    pieces.append(draw(NOISE))
    name = "".join(pieces)
    return department, owner, draw(st.sampled_from([name, name.upper(), draw(NOISE)]))


@given(near_misses())
@example(("a", "a\u3000b", "a-ab"))
@example(("a", "a b", "a-a_b"))
def test_text_comparison_agrees_with_the_regular_expression(case):
    # "^{department}-{owner}$" is checked by comparing text; "^(?:{department})-{owner}$" means
    # the same but goes through the regular expression.
    department, owner, name = case
    literal, regex = HostnameRule(RULE), HostnameRule("^(?:{department})-{owner}$")
    record = device(IP1, A, department=department, owner=owner)
    values = literal.values(record)
    assert values == regex.values(record)
    if values is not None:
        assert literal.accepts(name, values) == regex.accepts(name, values)


LONG = device(IP1, A, department="mathematics", owner="zhangxiaoming")  # 25 characters
CHINESE = device(IP1, A, department="数学组", owner="张小明老师")  # 17 bytes in GBK


@pytest.mark.parametrize(
    ("rule", "record", "names", "expected"),
    [
        pytest.param(
            RULE,
            LONG,
            [("MATHEMATICS-ZHA", "netbios")],
            set(),
            id="NetBIOS keeps the first 15 characters of the computer's name",
        ),
        pytest.param(
            RULE,
            LONG,
            [("mathematics-zhangxiaoming.school.example", "dns"), ("MATHEMATICS-ZHA", "netbios")],
            set(),
            id="truncated NetBIOS name next to the full DNS name",
        ),
        pytest.param(
            "^{department}-{owner}(-\\d+)?$",
            LONG,
            [("mathematics-zhangxiaoming-2", "mdns"), ("MATHEMATICS-ZHA", "netbios")],
            set(),
            id="regular expression rule: the full name it was cut from passes",
        ),
        pytest.param(
            RULE,
            LONG,
            [("MATHEMATICS-ZHB", "netbios")],
            FAILS,
            id="15 characters that begin no name the rule accepts",
        ),
        pytest.param(
            RULE,
            LONG,
            [("MATHEMATICS-ZHA", "dns")],
            FAILS,
            id="only NetBIOS truncates",
        ),
        pytest.param(
            RULE,
            device(IP1, A, department="math", owner="liwei"),
            [("MATH-LI", "netbios")],
            FAILS,
            id="a short NetBIOS name was not cut",
        ),
        pytest.param(
            RULE,
            CHINESE,
            [("数学组-张小明老", "netbios")],
            set(),
            id="NetBIOS cuts at 15 bytes of the OEM code page (GBK)",
        ),
        pytest.param(
            RULE,
            CHINESE,
            [("数学组-张小明老师".encode("idna").decode() + ".school.example", "dns")],
            set(),
            id="an internationalised DNS name (xn--) is compared as Unicode",
        ),
        pytest.param(
            RULE,
            CHINESE,
            [("数学组-李伟".encode("idna").decode(), "dns")],
            FAILS,
            id="an internationalised name of someone else",
        ),
        pytest.param(
            RULE,
            device(IP1, A, department="math", owner="liwei"),
            [("xn--broken", "dns")],
            FAILS,
            id="an xn-- label that is not punycode stays as it is",
        ),
    ],
)
def test_names_as_networks_carry_them(rule, record, names, expected):
    observed = [NameObservation(IP1, name, source) for name, source in names]
    found = judge([record], [arp(IP1, A)], settings(hostname_rule=rule), names=observed)
    assert found == expected


@pytest.mark.parametrize(
    ("rule", "owner", "names", "expected"),
    [
        pytest.param(
            RULE, "李伟", ["math-liwei", "MATH-LI-WEI", "math-li_wei"], set(), id="pinyin"
        ),
        pytest.param(RULE, "李伟", ["math-李伟"], set(), id="the characters themselves"),
        pytest.param(RULE, "李伟", ["math-wangfang"], FAILS, id="someone else's pinyin"),
        pytest.param(RULE, "李伟", ["math-liwe"], FAILS, id="a syllable cut short"),
        pytest.param(RULE, "单雄信", ["math-shanxiongxin"], set(), id="a surname read otherwise"),
        pytest.param(
            RULE, "吕小明", ["math-lvxiaoming", "math-luxiaoming", "math-lyuxiaoming"], set(),
            id="ü written v, u or yu",
        ),
        pytest.param(
            "^{department}-{owner}(-\\d+)?$", "李伟", ["math-liwei-2"], set(),
            id="a rule with regular expression parts",
        ),
        pytest.param(RULE, "Li Wei", ["math-liwei"], set(), id="a name already in letters"),
    ],
)  # fmt: skip
def test_a_chinese_name_may_be_written_in_pinyin(rule, owner, names, expected):
    """「使用真实姓名对计算机进行命名」: the owner's real name is in Chinese in the ledger, and the
    computer is named in pinyin, as DNS and NetBIOS names mostly are (every such computer was a
    hostname-policy finding every night)."""
    record = device(IP1, A, department="math", owner=owner)
    found = judge([record], [arp(IP1, A)], settings(hostname_rule=rule), names=named(*names))
    assert found == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(["host-10-20-1-1.school.example"], set(), id="the address in the name"),
        pytest.param(["1-1-20-10.dyn.school.example"], set(), id="the address reversed"),
        pytest.param(["ip-010-020-001-001"], set(), id="zero-padded octets"),
        pytest.param(["1.1.20.10.pool.school.example"], set(), id="dotted, as in-addr.arpa"),
        pytest.param(["host-10-20-1-1", "gamebox"], FAILS, id="the computer's own name still"),
        pytest.param(["host-10-20-1-11"], FAILS, id="another address"),
    ],
)
def test_a_reverse_dns_name_made_from_the_address_is_not_the_computers(names, expected):
    """A DNS server that generates its PTR records (BIND $GENERATE, an ISP's pool) names the
    address, not the computer: judged by the naming rule, every host failed every night."""
    dns = [NameObservation(IP1, name, "dns") for name in names[:1]]
    own = [NameObservation(IP1, name, "netbios") for name in names[1:]]
    assert judge([MATH_LIWEI], [arp(IP1, A)], settings(hostname_rule=RULE), names=dns + own) == (
        expected
    )


def test_a_rule_about_the_address_judges_such_names():
    policy = settings(hostname_rule="^pc-{ip}$")
    record = device(IP1, A)
    assert judge([record], [arp(IP1, A)], policy, names=named("host-10-20-1-1")) == FAILS


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        pytest.param(("printer",), set(), id="a printer keeps its model name"),
        pytest.param(("access-point",), set(), id="an access point"),
        pytest.param(("switch", "router"), set(), id="a router"),
        pytest.param(("server",), set(), id="a server"),
        pytest.param(("host",), FAILS, id="a teacher's computer"),
        pytest.param(("host", "server"), FAILS, id="a computer that also serves"),
        pytest.param((), FAILS, id="no roles: a host"),
    ],
)
def test_only_computers_are_named_after_their_users(roles, expected):
    """「每位教师的计算机使用真实姓名命名」 is about computers: a printer or a switch with a
    responsible owner recorded keeps its own name (each was a finding every run)."""
    record = device(IP1, A, *roles, department="math", owner="liwei")
    found = judge([record], [arp(IP1, A)], settings(hostname_rule=RULE), names=named("HP-M404"))
    assert found == expected


def test_a_rule_that_backtracks_cannot_be_held_up_by_a_name():
    """A rule with nested repetition, as people write them, and a long name that almost fits:
    Python's `re` backtracks for ever (24 characters took 1.7 s, each one more doubled it: the
    scan, holding its site's lock, or the watcher never finished). The name is judged within a
    bound; one the rule cannot settle in time fails, marked `timed_out`."""
    rule = "^(?:{department}|[a-z]+)(-?[a-z]+)+-{owner}$"
    record = device(IP1, A, department="math", owner="liwei")
    names = [
        NameObservation(IP1, "a" * 60 + "!", "dns"),
        NameObservation(IP1, "MATH-LIWEI", "mdns"),
    ]
    found = findings([record], [arp(IP1, A)], settings(hostname_rule=rule), names=names)
    finding = only(found, "hostname-policy")
    assert [n["name"] for n in finding.detail["names"]] == ["a" * 60 + "!"]
    assert [n["name"] for n in finding.detail["passing_names"]] == ["MATH-LIWEI"]
    evil = HostnameRule("^(a|a)+$")
    assert evil.accepts("a" * 40 + "!", ()) is False
    assert evil.timed_out == {"a" * 40 + "!"}


DOMAIN_RULE = r"^{department}-{owner}\.school\.example$"


@pytest.mark.parametrize(
    ("rule", "names", "expected"),
    [
        pytest.param(DOMAIN_RULE, [("math-liwei.school.example", "dns")], set(), id="the FQDN"),
        pytest.param(DOMAIN_RULE, [("MATH-LIWEI", "netbios")], set(), id="NetBIOS: no domain"),
        pytest.param(DOMAIN_RULE, [("math-liwei.local", "mdns")], set(), id="mDNS: .local"),
        pytest.param(DOMAIN_RULE, [("math-liwei", "dhcp")], set(), id="DHCP option 12"),
        pytest.param(DOMAIN_RULE, [("GAMEBOX", "netbios")], FAILS, id="a bare name that fails"),
        pytest.param(
            DOMAIN_RULE, [("math-liwei.other.example", "dns")], FAILS, id="the wrong domain"
        ),
        pytest.param(
            r"^{owner}(\.lab|\.school)$", [("LIWEI", "netbios")], FAILS,
            id="no first label to cut from the rule: judged whole",
        ),
    ],
)  # fmt: skip
def test_a_rule_with_a_domain_judges_names_that_carry_none_by_their_label(rule, names, expected):
    """A rule naming the DNS domain, `^{department}-{owner}\\.school\\.example$`: NetBIOS, mDNS
    (.local) and DHCP names never carry it, and every Windows PC failed every night. A name with
    no domain of its own is judged by the rule's first label."""
    observed = [NameObservation(IP1, name, source) for name, source in names]
    assert judge([MATH_LIWEI], [arp(IP1, A)], settings(hostname_rule=rule), names=observed) == (
        expected
    )
