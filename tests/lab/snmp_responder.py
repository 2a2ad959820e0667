"""An SNMPv2c agent with a real device's bad habits, for walks that must not hang.

    python -m tests.lab.snmp_responder --listen 198.18.10.1:1161 --community C --mode loop

It serves system scalars, an ifName column of `--rows` interfaces (bridge ports 1:1) and, with
`--fdb N`, a Q-BRIDGE forwarding table of N MACs, answering GET, GETNEXT and GETBULK. `--mode`:

    ordered    a well-behaved agent
    unordered  GETNEXT answers jump backwards inside the column now and then (old Cisco, some
               D-Link firmware), yet every row comes exactly once: a walk must finish
    loop       after the last row the agent answers with the first row again, forever
    endless    a column that never ends: every answer is a new, larger OID
    cisco      a Catalyst: one BRIDGE-MIB instance per VLAN, read with community@VLAN
    toobig     answers tooBig to a GETBULK asking for more than 15 rows of each column, as an
               agent does whose answer would not fit its message size, rather than send fewer

With `--snmprec FILE` it serves a recorded walk instead (tests/scanners/snmp_walks/), in order.

Runs inside a lab namespace (tests/lab/snmp_lab.py starts it); it stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import bisect
import socket

from ipguard.scanners import snmp_ber as ber

IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
BASE_PORT_IF_INDEX = (1, 3, 6, 1, 2, 1, 17, 1, 4, 1, 2)
FDB_PORT = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 2)
FDB_STATUS = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 3)
DOT1D_FDB_PORT = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 2)
DOT1D_FDB_STATUS = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 3)
TOO_BIG_ABOVE = 15  # max-repetitions above which mode toobig answers tooBig
VTP_VLAN_STATE = (1, 3, 6, 1, 4, 1, 9, 9, 46, 1, 3, 1, 1, 2)
SYSTEM = {
    (1, 3, 6, 1, 2, 1, 1, 1, 0): ("s", b"odd agent"),
    (1, 3, 6, 1, 2, 1, 1, 2, 0): ("o", (1, 3, 6, 1, 4, 1, 99999)),
    (1, 3, 6, 1, 2, 1, 1, 3, 0): ("t", 100),
    (1, 3, 6, 1, 2, 1, 1, 5, 0): ("s", b"odd-agent"),
}


def _value(kind: str, value: object) -> bytes:
    if kind == "s":
        assert isinstance(value, bytes)
        return ber.octets(value)
    if kind == "o":
        assert isinstance(value, tuple)
        return ber.encode_oid(value)
    assert isinstance(value, int)
    body = ber.integer(value)
    return (bytes((0x43,)) + body[1:]) if kind == "t" else body


class Responder:
    """The agent's data and the answer to each request."""

    def __init__(
        self,
        rows: int,
        mode: str,
        fdb: int = 0,
        values: dict[ber.Oid, tuple[str, object]] | None = None,
    ) -> None:
        self.mode = mode
        self.values: dict[ber.Oid, tuple[str, object]] = dict(SYSTEM if values is None else values)
        for index in range(1, rows + 1 if values is None else 1):
            self.values[(*IF_NAME, index)] = ("s", f"port{index}".encode())
            self.values[(*BASE_PORT_IF_INDEX, index)] = ("i", index)
        for entry in range(fdb):  # a switch's forwarding table: `fdb` MACs over the ports
            mac = (2, 0, entry >> 16 & 255, entry >> 8 & 255, entry & 255, 1)
            self.values[(*FDB_PORT, 1, *mac)] = ("i", entry % rows + 1)
            self.values[(*FDB_STATUS, 1, *mac)] = ("i", 3)
        self.order = sorted(self.values)
        self.first_row = (*IF_NAME, 1)
        rows_of = [oid for oid in self.order if oid[: len(IF_NAME)] == IF_NAME]
        self.text_order = sorted(rows_of, key=lambda oid: str(oid[-1]))

    def next_of(self, oid: ber.Oid) -> tuple[ber.Oid, tuple[str, object]] | None:
        """What this agent answers to GETNEXT(oid)."""
        depth = len(IF_NAME)
        if self.mode == "endless" and oid[:depth] == IF_NAME:
            following = (*IF_NAME, (oid[depth] if len(oid) > depth else 0) + 1)
            return following, ("s", b"again")
        if self.mode == "unordered" and oid in self.text_order:
            # The agent keeps its rows sorted as text (1, 10, 11, …, 2, 20, …) and answers
            # with the row after the asked one in that order: out of order, nothing lost.
            at = self.text_order.index(oid) + 1
            if at < len(self.text_order):
                nxt = self.text_order[at]
                return nxt, self.values[nxt]
            oid = max(self.text_order)
        at = bisect.bisect_right(self.order, oid)
        nxt = self.order[at] if at < len(self.order) else None
        if (
            self.mode == "loop"
            and oid[:depth] == IF_NAME
            and (nxt is None or nxt[:depth] != IF_NAME)
        ):
            nxt = self.first_row  # past the end of the column: back to its start
        if nxt is None:
            return None
        if self.mode == "unordered" and nxt[:depth] == IF_NAME and oid[:depth] != IF_NAME:
            nxt = self.text_order[0]
        return nxt, self.values[nxt]

    def answer(self, request: ber.Response) -> list[tuple[ber.Oid, bytes]]:
        """The varbinds of the response."""
        out: list[tuple[ber.Oid, bytes]] = []
        if request.tag == ber.GET:
            for oid, _ in request.varbinds:
                found = self.values.get(oid)
                out.append((oid, _value(*found) if found else b"\x80\x00"))
            return out
        repeats = request.error_index if request.tag == ber.GETBULK else 1
        current = [oid for oid, _ in request.varbinds]
        ended = [False] * len(current)
        for _ in range(max(1, repeats)):  # GETBULK interleaves: row 1 of each, then row 2, …
            for column, oid in enumerate(current):
                step = None if ended[column] else self.next_of(oid)
                if step is None:
                    ended[column] = True
                    out.append((oid, b"\x82\x00"))  # endOfMibView
                    continue
                current[column], value = step
                out.append((current[column], _value(*value)))
            if all(ended):
                break
        return out


def cisco_views(community: bytes) -> dict[bytes, Responder]:
    """A Catalyst's agent: VLANs in vtpVlanState, one BRIDGE-MIB instance per VLAN, each read
    with `community@VLAN` (VLAN 10: two hosts on Gi0/1-2, VLAN 20: one on Gi0/3; the uplink
    Gi0/24 in both), an empty Q-BRIDGE table under the plain community."""
    base: dict[ber.Oid, tuple[str, object]] = {
        **SYSTEM,
        (1, 3, 6, 1, 2, 1, 1, 2, 0): ("o", (1, 3, 6, 1, 4, 1, 9, 1, 716)),
        (1, 3, 6, 1, 2, 1, 1, 5, 0): ("s", b"lab-catalyst"),
    }
    for vlan in (1, 10, 20, 1002):
        base[(*VTP_VLAN_STATE, 1, vlan)] = ("i", 1)
    for port in (1, 2, 3, 24):
        base[(*IF_NAME, 10100 + port)] = ("s", f"Gi0/{port}".encode())
    views = {community: Responder(0, "ordered", values=base)}
    for vlan, ports in ((1, {}), (10, {1: 0x21, 2: 0x22, 24: 0x01}), (20, {3: 0x23, 24: 0x01})):
        table: dict[ber.Oid, tuple[str, object]] = dict(SYSTEM)
        for port, host in ports.items():
            mac = (0x3C, 0x52, 0x82, 0xAA, vlan, host)
            table[(*BASE_PORT_IF_INDEX, port)] = ("i", 10100 + port)
            table[(*DOT1D_FDB_PORT, *mac)] = ("i", port)
            table[(*DOT1D_FDB_STATUS, *mac)] = ("i", 3)
        views[community + f"@{vlan}".encode()] = Responder(0, "ordered", values=table)
    return views


def read_snmprec(path: str) -> dict[ber.Oid, tuple[str, object]]:
    """A recorded walk's values (`OID|TYPE|VALUE`: 2 integer, 4 string, 4x hex string, 6 OID,
    66 Gauge32, 67 TimeTicks) as this agent keeps them."""
    values: dict[ber.Oid, tuple[str, object]] = {}
    with open(path) as lines:
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            oid, kind, raw = line.rstrip("\n").split("|", 2)
            value: tuple[str, object]
            if kind == "4":
                value = ("s", raw.encode())
            elif kind == "4x":
                value = ("s", bytes.fromhex(raw))
            elif kind == "6":
                value = ("o", ber.parse_oid(raw))
            elif kind == "67":
                value = ("t", int(raw))
            else:
                value = ("i", int(raw))  # integers and gauges (sent as INTEGER: enough here)
            values[ber.parse_oid(oid)] = value
    return values


def serve(
    listen: str, community: bytes, rows: int, mode: str, fdb: int = 0, snmprec: str = ""
) -> None:
    """Answer requests until killed."""
    host, port = listen.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    views = cisco_views(community) if mode == "cisco" else {community: Responder(rows, mode, fdb)}
    if snmprec:
        views = {community: Responder(0, "ordered", values=read_snmprec(snmprec))}
    while True:
        data, peer = sock.recvfrom(65535)
        answer = reply(views, mode, data)
        if answer is not None:
            sock.sendto(answer, peer)


def reply(views: dict[bytes, Responder], mode: str, data: bytes) -> bytes | None:
    """The agent's answer to the request `data`, or None for silence."""
    try:
        version, given, request = ber.decode_community_message(data)
    except ber.BerError:
        return None
    agent = views.get(given)
    if agent is None:
        return None  # like a real agent: silence for a wrong community
    status, varbinds = 0, agent.answer(request)
    if mode == "toobig" and request.tag == ber.GETBULK and request.error_index > TOO_BIG_ABOVE:
        status, varbinds = 1, []  # RFC 3416 4.2.1: tooBig, an empty varbind list
    return response(version, given, request.request_id, varbinds, status)


def response(
    version: int,
    community: bytes,
    request_id: int,
    varbinds: list[tuple[ber.Oid, bytes]],
    status: int = 0,
) -> bytes:
    """A v1/v2c response message carrying `varbinds` (values already encoded)."""
    body = b"".join(ber.sequence(ber.encode_oid(oid), value) for oid, value in varbinds)
    pdu = ber.tlv(
        ber.RESPONSE,
        ber.integer(request_id) + ber.integer(status) + ber.integer(0) + ber.sequence(body),
    )
    return ber.community_message(version, community, pdu)


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--community", required=True)
    parser.add_argument("--rows", type=int, default=48)
    modes = ("ordered", "unordered", "loop", "endless", "cisco", "toobig")
    parser.add_argument("--mode", choices=modes)
    parser.add_argument("--fdb", type=int, default=0, help="forwarding-table entries to serve")
    parser.add_argument("--snmprec", default="", help="a recorded walk to serve instead")
    args = parser.parse_args()
    mode = args.mode or "ordered"
    serve(args.listen, args.community.encode(), args.rows, mode, args.fdb, args.snmprec)


if __name__ == "__main__":
    main()
