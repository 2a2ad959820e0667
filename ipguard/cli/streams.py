"""Standard output as a command writes it: a write that fails is one error line, not a traceback.

The console entry point (`main.run`) puts `guard()` in place before any command runs:

- a reader that went away (`ipguard ledger list | head`) has what it wanted: the rest of the
  output is dropped and the command ends as it would have, with its own exit code (a scan piped
  into `head` still exits 1 for its findings);
- any other failure (a full disk behind `> file`, an I/O error) stops the command with
  `error: cannot write to standard output: …` and exit 3, once; what the command had already
  changed in the ledger stays changed, as after any other operational error;
- standard input, output or error closed by the caller (`>&-`, some daemons) is reopened on
  /dev/null first, so that the ledger file opened next never becomes file descriptor 1 (nor
  0 or 2) where anything written to "standard output" would land in the database, or a
  program started later inherit it as its output. Output meant for a closed standard output
  is the failure above;
- a character the output's encoding cannot hold (a Chinese name on a Latin-1 terminal, say
  `PYTHONIOENCODING=latin-1` or an ISO-8859-1 locale) is written as an escape (`\\u674e`).
"""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING

from ipguard.errors import OperationalError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class OutputFailed(OperationalError):
    """Standard output cannot be written (full disk, I/O error, closed)."""


class _StandardOutput(io.RawIOBase):
    """File descriptor 1 underneath sys.stdout's buffer, failing as the module docstring says."""

    def __init__(self, *, closed_by_caller: bool) -> None:
        super().__init__()
        self._closed_by_caller = closed_by_caller
        self._dropping = False  # after a failure: the rest goes nowhere, and fails no more

    def writable(self) -> bool:
        """Always: a failure is reported by `write`."""
        return True

    def fileno(self) -> int:
        """Descriptor 1 (rich and click ask, to tell a terminal)."""
        return 1

    def isatty(self) -> bool:
        """Whether standard output is a terminal (never when it was closed)."""
        return not self._closed_by_caller and os.isatty(1)

    def write(self, data: ReadableBuffer) -> int:
        """Write to descriptor 1; see the module docstring for what a failure does."""
        size = memoryview(data).nbytes
        if self._dropping:
            return size
        if self._closed_by_caller:
            self._dropping = True
            raise OutputFailed(
                "cannot write to standard output: it is closed; "
                "redirect it to a file or /dev/null instead"
            )
        try:
            return os.write(1, data)
        except BrokenPipeError:
            self._dropping = True  # the reader has what it wanted
            return size
        except OSError as error:
            self._dropping = True
            raise OutputFailed(f"cannot write to standard output: {error.strerror}") from None


def _reopen_closed(fd: int, mode: int) -> bool:
    """Put /dev/null on `fd` when the caller closed it; whether it was closed."""
    try:
        os.fstat(fd)
        return False
    except OSError:
        pass
    null = os.open(os.devnull, mode)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)
    return True


def guard() -> None:
    """Make standard output fail as the module docstring says (the console entry point only)."""
    _reopen_closed(0, os.O_RDONLY)
    stdout_closed = _reopen_closed(1, os.O_WRONLY)
    if _reopen_closed(2, os.O_WRONLY):
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    current = sys.stdout
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_StandardOutput(closed_by_caller=stdout_closed)),
        encoding=getattr(current, "encoding", None) or "utf-8",
        # A character the terminal's encoding lacks (李 on a Latin-1 terminal) is shown as an
        # escape, like a control character, instead of failing the command with a traceback.
        errors="backslashreplace",
        line_buffering=bool(getattr(current, "line_buffering", False)),
    )
