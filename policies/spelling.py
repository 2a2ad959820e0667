"""How a ledger value may be written in a hostname: as it is, or a Chinese name in pinyin.

The rules want each computer named with its user's real name (「使用真实姓名对计算机进行命名」),
and the ledger keeps that name as written, 李伟; DNS and NetBIOS names are mostly ASCII, so the
computer is called li-wei or LIWEI. A value's ways are word sequences (words joined by nothing,
"-" or "_" in a name): its own words, and, when it holds Han characters, one syllable per
character in pinyin without tones. A character with several readings (单 dan/shan as a surname,
曾 zeng/ceng) gives each; ü is written v, u or yu (吕: lv, lu, lyu).

Example:

    ways("李伟")   # (("李伟",), ("li", "wei"))
"""

from __future__ import annotations

import functools
import itertools

MAX_WAYS = 16  # beyond this many readings of a long name, only its usual one


def has_han(value: str) -> bool:
    """True when the value holds a CJK ideograph (a Chinese name)."""
    return any("\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" for char in value)


@functools.lru_cache(maxsize=4096)  # a ledger holds few distinct names
def ways(value: str) -> tuple[tuple[str, ...], ...]:
    """Every way of writing the value, as words; the value's own words first."""
    own = tuple(value.split())
    if not has_han(value):
        return (own,)
    from pypinyin import Style, pinyin  # loaded only for a rule that meets a Chinese name

    readings: list[list[str]] = []
    for options in pinyin(value, style=Style.NORMAL, heteronym=True):
        words = [word.lower() for word in options if word.strip()]
        if not words:
            continue  # a space between characters
        spelled = [v for word in words for v in _u_umlaut(word)]
        readings.append(list(dict.fromkeys(spelled)))
    count = 1
    for options in readings:
        count *= len(options)
    if count > MAX_WAYS:
        readings = [options[:1] for options in readings]
    spelled_ways = [tuple(" ".join(combo).split()) for combo in itertools.product(*readings)]
    return tuple(dict.fromkeys([own, *spelled_ways]))


def _u_umlaut(syllable: str) -> list[str]:
    # pypinyin writes ü as v (lv); people also write lu and lyu.
    if "v" not in syllable:
        return [syllable]
    return [syllable, syllable.replace("v", "u"), syllable.replace("v", "yu")]
