"""Files written whole or not at all: a temporary file beside the target, renamed over it.

What a reader finds at the path is always a complete file (a report half-written by a full disk,
or a metrics file node_exporter reads mid-write, never is). Two kinds of target are not replaced:
a symbolic link keeps pointing where it points (the file it names is replaced), and a target that
is no regular file (`/dev/null`, `/dev/stdout`, a named pipe) is written to as it is: renaming a
file over it replaced the device node itself (`metrics write /dev/null`, run as root, did).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_text(path: Path, text: str, *, mode: int | None = None, durable: bool = False) -> None:
    """`text` (UTF-8, line endings as given) at `path`; `mode` defaults to what open() makes
    under the umask, `durable` also syncs it to disk before the rename. OSError as raised."""
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)  # follows links, as open() does
    except FileNotFoundError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        return
    target = Path(os.path.realpath(path))
    # The temporary name ends in .tmp: a collector reading *.prom never reads it.
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        if mode is None:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
