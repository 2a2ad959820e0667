"""The state every command shares: global options, and the ledger and settings opened lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ipguard.config import Settings
    from ipguard.ledger.store import Store
    from ipguard.runner import Scanner


@dataclass
class AppState:
    """Global options of one invocation, and what they open."""

    db: str | None = None
    config: str | None = None
    actor_name: str | None = None
    debug: bool = False
    # The scanner seam: None scans the network; tests pass a factory of their fake scanner.
    scanner_factory: Callable[[], Scanner] | None = field(default=None, repr=False)
    wait: float | None = None  # seconds to wait for another process's write lock (SQLite)
    _store: Store | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)

    def store(self) -> Store:
        """The ledger, opened and migrated on first use."""
        if self._store is None:
            from ipguard.ledger.store import Store
            from ipguard.ledger.urls import resolve_url

            self._store = Store(resolve_url(self.db), wait=self.wait)
        return self._store

    def settings(self) -> Settings:
        """ipguard.toml, read and checked on first use."""
        if self._settings is None:
            from ipguard.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    def zone(self) -> tzinfo:
        """The administrators' time zone (`[policy] timezone`): the days people give and read."""
        return self.settings().policy.timezone

    @property
    def actor(self) -> str:
        """Who the audit trail names for changes made by this invocation.

        Audit rows can never be corrected, so the name follows the ledger's text rules.
        """
        from ipguard.errors import InvalidValue
        from ipguard.fields import MAX_ACTOR, FieldError, parse_audit_text
        from ipguard.ledger.audit import current_actor

        actor = current_actor(self.actor_name)
        where, hint = _actor_source(self.actor_name)
        try:
            actor = parse_audit_text(actor, where, MAX_ACTOR)
        except FieldError as error:
            raise InvalidValue(f"{where} {error.value!r}: {error.reason}{hint}") from None
        if "\n" in actor or "\t" in actor:
            raise InvalidValue(f"{where} {actor!r}: a name is one line of text{hint}")
        return actor

    def refuse_own_file(self, path: str, option: str) -> None:
        """Refuse to write `path` when it is the ledger, its WAL/SHM/journal or its spool."""
        from ipguard import spool
        from ipguard.errors import InvalidValue
        from ipguard.ledger.urls import resolve_url

        if path == "-":
            return
        url = resolve_url(self.db)
        target = Path(path).expanduser().resolve()
        owned: list[Path] = []
        ledger = spool.sqlite_file(url)
        if ledger is not None:
            ledger = ledger.resolve()
            owned = [ledger.with_name(ledger.name + suffix) for suffix in _SQLITE_FILES]
        hit = any(target == own or _same_file(target, own) for own in owned) or any(
            target.is_relative_to(directory.resolve()) for directory in spool.directories(url)
        )
        if hit:
            raise InvalidValue(
                f"{option} {path}: that is the ledger's own file; writing there would destroy "
                "the ledger. Give another path"
            )

    def close(self) -> None:
        """Release the ledger."""
        if self._store is not None:
            self._store.close()


_SQLITE_FILES = ("", "-wal", "-shm", "-journal")


def _actor_source(given: str | None) -> tuple[str, str]:
    """Where the actor's name came from (audit.current_actor's order), and what to do instead."""
    import os

    if given:
        return "--actor", ""
    if os.environ.get("IPGUARD_ACTOR"):
        return "IPGUARD_ACTOR", ""
    return "the login name (LOGNAME, USER)", "; give --actor NAME"


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.exists() and other.exists() and one.samefile(other)
    except OSError:
        return False


def settle() -> None:
    """Start-up is over: collect garbage from now on, never again looking at what it loaded.

    `main.run` (the console entry point) turns the collector off first: start-up allocates
    over 100,000 objects (modules, classes, typer's and SQLAlchemy's tables), hardly any of
    them garbage, and collecting among them cost 10-15 % of a short command's CPU (0.06 s of
    a sweep-only scan). Each command settles as its own work starts; `scan` once its ledger is
    imported, after its first probes. In-process callers (tests) never turned it off.
    """
    import gc

    if not gc.isenabled():
        gc.freeze()  # what start-up made stays: later collections need not look at it
        gc.enable()


def site_option(value: str | None) -> str | None:
    """The callback of the `--site` options that read or scope by site: a site name, else exit 2.

    As `config.check_site` takes a sensor's site (one line, the ledger's site rules), except that
    '' stays '' (every site, or no filter). Refused here, an undecodable byte (a lone surrogate,
    which no database can store: a traceback before) or a line break never reaches a query, a
    table title or a metrics label.
    """
    if not value:
        return value
    from ipguard.config import check_site

    return check_site(value, "--site")


def state(ctx: typer.Context) -> AppState:
    """The shared state from any command's context."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
