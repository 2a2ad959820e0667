"""The state every command shares: global options, and the ledger and settings opened lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    _store: Store | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)

    def store(self) -> Store:
        """The ledger, opened and migrated on first use."""
        if self._store is None:
            from ipguard.ledger.store import Store, resolve_url

            self._store = Store(resolve_url(self.db))
        return self._store

    def settings(self) -> Settings:
        """ipguard.toml, read and checked on first use."""
        if self._settings is None:
            from ipguard.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    @property
    def actor(self) -> str:
        """Who the audit trail names for changes made by this invocation."""
        from ipguard.ledger.audit import current_actor

        return current_actor(self.actor_name)

    def close(self) -> None:
        """Release the ledger."""
        if self._store is not None:
            self._store.close()


def state(ctx: typer.Context) -> AppState:
    """The shared state from any command's context."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
