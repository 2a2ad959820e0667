"""`ipguard watch` under systemd: the service unit, and sd_notify with the standard library.

The unit is `Type=notify`: the watcher says READY=1 once it listens and has recorded its run, then
WATCHDOG=1 at half the watchdog interval systemd gives it (WATCHDOG_USEC), so a hung watcher is
restarted. It runs as the unprivileged `ipguard` user of the README with CAP_NET_RAW as its only
capability, given by systemd (AmbientCapabilities), so the interpreter needs no file capability.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence

UNIT_NAME = "ipguard-watch.service"
WATCHDOG_SECONDS = 30


def notify(message: str) -> bool:
    """Send one sd_notify message ("READY=1", "WATCHDOG=1", …); False when not under systemd."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    address = "\0" + path[1:] if path[0] == "@" else path  # "@": the abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 messages (half systemd's interval), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


def _word(word: str) -> str:
    """One ExecStart= argument, quoted as systemd reads it (`%` and `$` are its specifiers)."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%+=:,./$-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit(
    argv: Sequence[str], *, site: str, writable: Sequence[str] = (), user: str = "ipguard"
) -> str:
    """The service that runs `argv` (an `ipguard … watch` command) for one site.

    `writable`: directories beyond /var/lib/ipguard the watcher writes (a SQLite ledger's).
    """
    paths = [f"ReadWritePaths={_word(path)}" for path in writable]
    return "\n".join(
        [
            "[Unit]",
            f"Description=ipguard watch: passive ARP and DHCP monitoring of site {site}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=notify",
            "NotifyAccess=main",
            f"ExecStart={' '.join(_word(word) for word in argv)}",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "RestartSec=5",
            f"WatchdogSec={WATCHDOG_SECONDS}",
            "# SIGTERM: the watcher stores what it holds, closes its run and exits 0.",
            "TimeoutStopSec=30",
            f"User={user}",
            f"Group={user}",
            "# Raw sockets only, and nothing else: no root, no file capability needed.",
            "AmbientCapabilities=CAP_NET_RAW",
            "CapabilityBoundingSet=CAP_NET_RAW",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "StateDirectory=ipguard",
            *paths,
            "WorkingDirectory=/var/lib/ipguard",
            "Environment=HOME=/var/lib/ipguard",
            "# A PostgreSQL password belongs in a root-owned file of mode 600, never in the unit:",
            "# EnvironmentFile=-/etc/ipguard/watch.env   (IPGUARD_DB=postgresql+psycopg://…)",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
