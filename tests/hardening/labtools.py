"""Lab helpers for the hardening tests: a hostile host's daemon, ipguard run in the scanner."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.hardening.helpers import REPO, env
from tests.lab import netns
from tests.lab.builder import Lab

IPGUARD = str(Path(sys.executable).with_name("ipguard"))


def config_text(
    lab: Lab, *, ports: str, dns: list[str] | None = None, extra: str = "", rate: int = 2000
) -> str:
    """ipguard.toml for a scan from the lab's scanner namespace (hostname rule of the lab)."""
    return "\n".join(
        [
            "[scan]",
            'interface = "eth0"',
            f"subnets = {json.dumps([lab.subnet])}",
            f"rate = {rate}",
            "retries = 1",
            "timeout = 1.0",
            f"ports = {json.dumps(ports)}",
            'site = "lab"',
            "[names]",
            f"dns_servers = {json.dumps(dns or [])}",
            "[policy]",
            'hostname_rule = "^{department}-{asset_tag}$"',
            extra,
        ]
    )


def ipguard(
    lab: Lab, files: Path, *args: str, in_lab: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`ipguard --db files/ledger.db --config files/ipguard.toml ARGS…` (in the scanner's netns)."""
    argv = [IPGUARD, "--db", str(files / "ledger.db"), "--config", str(files / "ipguard.toml")]
    argv += args
    if in_lab:
        argv = netns.exec_argv(lab.scanner_ns, argv)
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env(files),
        cwd=files,
    )


@contextlib.contextmanager
def daemon(lab: Lab, host: str, module: str, spec: dict[str, Any]) -> Iterator[None]:
    """Run `python -m MODULE SPEC.json` in a lab host's namespace until the block ends.

    The module prints `ready` once its sockets are bound; the lab's teardown would kill it too.
    """
    path = lab.workdir / f"{host}-{module.rsplit('.', 1)[-1]}.json"
    path.write_text(json.dumps(spec))
    process = subprocess.Popen(
        netns.exec_argv(lab.ns(host), [sys.executable, "-B", "-m", module, str(path)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**env(lab.workdir), "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", process.stderr.read() if process.stderr else line
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
