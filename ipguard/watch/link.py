"""The watched interface: listened to while it is there, waited for while it is not.

An interface that disappears, is replaced (deleted and made again: a new index) or is set down
closes the capture; the watcher tries to listen again once a second and says when it does. One
that is up without a link (a pulled cable, a switch port shut down: no carrier) keeps its capture,
since frames come again with the link, but is said once when it goes and once when it comes back:
silence must not pass for a quiet LAN.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ipguard.errors import InterfaceError
from ipguard.scanners import rawsock
from ipguard.scanners.passive import Capture


class Link:
    """One interface's capture, and what is said about the interface (see the module)."""

    def __init__(self, interface: str, warn: Callable[[str], None], counts: Counter[str]) -> None:
        self.interface = interface
        self.warn = warn
        self.counts = counts  # the watcher's: interface_lost, kernel_drops
        self.capture: Capture | None = None
        self._no_link = False

    def open(self) -> None:
        """Start listening; raises InterfaceError (missing, not Ethernet), PrivilegeError."""
        self.capture = Capture(self.interface)

    def close(self) -> None:
        """Stop listening."""
        if self.capture is not None:
            self.capture.close()
            self.capture = None

    def check(self) -> None:
        """Every few seconds: the kernel's drops, and the interface still there, up, linked."""
        if self.capture is None:
            return
        self.counts["kernel_drops"] += self.capture.dropped()
        try:
            info = rawsock.interface_info(self.interface)
        except InterfaceError as error:
            self.lost(str(error))
            return
        if info.index != self.capture.interface.index:
            self.lost(f"interface {info.name} was replaced")
        elif not info.up:
            self.lost(f"interface {info.name} is down")
        elif not info.running and not self._no_link:
            self._no_link = True
            self.counts["interface_lost"] += 1
            self.warn(
                f"interface {info.name} has no link (a pulled cable, a switch port down): "
                "nothing can be heard; watching goes on and says when it is back"
            )
        elif info.running and self._no_link:
            self._no_link = False
            self.warn(f"interface {info.name} has its link again")

    def lost(self, why: str) -> None:
        """The capture failed or the interface went: close it and wait for it."""
        self.close()
        self.counts["interface_lost"] += 1
        self.warn(f"{why}; watching waits for it and listens again when it is back")

    def reopen(self) -> None:
        """Listen again if the interface is back and up (quietly otherwise)."""
        try:
            info = rawsock.interface_info(self.interface)
            if not info.up:
                return
            self.open()
        except InterfaceError:
            return
        self._no_link = False  # said afresh, if still so, at the next check
        self.warn(f"listening on {self.interface} again")
