"""How an SNMP agent fails a request: its error-status values, and ipguard's SNMP error tree.

SnmpError          an agent that did not answer, refused us, or answered nonsense
 +- SnmpTimeout    no answer within the timeout, after every retry
 +- SnmpMalformed  every try answered, but by a datagram that does not decode
 +- WalkStopped    a walk given up part way (a loop, a table that never ends)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipguard.scanners.snmp_client import Varbind

TOO_BIG, NO_SUCH_NAME, GEN_ERR = 1, 2, 5  # error-status values (RFC 3416)
ERROR_STATUS = {TOO_BIG: "tooBig", NO_SUCH_NAME: "noSuchName", 3: "badValue", GEN_ERR: "genErr"}
# Answers to a GETBULK that mean "ask for fewer rows": tooBig, the genErr of agents that fail a
# large request whole (HP ProCurve, some Brocade firmware), and the noSuchName of agents that
# keep SNMPv1's habit when a repetition runs past the end of their MIB
SHRINK_ON = frozenset({TOO_BIG, NO_SUCH_NAME, GEN_ERR})


class SnmpError(Exception):
    """An agent that did not answer, refused us, or answered nonsense."""


class SnmpTimeout(SnmpError):
    """No answer within the timeout, after every retry."""


class SnmpMalformed(SnmpError):
    """Every try answered, but by a datagram that does not decode (truncated or garbled)."""


class WalkStopped(SnmpError):
    """A walk given up part way: a loop or a table that never ends; `rows` has what came."""

    def __init__(self, message: str, rows: list[Varbind]) -> None:
        super().__init__(message)
        self.rows = rows
        self.columns: list[list[Varbind]] = [rows]  # every column of the walk, as far as it got
