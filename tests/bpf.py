"""Classic BPF, as the kernel runs a socket filter: how many bytes of a frame a program keeps.

The instructions ipguard's filters use (rawsock, scanners.ipv6wire). Any other opcode is an error
here, so a filter that grows an instruction this interpreter does not know fails its tests instead
of passing them by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipguard.scanners.rawsock import Insn

_SIZES = {0x00: 4, 0x08: 2, 0x10: 1}  # BPF_W, BPF_H, BPF_B
_MAX_STEPS = 4096


def run_filter(program: Sequence[Insn], frame: bytes) -> int:
    """The bytes the kernel would keep of ``frame`` (0: dropped), running ``program``."""
    pc, acc, x = 0, 0, 0
    memory = [0] * 16
    for _ in range(_MAX_STEPS):
        insn = program[pc]
        code, k = insn.code, insn.k
        pc += 1
        cls = code & 0x07  # the instruction class: 0 LD
        if cls == 0x00 and code & 0xE0 in (0x20, 0x40):  # LD abs or ind
            offset = k + (x if code & 0xE0 == 0x40 else 0)
            size = _SIZES[code & 0x18]
            if offset + size > len(frame):
                return 0  # the kernel drops a frame a load runs past
            acc = int.from_bytes(frame[offset : offset + size], "big")
        elif code == 0xB1:  # LDX MSH: 4 * (low nibble of [k])
            if k >= len(frame):
                return 0
            x = 4 * (frame[k] & 0x0F)
        elif code == 0x01:  # LDX IMM
            x = k
        elif code == 0x02:  # ST
            memory[k] = acc
        elif code == 0x60:  # LD MEM
            acc = memory[k]
        elif code in (0x04, 0x0C):  # ADD k, ADD x
            acc = (acc + (x if code & 0x08 else k)) & 0xFFFFFFFF
        elif code == 0x64:  # LSH k
            acc = (acc << k) & 0xFFFFFFFF
        elif code == 0x07:  # TAX
            x = acc
        elif code == 0x87:  # TXA
            acc = x
        elif code == 0x05:  # JA
            pc += k
        elif code == 0x15:  # JEQ k
            pc += insn.jt if acc == k else insn.jf
        elif code == 0x45:  # JSET k
            pc += insn.jt if acc & k else insn.jf
        elif code == 0x06:  # RET k
            return k
        else:
            raise AssertionError(f"opcode {code:#x} is not interpreted here")
    raise AssertionError("the program did not return")
