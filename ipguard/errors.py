"""Every error ipguard raises on purpose.

    IpguardError                     exit 3 unless a subclass says otherwise
    ├── InputError                   exit 2: the user gave something we cannot use
    │   ├── ConfigError              ipguard.toml: unknown key, bad value
    │   ├── LedgerFileError          an import file with bad rows (every row listed)
    │   ├── InvalidValue             a bad IP, MAC, role, date … given on the command line
    │   ├── NotFound                 no ledger record / pool / run / finding with that key
    │   ├── Conflict                 the change breaks a rule (active IP twice, pools overlap)
    │   └── ScopeError               a target outside the subnets the configuration allows
    └── OperationalError             exit 3: the machine or its surroundings failed us
        ├── LedgerUnavailable        the database cannot be opened, read or written
        │   └── DamagedHistory       a run's packed history cannot be read back
        ├── PrivilegeError           raw sockets need root or CAP_NET_RAW
        ├── InterfaceError           the interface is missing or down
        ├── ToolMissing              an external program (nmap) is not installed
        ├── ScanError                a scanner failed while running
        ├── ScanAborted              a signal stopped the scan; the run is marked aborted
        └── LockHeld                 another scan of the same site holds the lock

Messages say what failed and what to do about it. Only the command-line layer turns these into
output and exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class IpguardError(Exception):
    """Base of every error ipguard raises on purpose."""

    exit_code = 3

    @property
    def details(self) -> list[str]:
        """Lines shown under the error's one line (such as every bad row of a file)."""
        return []


class InputError(IpguardError):
    """The user gave something ipguard cannot use."""

    exit_code = 2


class ConfigError(InputError):
    """The configuration file has an unknown key or a bad value."""


@dataclass(frozen=True)
class LineProblem:
    """One bad row of an import file: where it is and what is wrong with it."""

    line: int
    field: str
    value: str
    reason: str
    unit: str = "line"  # JSON files count items, not lines
    cell: str = ""  # XLSX: the cell holding the value, as a spreadsheet names it ('Sheet 1'!C2)

    def __str__(self) -> str:
        where = f"{self.unit} {self.line}"
        if self.cell:
            where += f" ({self.cell})"
        if self.field:
            where += f", {self.field}"
            if self.value:
                where += f" {self.value!r}"
        return f"{where}: {self.reason}"


class LedgerFileError(InputError):
    """An import file that cannot be imported; nothing was changed."""

    SHOWN = 50  # bad rows listed under the error line; `ledger import --errors FILE` has them all

    def __init__(self, path: str, problems: Sequence[LineProblem] = (), message: str = "") -> None:
        self.path = path
        self.problems = list(problems)
        if not message:
            if len(self.problems) == 1:
                message = f"{path}: {self.problems[0]}; nothing was imported"
            else:
                message = (
                    f"{path}: {len(self.problems)} bad rows, listed below; nothing was imported"
                )
        super().__init__(message)

    @property
    def details(self) -> list[str]:
        """Every bad row when there are several, up to SHOWN of them."""
        if len(self.problems) < 2:
            return []
        lines = [str(problem) for problem in self.problems[: self.SHOWN]]
        hidden = len(self.problems) - self.SHOWN
        if hidden > 0:
            lines.append(f"… and {hidden} more; ledger import --errors FILE writes every one")
        return lines


class InvalidValue(InputError):
    """A value given on the command line is not valid (IP, MAC, role, date …)."""


class NotFound(InputError):
    """No ledger record, pool, run or finding has that key."""


class Conflict(InputError):
    """The change would break a ledger rule, such as one active record per IP."""


class ScopeError(InputError):
    """A target lies outside the subnets that the configuration authorises."""


class OperationalError(IpguardError):
    """The machine or its surroundings failed: database, privileges, interface, tools."""


class LedgerUnavailable(OperationalError):
    """The ledger database cannot be opened, read or written."""


class DamagedHistory(LedgerUnavailable):
    """What a run saw, kept packed in the ledger, cannot be read back (a damaged row)."""


class PrivilegeError(OperationalError):
    """Raw sockets need root or CAP_NET_RAW."""


class InterfaceError(OperationalError):
    """The network interface is missing or down."""


class ToolMissing(OperationalError):
    """An external program that a scanner needs is not installed."""


class ScanError(OperationalError):
    """A scanner failed while running."""


class ScanAborted(OperationalError):
    """A signal (SIGTERM, SIGINT) stopped the scan; the run is marked aborted."""


class LockHeld(OperationalError):
    """Another scan of the same site holds the lock."""
