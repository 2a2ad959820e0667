"""ipguard's entries in a crontab: one per site, each a marker comment naming the site and its job.

    # ipguard: scheduled scan (managed by `ipguard cron install`; `ipguard cron remove`): site north
    */15 * * * * /opt/ipguard/bin/ipguard --db … --config /etc/ipguard/north.toml scan --quiet …

A sensor may scan two sites (two VLANs, two configuration files): installing the second site's job
must not replace the first's. Installing again for a site replaces that site's entry only; every
other line stays byte for byte. An entry written before markers named their site (the marker
alone) is taken for the same job when its command names the same configuration file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER = "# ipguard: scheduled scan (managed by `ipguard cron install`; `ipguard cron remove`)"
_SITE = ": site "


def marker(site: str) -> str:
    """The comment line above a site's job."""
    return f"{MARKER}{_SITE}{site}"


@dataclass(frozen=True)
class Entry:
    """One of ipguard's entries: its site (None: an entry from before sites were named) and its
    job line (None: deleted by hand, the marker left)."""

    site: str | None
    job: str | None

    def option(self, name: str) -> str | None:
        """The value of `name` (e.g. `--config`) in the job's command, if it has one."""
        if self.job is None:
            return None
        try:
            words = shlex.split(cron_command(self.job))
            if "-c" in words[:-1]:  # the scan in the shell a job with a password execs
                words = shlex.split(words[words.index("-c") + 1])
        except ValueError:  # a line edited by hand into something sh would refuse too
            return None
        for index, word in enumerate(words[:-1]):
            if word == name:
                return words[index + 1]
        return None


def cron_command(line: str) -> str:
    """The shell command of a job line, as cron hands it to /bin/sh (for checks and tests)."""
    command = line.split(None, 5)[5]
    return command.replace("\\%", "%")


def _marker_site(line: str) -> tuple[bool, str | None]:
    """Whether `line` is one of ipguard's markers, and the site it names."""
    text = line.strip()
    if text == MARKER:
        return True, None
    if text.startswith(MARKER + _SITE):
        return True, text[len(MARKER + _SITE) :]
    return False, None


def _split(crontab: str, chosen: Callable[[Entry], bool]) -> tuple[list[str], list[Entry]]:
    """The crontab's lines without the chosen entries, and the chosen entries."""
    # Lines as cron reads them: only a newline ends one (str.splitlines also splits at a form
    # feed or U+2028 in a comment, and the crontab written back would differ from the user's).
    lines = crontab.removesuffix("\n").split("\n") if crontab else []
    kept: list[str] = []
    taken: list[Entry] = []
    index = 0
    while index < len(lines):
        is_marker, site = _marker_site(lines[index])
        if not is_marker:
            kept.append(lines[index])
            index += 1
            continue
        following = lines[index + 1] if index + 1 < len(lines) else None
        job = following if following is not None and _our_job(following) else None
        found = Entry(site, job)
        if chosen(found):
            taken.append(found)
        else:
            kept.append(lines[index])
            if job is not None:
                kept.append(job)
        index += 2 if job is not None else 1
    return kept, taken


def unmarked_jobs(crontab: str) -> list[str]:
    """Jobs running ipguard's scan that are no entry of ipguard's (written by hand, or an entry
    whose marker was deleted): beside an installed entry, two scans start at once."""
    kept, _ = _split(crontab, lambda _: True)
    return [line for line in kept if _our_job(line)]


def entries(crontab: str) -> list[Entry]:
    """Every ipguard entry in a crontab, in its order."""
    return _split(crontab, lambda _: True)[1]


def without(crontab: str, chosen: Callable[[Entry], bool]) -> tuple[str, list[Entry]]:
    """The crontab without the chosen entries (every other line as it was), and those entries."""
    kept, taken = _split(crontab, chosen)
    return ("\n".join(kept) + "\n") if kept else "", taken


def same_job(site: str, config: Path | None) -> Callable[[Entry], bool]:
    """The entries a new job of `site` replaces: that site's, and an entry without a site whose
    command names the same configuration (or none, or whose job was deleted by hand)."""

    def chosen(entry: Entry) -> bool:
        if entry.site is not None:
            return entry.site == site
        named = entry.option("--config")
        return config is None or named is None or named == str(config)

    return chosen


def with_entry(crontab: str, line: str, *, site: str, config: Path | None = None) -> str:
    """The crontab with `site`'s entry replaced by, or added as, the job `line`."""
    kept, _ = without(crontab, same_job(site, config))
    return f"{kept}{marker(site)}\n{line}\n"


def entry(crontab: str, site: str | None = None) -> str | None:
    """The job line of `site`'s entry (of the first entry, without `site`), if there is one."""
    for found in entries(crontab):
        if found.job is not None and (site is None or found.site == site):
            return found.job
    return None


# The job `cron_line` writes runs ipguard's scan; a marker whose job was deleted by hand may be
# followed by a comment or by a job of the user's own, which must stay.
_OUR_JOB = re.compile(r"^\s*[^#\s].*ipguard\S*\s(?:.*\s)?scan(?:\s|$)")


def _our_job(line: str) -> bool:
    return _OUR_JOB.match(line) is not None
