"""Time policies.evaluate: 65,000 observations against 100,000 ledger records (2 shapes)."""

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from ipguard.config import PolicySettings
from ipguard.model import Binding, NameObservation, Observation, ServiceObservation
from policies import evaluate
from policies.base import PoolRange, RunFacts

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def ip(i: int) -> str:
    return f"10.{20 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def mac(i: int) -> str:
    return "02:00:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def dept(i: int) -> str:
    return f"dept{(i // 256) % 50}"


LEDGER = tuple(Binding(ip(i), mac(i), owner=f"user{i}", department=dept(i)) for i in range(100_000))
POOLS = tuple(PoolRange(dept(b * 256), f"{ip(b * 256)}/24") for b in range(100_000 // 256 + 1))


def registered_network() -> RunFacts:
    """65k of the 100k registered devices answer; 1% thieves, some duplicates, 5k strangers."""
    obs = []
    for i in range(60_000):
        m = mac(500_000 + i) if i % 100 == 1 else mac(i)
        obs.append(Observation(ip(i), m, NOW, "arp"))
        if i % 10 == 0:
            obs.append(Observation(ip(i), m, NOW, "arp"))  # a repeated reply
        if i % 1000 == 2:
            obs.append(Observation(ip(i), mac(700_000 + i), NOW, "arp"))  # duplicate-ip
    obs += [Observation(ip(i), mac(i), NOW, "arp") for i in range(200_000, 205_000)]
    return RunFacts(
        now=NOW,
        subnets=("10.20.0.0/14",),
        observations=tuple(obs),
        services=tuple(ServiceObservation(ip(i), "tcp", 8080) for i in range(0, 65_000, 7)),
        names=tuple(
            NameObservation(ip(i), f"{dept(i)}-user{i}" if i % 100 else "pc", "dns")
            for i in range(0, 65_000, 3)
        ),
        ledger=LEDGER,
        pools=POOLS,
        last_seen={(ip(i), mac(i)): NOW - timedelta(days=i % 60) for i in range(100_000)},
    )


def unregistered_network() -> RunFacts:
    """65k hosts answer and none of them is in the 100k-record ledger (first scan, wrong ledger)."""
    obs = tuple(Observation(ip(i), mac(300_000 + i), NOW, "arp") for i in range(65_000))
    return RunFacts(now=NOW, subnets=("10.20.0.0/14",), observations=obs, ledger=LEDGER)


def main() -> None:
    settings = PolicySettings()
    for shape in (registered_network, unregistered_network):
        facts = shape()
        for _ in range(int(os.environ.get("N", "3"))):
            start, cpu = time.perf_counter(), time.process_time()
            found = evaluate(facts, settings)
            took, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"{shape.__name__}: {len(facts.observations)} observations, "
                f"{len(facts.ledger)} records: {took:.2f} s wall, {cpu:.2f} s CPU, "
                f"{len(found)} findings"
            )
        print("   ", dict(Counter(f.kind.value for f in found)))


if __name__ == "__main__":
    main()
