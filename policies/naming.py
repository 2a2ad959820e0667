"""Computers named after their users: hostname-policy.

`hostname_rule` is a regular expression with `{field}` placeholders (owner, department, location,
asset_tag, switch_port, ip, mac). The rule is about computers (「计算机使用真实姓名命名」): only
records with role host are judged; a printer, switch, access point, router or server keeps its
own name, whoever is recorded as its owner. For each name a registered, authorised host goes by:

- placeholders are filled from that host's ledger record, as literal text (regex-escaped), and the
  rule is searched case-insensitively in the name (anchor it with ^…$ to match the whole name);
  whitespace inside a field value matches nothing, "-" or "_" ("Li Wei" matches liwei, li-wei,
  li_wei), since no hostname can contain a space; a Chinese value may also be written in pinyin,
  a syllable per character (李伟: liwei, li-wei; see `policies.spelling`);
- when the rule has no "." and the name has one, only the first DNS label is compared
  (pc-li.school.example → pc-li); a trailing root dot is ignored; an internationalised label
  (`xn--…`, as DNS carries 数学-李伟) is compared in Unicode;
- a NetBIOS name holds only the first 15 bytes of the computer's name (in the OEM code page: 15
  ASCII letters, 7 Chinese characters): one that long passes when it begins a name the rule
  accepts: the host's own full name (DNS, mDNS), or the name an anchored plain rule asks for;
- a reverse-DNS name made from the address itself (host-10-20-1-7.pool.example, as a DNS server
  generates them) names the address, not the computer: it is not judged, unless the rule uses
  {ip};
- an empty rule checks nothing; a placeholder whose field is empty for the device means the rule
  cannot be judged for it, so nothing is said; unregistered hosts are never judged (their names are
  in their unregistered-host finding).

One finding per host (ip, registered MAC), listing every failing name and where it was learnt.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

from ipguard.model import Binding, Finding, FindingKind, NameObservation, NameSource, Role
from ipguard.policies.base import PolicySettingsLike, RunFacts, registration, severity_of, who
from ipguard.policies.sightings import Sightings
from ipguard.policies.spelling import has_han, ways

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
# Anchored rules made only of hostname characters and placeholders are checked by comparing text,
# without compiling a regular expression per device.
_LITERAL_RULE = re.compile(r"\^(?:[A-Za-z0-9_-]|\{[A-Za-z_]\w*\})*\$")
_SEPARATORS = ("", "-", "_")
_GAP = "[-_]?"
_MAX_SPELLINGS = 64
MATCH_SECONDS = 0.1  # at most this long for one name against the rule
NETBIOS_BYTES = 15  # a NetBIOS name: the computer's name cut to 15 bytes (the 16th is a suffix)


class HostnameRule:
    """A `hostname_rule`, ready to judge many names against many records."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.fields = tuple(_PLACEHOLDER.findall(template))
        self.first_label_only = "." not in template
        self._literal = _LITERAL_RULE.fullmatch(template) is not None
        self._pieces = _PLACEHOLDER.split(template)  # literal, field, literal, field, …, literal
        # A rule with a domain judges a name that carries none (NetBIOS, mDNS .local, DHCP) by
        # its first label: `^{owner}\.school\.example$` judges LIWEI as `^{owner}$` would.
        label = None if self.first_label_only else _first_label(template)
        self.label_rule = None if label is None else HostnameRule(label)
        self._compiled: dict[str, Any] = {}  # expanded pattern -> regex.Pattern (None: bad)
        self.timed_out: set[str] = set()  # names the rule could not settle in MATCH_SECONDS

    def values(self, record: Binding) -> tuple[str, ...] | None:
        """The record's value for each placeholder, or None when one of them is empty."""
        values = []
        for name in self.fields:
            value = getattr(record, name, None)
            if not isinstance(value, str) or not value.strip():
                return None
            values.append(value.strip())
        return tuple(values)

    def expand(self, values: tuple[str, ...]) -> str:
        """The regular expression the rule becomes for these placeholder values."""
        parts = list(self._pieces)
        for index, value in enumerate(values):
            spelled = [_GAP.join(re.escape(word) for word in words) for words in ways(value)]
            one = len(spelled) == 1
            parts[2 * index + 1] = spelled[0] if one else f"(?:{'|'.join(spelled)})"
        return "".join(parts)

    def compared(self, name: str) -> str:
        """The part of a collected name the rule is compared with, xn-- labels in Unicode."""
        name = name.strip().rstrip(".")
        if self.first_label_only and "." in name:
            name = name.split(".", 1)[0]
        if "xn--" not in name.lower():
            return name
        return ".".join(_unicode_label(label) for label in name.split("."))

    def begins(self, cut: str, values: tuple[str, ...]) -> bool:
        """Whether an anchored plain rule asks for a name that begins with `cut` (compared
        without separators: where a "-" or "_" may go does not matter to a name cut short)."""
        if not self._literal:
            return False
        choices: list[list[str]] = []
        for index, piece in enumerate(self._pieces):
            if index % 2 == 0:
                choices.append([_bare(piece.removeprefix("^").removesuffix("$"))])
            else:
                choices.append([_bare("".join(words)) for words in ways(values[index // 2])])
        cut = _bare(cut)
        return any("".join(parts).startswith(cut) for parts in itertools.product(*choices))

    def accepts(self, name: str, values: tuple[str, ...]) -> bool | None:
        """Whether the name satisfies the rule for these values (None: the rule is unusable)."""
        if self._literal:
            spellings = self._spellings(values)
            if spellings is not None:
                return name.lower() in spellings
        import regex  # backtracking bounded by a timeout, which `re` has not

        pattern = self.expand(values)
        if pattern not in self._compiled:
            try:
                self._compiled[pattern] = regex.compile(pattern, regex.IGNORECASE)
            except regex.error:
                self._compiled[pattern] = None
        compiled = self._compiled[pattern]
        if compiled is None:
            return None
        try:
            return compiled.search(name, timeout=MATCH_SECONDS) is not None
        except TimeoutError:
            # Backtracking that long only happens on a name that does not fit.
            self.timed_out.add(name)
            return False

    def _spellings(self, values: tuple[str, ...]) -> set[str] | None:
        # Every name an anchored literal rule accepts, or None when there are too many to list.
        if all(len(value.split()) == 1 and not has_han(value) for value in values):
            parts = list(self._pieces)
            parts[0] = parts[0].removeprefix("^")
            parts[-1] = parts[-1].removesuffix("$")
            parts[1::2] = values
            return {"".join(parts).lower()}
        count = 1
        for value in values:  # counted before any is spelled: a long Chinese name has thousands
            count *= sum(len(_SEPARATORS) ** (len(words) - 1) for words in ways(value))
            if count > _MAX_SPELLINGS:
                return None
        choices: list[list[str]] = []
        for index, piece in enumerate(self._pieces):
            if index % 2 == 0:
                text = piece.removeprefix("^") if index == 0 else piece
                text = text.removesuffix("$") if index == len(self._pieces) - 1 else text
                choices.append([text])
            else:
                choices.append(_variants(values[index // 2]))
        return {"".join(parts).lower() for parts in itertools.product(*choices)}


def _unicode_label(label: str) -> str:
    if not label.lower().startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label  # not punycode after all: judged as it was sent


def _cut_by_netbios(name: NameObservation, compared: str) -> bool:
    """True for a NetBIOS name long enough to be a longer computer name cut short."""
    if name.source != NameSource.NETBIOS:
        return False
    size = len(compared.encode("gb18030"))  # Windows' OEM code page for Chinese (GBK)
    # A double-byte character that did not fit whole was left out: one byte short.
    return size >= NETBIOS_BYTES - (0 if compared.isascii() else 1)


def _bare(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "")


def _variants(value: str) -> list[str]:
    spellings = []
    for words in ways(value):
        for separators in itertools.product(_SEPARATORS, repeat=len(words) - 1):
            spelling = words[0]
            for separator, word in zip(separators, words[1:], strict=True):
                spelling += separator + word
            spellings.append(spelling)
    return spellings


def check(facts: RunFacts, settings: PolicySettingsLike, seen: Sightings) -> list[Finding]:
    """Every hostname-policy finding of the run."""
    if not settings.hostname_rule:
        return []
    rule = HostnameRule(settings.hostname_rule)
    by_ip: dict[str, list[NameObservation]] = {}
    for name in facts.names:
        by_ip.setdefault(name.ip, []).append(name)
    found = []
    for ip, names in by_ip.items():
        record = seen.host(ip).record
        if record is None or Role.HOST not in record.roles:
            continue  # unregistered (said elsewhere), or no computer: a printer keeps its name
        values = rule.values(record)
        if values is None:
            continue
        if "ip" not in rule.fields:  # a name generated from the address names no computer
            names = [name for name in names if not _made_from_address(name, ip)]
        failing, passing = _judge(rule, names, values)
        if not failing:
            continue
        kind = FindingKind.HOSTNAME_POLICY
        # Quoted as sent: repr() would spell an ideographic space or a backslash as an escape,
        # another name; each output shows control characters as escapes itself.
        listed = ", ".join(f"'{item['name']}'" for item in failing)
        summary = (
            f"{ip} ({who(record)}) goes by {listed}, which fails the hostname rule "
            f"{settings.hostname_rule}"
        )
        detail: dict[str, Any] = {
            "names": failing,
            "passing_names": passing,
            "rule": settings.hostname_rule,
            "expanded_rule": rule.expand(values),
            "registered": registration(record),
        }
        found.append(
            Finding(kind, severity_of(kind, settings), ip, record.mac, None, summary, detail)
        )
    return found


def _first_label(template: str) -> str | None:
    r"""The rule for a name's first label: the template up to its first `\.` outside any group
    or class (anchored as the template is), or None when there is none."""
    depth, in_class, index = 0, False, 0
    while index < len(template):
        char = template[index]
        if char == "\\":
            if template[index + 1 : index + 2] == "." and depth == 0 and not in_class:
                head = template[:index]
                return head + "$" if head.startswith("^") else head
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        index += 1
    return None


def _without_domain(name: NameObservation, compared: str) -> str | None:
    """The name of a host that carries no DNS domain (NetBIOS, DHCP, an mDNS .local name), or
    None for a name that does."""
    if name.source == NameSource.MDNS and compared.lower().endswith(".local"):
        compared = compared[: -len(".local")]
    return None if "." in compared else compared


def _made_from_address(name: NameObservation, ip: str) -> bool:
    """A reverse-DNS name a DNS server generated from the address (host-10-20-1-7, 7.1.20.10.dyn,
    ip-010-020-001-007, as BIND's $GENERATE or an ISP's pool writes them)."""
    octets = ip.split(".")
    if name.source != NameSource.DNS or len(octets) != 4:
        return False
    text = name.name.lower()
    for order in (octets, octets[::-1]):
        spelled = "[-_.]".join(f"0*{octet}" for octet in order)
        if re.search(rf"(?<![0-9]){spelled}(?![0-9])", text):
            return True
    return False


def _judge(
    rule: HostnameRule, names: Iterable[NameObservation], values: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    failing: list[dict[str, Any]] = []
    passing: list[dict[str, Any]] = []
    judged: set[str] = set()
    names = list(names)
    full = [rule.compared(name.name).lower() for name in names if name.source != NameSource.NETBIOS]
    for observation in names:
        compared = rule.compared(observation.name)
        if not compared or compared.lower() in judged:
            continue
        judged.add(compared.lower())
        bare = _without_domain(observation, compared)
        if rule.label_rule is not None and bare is not None:
            label = rule.label_rule
            verdict = label.accepts(bare, values[: len(label.fields)])
        else:
            verdict = rule.accepts(compared, values)
        if verdict is None:
            return [], []
        if not verdict and _cut_by_netbios(observation, compared):
            cut = compared.lower()
            verdict = rule.begins(cut, values) or any(
                name.startswith(cut) and rule.accepts(name, values) for name in full
            )
        entry: dict[str, Any] = {
            "name": observation.name,
            "source": observation.source,
            "compared": compared,
        }
        if compared in rule.timed_out:
            entry["timed_out"] = True
        (passing if verdict else failing).append(entry)
    return failing, passing
