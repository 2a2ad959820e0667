"""Time policies.evaluate: 65,000 observations against a ledger (by default 100,000 records).

    python -m bench.policy_eval --db sqlite:///big.db [--runs 5]    # a ledger `ledger import` made
    python -m bench.policy_eval                                      # a synthetic 100,000 records
    python -m bench.policy_eval --chinese      # the same, owned by teachers with Chinese names

Prints one JSON object: the seconds to load the ledger snapshot (as a scan's policies phase does)
and, per run, the wall and CPU seconds of `policies.evaluate`, and the findings by kind. The run
facts are those of a real network seen against its ledger:
- 60,000 registered devices answer, 1 % of them from another MAC (an address taken over), every
  tenth twice (a repeated reply), one in a thousand also from a second MAC (a duplicate IP);
- 5,000 strangers answer at addresses the ledger does not hold;
- open ports on every seventh host, names on every third (some break the hostname rule);
- one pool per /24 for the department that holds it, and a last sighting for every record, up to
  60 days back (stale registrations).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ipguard.config import PolicySettings
from ipguard.model import (
    Binding,
    NameObservation,
    NameSource,
    Observation,
    ObservationSource,
    ServiceObservation,
)
from ipguard.policies import evaluate
from ipguard.policies.base import PoolRange, RunFacts

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ARP = ObservationSource.ARP
ANSWERING = 60_000
STRANGERS = 5_000


def ip(i: int) -> str:
    """The i-th address of the benchmark's network (10.20.0.0 up)."""
    return f"10.{20 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def mac(i: int) -> str:
    """A distinct locally administered MAC per i."""
    return "02:00:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def dept(i: int) -> str:
    """The department holding the /24 of address i."""
    return f"dept{(i // 256) % 50}"


def synthetic_ledger(count: int = 100_000) -> list[Binding]:
    """`count` records shaped like bench.ledger_scale's file, without a database."""
    return [Binding(ip(i), mac(i), owner=f"user{i}", department=dept(i)) for i in range(count)]


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗单曾吕"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "明")
UNITS = ("数学组", "语文组", "英语组", "物理组", "信息技术中心", "计算机科学与技术学院")


def chinese_ledger(count: int = 100_000) -> list[Binding]:
    """`count` records owned by teachers with Chinese names in Chinese units, each computer
    named in pinyin as `^{department}-{owner}$` wants (policies.spelling reads them back)."""
    from pypinyin import lazy_pinyin

    records = []
    for i in range(count):
        owner = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
        unit = UNITS[(i // 256) % len(UNITS)]
        name = "".join(lazy_pinyin(unit)) + "-" + "".join(lazy_pinyin(owner))
        records.append(Binding(ip(i), mac(i), hostname=name, owner=owner, department=unit))
    return records


def load_ledger(url: str) -> list[Binding]:
    """Every record of the ledger at `url`, as the runner reads it for the policies."""
    from ipguard.ledger import devices
    from ipguard.ledger.store import Store

    store = Store(url)
    try:
        with store.session(write=False) as session:
            return devices.snapshot(session)
    finally:
        store.close()


def facts_for(ledger: Sequence[Binding]) -> RunFacts:
    """65,000 observations of a network against `ledger` (see the module's docstring)."""
    records = list(ledger)
    answering = records[:ANSWERING]
    taken = {b.ip for b in records}
    observations: list[Observation] = []
    for k, binding in enumerate(answering):
        answer_from = mac(500_000 + k) if k % 100 == 1 else binding.mac
        observations.append(Observation(binding.ip, answer_from, NOW, ARP, rtt_ms=0.4))
        if k % 10 == 0:
            observations.append(Observation(binding.ip, answer_from, NOW, ARP, rtt_ms=0.5))
        if k % 1000 == 2:
            observations.append(Observation(binding.ip, mac(700_000 + k), NOW, ARP))
    strangers = (i for i in range(2 * len(records) + STRANGERS) if ip(i) not in taken)
    for _, i in zip(range(STRANGERS), strangers, strict=False):
        observations.append(Observation(ip(i), mac(300_000 + i), NOW, ARP, rtt_ms=0.4))
    blocks = sorted({b.ip.rsplit(".", 1)[0] for b in records})
    departments = {b.ip.rsplit(".", 1)[0]: b.department for b in reversed(records)}
    return RunFacts(
        now=NOW,
        subnets=("10.20.0.0/15",),
        observations=tuple(observations),
        services=tuple(
            ServiceObservation(b.ip, "tcp", 8080 if k % 2 else 22, "http-proxy")
            for k, b in enumerate(answering)
            if k % 7 == 0
        ),
        names=tuple(
            NameObservation(b.ip, b.hostname if k % 100 else "DESKTOP-1234", NameSource.DNS)
            for k, b in enumerate(answering)
            if k % 3 == 0
        ),
        ledger=tuple(records),
        pools=tuple(PoolRange(departments[block], f"{block}.0/24") for block in blocks),
        last_seen={(b.ip, b.mac): NOW - timedelta(days=k % 60) for k, b in enumerate(records)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Load, build the facts, evaluate `--runs` times; print JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.policy_eval")
    parser.add_argument("--db", help="ledger URL (default: a synthetic 100,000-record ledger)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--chinese", action="store_true", help="a synthetic ledger of Chinese names (pinyin hosts)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.db:
        ledger = load_ledger(args.db)
    else:
        ledger = chinese_ledger() if args.chinese else synthetic_ledger()
    loaded = time.perf_counter() - started
    facts = facts_for(ledger)
    settings = PolicySettings()
    walls, cpus, found = [], [], []
    for _ in range(max(1, args.runs)):
        wall, cpu = time.perf_counter(), time.process_time()
        found = evaluate(facts, settings)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(
        json.dumps(
            {
                "records": len(facts.ledger),
                "observations": len(facts.observations),
                "hosts": len({o.ip for o in facts.observations}),
                "services": len(facts.services),
                "names": len(facts.names),
                "pools": len(facts.pools),
                "load_seconds": loaded,
                "walls": walls,
                "cpus": cpus,
                "findings": dict(Counter(f.kind.value for f in found)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
