"""What `pip install` puts into site-packages: one top-level package, `ipguard`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_scanners_and_policies_under_the_ipguard_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ipguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "ipguard",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    for module in ("ipguard/scanners/arp.py", "ipguard/policies/base.py", "ipguard/cli/main.py"):
        assert module in names


def test_the_source_tree_imports_only_the_namespaced_packages() -> None:
    # ipguard/scanners and ipguard/policies are links to the top-level folders the project is laid
    # out in; a bare `import scanners` would load the same files a second time under another name.
    for link in ("scanners", "policies"):
        assert (REPO / "ipguard" / link).resolve() == REPO / link
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "grep", "-n", "-E", r"^\s*(from|import) (scanners|policies)\b"],
        capture_output=True,
        text=True,
    )
    assert tracked.stdout == ""
