"""Files root makes for a ledger that belongs to another user keep that user as their owner.

The README's set-up runs cron scans as an unprivileged `ipguard` user; an administrator still runs
ipguard by hand with sudo now and then. SQLite gives the -wal and -shm files it makes as root the
ledger's owner; ipguard does the same with the files it makes itself, or every later cron scan
fails on a file only root may write.
"""

from __future__ import annotations

import os
from pathlib import Path


def give_to_directory_owner(ledger: Path) -> None:
    """As root, make a ledger just created in another user's directory that user's.

    `sudo ipguard --db /var/lib/ipguard/ledger.db ledger import …` before the ipguard user's
    first scan made the file root's: every cron scan as that user then failed on a read-only
    ledger.
    """
    if os.geteuid() != 0:
        return
    try:
        owner = ledger.parent.stat()
        if owner.st_uid == 0:
            return
        for suffix in ("", "-wal", "-shm"):
            made = ledger.with_name(ledger.name + suffix)
            if made.exists():
                os.chown(made, owner.st_uid, owner.st_gid)
    except OSError:  # a file system without owners (vfat, some network mounts): nothing to keep
        pass


def give_handle_to_owner_of(handle: int, ledger: Path) -> None:
    """As root, make the open file `handle` (a scan lock) the ledger's owner's.

    A scan run by hand with sudo on the ipguard user's ledger left a lock file only root could
    open, and every later cron scan of the site failed on it (exit 3) until someone removed it.
    """
    if os.geteuid() != 0:
        return
    try:
        owner = ledger.stat() if ledger.exists() else ledger.parent.stat()
        os.fchown(handle, owner.st_uid, owner.st_gid)
    except OSError:
        pass
