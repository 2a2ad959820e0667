"""The scheduled scan both installers of `ipguard cron install` write: its command with every
path absolute, and what they share (option refusals, directories made for its user)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ipguard.cli.context import AppState
from ipguard.errors import InvalidValue

if TYPE_CHECKING:
    from ipguard.schedule import Every

MASKED = "the database password is masked: write it in yourself or use ~/.pgpass"


@dataclass(frozen=True)
class Job:
    """The scheduled scan: when, and its command as run and as it may be shown."""

    when: Every
    argv: list[str]
    shown: list[str]  # the ledger URL's password masked
    metrics: Path
    site: str  # [scan] site of the configuration: one entry per site
    config: Path

    @property
    def secret(self) -> bool:
        """Whether the command holds a password (then files holding it stay private)."""
        return self.shown != self.argv


def make_job(
    shared: AppState, every: str, metrics_file: Path | None, home: Path | None = None
) -> Job:
    """The scan command with every path absolute: the configuration must exist.

    `home` is the home of the user whose job it is, when that is not you: the defaults (ledger,
    metrics file) are then that user's, as its own ipguard would choose them, not yours.
    """
    from ipguard import schedule
    from ipguard.config import find_config
    from ipguard.ledger.urls import absolute_url, display_url, resolve_url

    when = schedule.parse_every(every)
    config = find_config(shared.config)
    if config is None:
        raise InvalidValue(
            "a scheduled scan needs a configuration file: give --config PATH (or IPGUARD_CONFIG)"
        )
    configured = shared.settings().scan.metrics_file  # a broken configuration fails now
    chosen = metrics_file or (
        Path(configured) if configured else schedule.default_metrics_file(home)
    )
    metrics = chosen.expanduser().absolute()
    if home is not None and shared.db is None and "IPGUARD_DB" not in os.environ:
        db_url = f"sqlite:///{schedule.data_dir(home) / 'ledger.db'}"
    else:
        db_url = absolute_url(resolve_url(shared.db))
    argv = schedule.scan_argv(
        schedule.ipguard_argv(),
        db_url=db_url,
        config=config.absolute(),
        metrics_file=metrics,
    )
    shown = [
        display_url(word) if index and argv[index - 1] == "--db" else word
        for index, word in enumerate(argv)
    ]
    return Job(when, argv, shown, metrics, shared.settings().scan.site, config.absolute())


def refuse(given: Mapping[str, object], why: str) -> None:
    """A usage error for the first option given that does not apply."""
    for option, value in given.items():
        if value not in (None, False):
            raise InvalidValue(f"{option} {why}")


def make_dirs(paths: list[Path], owner: str | None) -> None:
    """The directories of `paths`, made when missing: every one made is `owner`'s.

    All of them, not only the last: `~U/.local/state/ipguard/log` made by root with a root-owned
    `.local` in between would still be U's to write but never U's to tidy or move.
    """
    import pwd

    for directory in {path.parent for path in paths}:
        missing = [d for d in (directory, *directory.parents) if not d.exists()]
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if owner:
                entry = pwd.getpwnam(owner)
                for made in missing:
                    os.chown(made, entry.pw_uid, entry.pw_gid)
        except (OSError, KeyError) as error:
            raise InvalidValue(f"cannot create {directory}: {error}") from None
