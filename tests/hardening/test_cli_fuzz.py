"""Issue 12: the command line's argument parsers under fuzz (random ids, dates, sizes and paths).

Every invocation must end with exit 0, 2 (bad input) or 3 (operational), one `error:` or usage
line on failure, and never a traceback. Paths stay inside a temporary directory; nothing here
scans, and nothing touches a crontab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ipguard.cli.main import app

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIMITS = [0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]

ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([str(n) for n in LIMITS] + ["", "1e3", "0x10", "１", "nan"]),
    st.text(max_size=12),
)
dates = st.one_of(
    st.dates().map(str),
    st.sampled_from(
        [
            "9999-12-31",
            "9999-12-30",
            "0001-01-01",
            "2026-02-30",
            "2026-01-01Tgarbage",
            "",
            "9999-12",
        ]
    ),
    st.text(max_size=12),
)
sizes = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "", " 5", "5s"]),
)
names = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in (".", ".."))


def commands(path: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Argument lists for every command that neither scans nor edits a crontab."""
    return st.one_of(
        st.tuples(st.just("findings"), st.sampled_from(["show", "resolve"]), ids),
        st.tuples(
            st.just("findings"),
            st.just("ack"),
            ids,
            st.just("--note"),
            st.text(max_size=20),
            st.just("--until"),
            dates,
        ),
        st.tuples(st.just("findings"), st.just("list"), st.just("--state"), st.text(max_size=10)),
        st.tuples(st.just("runs"), st.just("show"), ids),
        st.tuples(st.just("runs"), st.just("list"), st.just("--limit"), sizes),
        st.tuples(st.just("diff"), ids, ids),
        st.tuples(st.just("prune"), st.just("--dry-run"), st.just("--older-than"), sizes),
        st.tuples(
            st.just("report"),
            st.just("--format"),
            st.just("json"),
            st.sampled_from(["--since", "--until", "--month"]),
            dates,
        ),
        st.tuples(st.just("report"), st.just("-o"), path),
        st.tuples(st.just("ledger"), st.just("export"), path),
        st.tuples(
            st.just("ledger"),
            st.just("import"),
            path,
            st.just("--mode"),
            st.sampled_from(["merge", "replace", "x"]),
            st.just("--max-retire"),
            sizes,
        ),
        st.tuples(st.just("ledger"), st.just("list"), st.just("--status"), st.text(max_size=10)),
        st.tuples(st.just("ledger"), st.sampled_from(["show", "history", "remove"]), ids),
        st.tuples(st.just("ledger"), st.just("add"), ids, ids, st.just("--guest-until"), dates),
        st.tuples(
            st.just("ledger"), st.just("edit"), ids, st.just("--status"), st.text(max_size=8)
        ),
        st.tuples(st.just("pools"), st.just("add"), st.text(max_size=8), ids),
        st.tuples(st.just("pools"), st.sampled_from(["remove", "next-free"]), ids),
    ).map(list)


@st.composite
def invocations(draw: Any, root: Path) -> list[str]:
    path = st.one_of(
        names.map(lambda name: str(root / name)),
        st.sampled_from([str(root), str(root / "missing" / "x.csv"), "-", "", str(root / "l.db")]),
    )
    prefix: list[str] = []
    if draw(st.booleans()):
        prefix += ["--db", draw(path)]
    else:
        prefix += ["--db", str(root / "l.db")]
    if draw(st.booleans()):
        prefix += ["--wait", draw(sizes)]
    return [*prefix, *draw(commands(path))]


@FUZZ
@given(data=st.data())
def test_argument_parsers_answer_every_input(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, data: Any
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(root)
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "state"))
    monkeypatch.setenv("IPGUARD_ACTOR", "fuzzer")
    monkeypatch.delenv("IPGUARD_CONFIG", raising=False)
    monkeypatch.delenv("IPGUARD_DB", raising=False)
    args = data.draw(invocations(root))
    outcome = CliRunner().invoke(app, args)
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), (
        args,
        repr(outcome.exception),
    )
    assert outcome.exit_code in (0, 2, 3), (args, outcome.stderr)
    assert "Traceback" not in outcome.stderr + outcome.stdout
    if outcome.exit_code:
        first = outcome.stderr.lstrip().splitlines()[0] if outcome.stderr.strip() else ""
        assert first.startswith(("error: ", "Usage: ")), (args, outcome.stderr)
