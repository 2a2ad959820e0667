"""Kernel filters for IPv6 frames whose ICMPv6 or UDP header may sit behind extension headers.

The classic BPF counterpart of :func:`scanners.ipv6wire.upper_layer`: the same headers (hop-by-hop,
routing, fragment, destination options), the same bound (``MAX_EXTENSIONS``), so that what the
kernel lets through is what the parsers can read, plus later fragments, which they count.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipguard.scanners import rawsock
from ipguard.scanners.ipv6wire import (
    ETH_HEADER,
    ETH_P_IPV6,
    IPV6_HEADER,
    MAX_EXTENSIONS,
    NH_DEST_OPTIONS,
    NH_FRAGMENT,
    NH_HOP_BY_HOP,
    NH_ROUTING,
)

# Classic BPF beyond what rawsock names: the walk keeps the offset of the next header in X.
_LDX_IMM, _TAX, _TXA, _ST, _LD_MEM = 0x01, 0x07, 0x87, 0x02, 0x60
_ADD_K, _ADD_X, _LSH_K, _JSET_K, _JA = 0x04, 0x0C, 0x64, 0x45, 0x05
Check = tuple[int, int, tuple[int, ...]]  # (load opcode, offset, the values that pass)
_Op = tuple[int, int | str, int | str, int | str]  # (opcode, jt, jf, k); str: a label


def upper_layer_filter(
    protocol: int, checks: Sequence[Check], snaplen: int, frame_checks: Sequence[Check] = ()
) -> list[rawsock.Insn]:
    """Kernel filter: IPv6 frames carrying ``protocol`` behind at most MAX_EXTENSIONS headers.

    ``frame_checks`` load at absolute offsets (the EtherType is checked first); ``checks`` load
    relative to the upper-layer header (LDB_IND, LDH_IND, LDW_IND); a frame passes when each
    loaded value is one of its check's values. A later fragment of ``protocol`` passes too, for
    the parser to count. Classic BPF jumps only forward, so the walk is unrolled; a load past
    the captured bytes rejects the frame (the kernel's rule).
    """
    code: list[_Op | str] = []
    for i, (load, offset, values) in enumerate(
        ((rawsock.LDH_ABS, 12, (ETH_P_IPV6,)), *frame_checks)
    ):
        code += [(load, 0, 0, offset), *_one_of(values, f"frame{i}"), f"frame{i}"]
    code += [(_LDX_IMM, 0, 0, ETH_HEADER + IPV6_HEADER), (rawsock.LDB_ABS, 0, 0, ETH_HEADER + 6)]
    for step in range(MAX_EXTENSIONS):
        ext, frag, walk = f"ext{step}", f"frag{step}", f"walk{step + 1}"
        code += [(rawsock.JEQ_K, "upper", 0, protocol), (rawsock.JEQ_K, frag, 0, NH_FRAGMENT)]
        code += [(rawsock.JEQ_K, ext, 0, kind) for kind in (NH_HOP_BY_HOP, NH_ROUTING)]
        code += [(rawsock.JEQ_K, ext, "reject", NH_DEST_OPTIONS)]
        # X += 8 * (length + 1), A = the next header: kept in M[0] meanwhile.
        code += [ext, (rawsock.LDB_IND, 0, 0, 0), (_ST, 0, 0, 0), (rawsock.LDB_IND, 0, 0, 1)]
        code += [(_LSH_K, 0, 0, 3), (_ADD_K, 0, 0, 8), (_ADD_X, 0, 0, 0), (_TAX, 0, 0, 0)]
        code += [(_LD_MEM, 0, 0, 0), (_JA, 0, 0, walk)]
        code += [frag, (rawsock.LDH_IND, 0, 0, 2), (_JSET_K, "later", 0, 0xFFF8)]
        code += [(rawsock.LDB_IND, 0, 0, 0), (_ST, 0, 0, 0), (_TXA, 0, 0, 0), (_ADD_K, 0, 0, 8)]
        code += [(_TAX, 0, 0, 0), (_LD_MEM, 0, 0, 0), walk]
    code += [(rawsock.JEQ_K, "upper", "reject", protocol)]
    code += ["later", (rawsock.LDB_IND, 0, 0, 0), (rawsock.JEQ_K, "accept", "reject", protocol)]
    code += ["upper"]
    for i, (load, offset, values) in enumerate(checks):
        code += [(load, 0, 0, offset), *_one_of(values, f"upper{i}"), f"upper{i}"]
    code += ["accept", (rawsock.RET_K, 0, 0, snaplen), "reject", (rawsock.RET_K, 0, 0, 0)]
    return _assemble(code)


def _one_of(values: tuple[int, ...], passed: str) -> list[_Op]:
    """Jumps to ``passed`` when A is one of ``values``, else to the filter's rejection."""
    return [
        (rawsock.JEQ_K, passed, "reject" if i == len(values) - 1 else 0, value)
        for i, value in enumerate(values)
    ]


def _assemble(code: Sequence[_Op | str]) -> list[rawsock.Insn]:
    """Instructions, with each label (a str in ``code``, or a jump's target) made an offset."""
    labels: dict[str, int] = {}
    ops: list[_Op] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(ops)
        else:
            ops.append(item)

    def offset(target: int | str, at: int) -> int:
        jump = target if isinstance(target, int) else labels[target] - at - 1
        if not 0 <= jump <= 255:  # a jump field is one byte, and never backwards
            raise ValueError(f"BPF jump of {jump} at instruction {at}")
        return jump

    return [
        rawsock.Insn(op, offset(jt, at), offset(jf, at), offset(k, at) if op == _JA else int(k))
        for at, (op, jt, jf, k) in enumerate(ops)
    ]
