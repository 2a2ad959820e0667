"""Many sensors, one ledger: eight real scans of eight lab segments into one PostgreSQL database.

Each segment of the `multi_site` lab is a site with its own sensor namespace. The eight sensors run
`ipguard scan --site segN` at the same time, as eight processes inside their namespaces, writing to
one PostgreSQL ledger through the server's Unix socket (the server listens on the host's loopback
only, which the lab namespaces cannot reach). Every run must complete, each run must hold exactly
the hosts of its segment, once each, and the device that moved from seg1 to seg2 must be one
mac-moved finding, at seg2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from ipguard.ledger import packing
from tests.lab.fixtures import LabFactory, requires_lab
from tests.lab.scenario import Scanner
from tests.lab.scenarios import mac_for
from tests.lab.sites import multi_site
from tests.pg import create_database, socket_url

IPGUARD = str(Path(sys.executable).with_name("ipguard"))
SITES = 8


@requires_lab()
@pytest.mark.slow
def test_eight_sensors_scan_eight_segments_into_one_postgresql_ledger(
    lab_factory: LabFactory, postgres_server: str, tmp_path: Path
) -> None:
    lab = lab_factory(multi_site(SITES))
    url = create_database(postgres_server)
    config = lab.write_config(tmp_path / "ipguard.toml")
    ledger = lab.write_ledger_csv(tmp_path / "ledger.csv")
    imported = subprocess.run(
        [IPGUARD, "--db", url, "ledger", "import", str(ledger)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr

    segments = lab.scenario.segments
    inside = socket_url(url)
    sensors = {
        segment.name: subprocess.Popen(
            [
                *("ip", "netns", "exec", lab.sensor_ns(segment.name), IPGUARD),
                *("--db", inside, "--config", str(config), "--actor", f"sensor-{segment.name}"),
                *("scan", "--site", segment.name, "--subnet", segment.cidr, "--interface", "eth0"),
                *("--no-services", "--format", "json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for segment in segments
    }
    outputs = {site: process.communicate(timeout=120) for site, process in sensors.items()}

    for segment in segments:
        site = segment.name
        out, err = outputs[site]
        # Every segment has an unregistered visitor, a high finding: exit 1 is the success here.
        assert sensors[site].returncode == 1, f"{site}: {err}"
        document = json.loads(out)
        assert (document["run"]["site"], document["run"]["status"]) == (site, "complete")
        reported = {(f["kind"], f["ip"], f["mac"], f["port"]) for f in document["findings"]}
        assert reported == lab.scenario.expected_findings(site), site

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as db:
        runs = {
            site: (run_id, status, counts)
            for run_id, site, status, counts in db.execute(
                sa.text("SELECT id, site, status, counts FROM scan_run")
            )
        }
        packed = "SELECT run_id, data FROM run_records WHERE kind = 'observations'"
        seen = [
            (run_id, record["ip"], record["mac"], record["source"])
            for run_id, data in db.execute(sa.text(packed))
            for record in packing.unpack(data)
        ]
        findings = list(db.execute(sa.text("SELECT site, kind, ip, mac FROM finding")))
    engine.dispose()

    assert sorted(runs) == sorted(segment.name for segment in segments)
    assert {status for _, status, _ in runs.values()} == {"complete"}
    assert not [row for row, times in Counter(seen).items() if times > 1], "duplicated observations"
    for segment in segments:
        run_id, _, counts = runs[segment.name]
        hosts = {(host.ip, host.mac) for host in lab.scenario.hosts if host.segment == segment.name}
        observed = {(ip, mac) for ran, ip, mac, _ in seen if ran == run_id}
        assert observed == hosts, segment.name
        assert counts["hosts_seen"] == len(hosts)

    expected = {
        (segment.name, kind, ip, mac)
        for segment in segments
        for kind, ip, mac, _port in lab.scenario.expected_findings(segment.name)
    }
    assert sorted(findings) == sorted(expected)  # each once: none lost, none doubled
    moved = [row for row in findings if row[1] == "mac-moved"]
    mover = lab.scenario.host("seg2-pc50")
    assert moved == [("seg2", "mac-moved", mover.ip, mover.mac)]


def test_the_multi_site_scenario_gives_each_segment_one_sensor_and_its_own_findings() -> None:
    scenario = multi_site(3)
    assert [s.segment for s in (scenario.scanner, *scenario.sensors)] == ["seg1", "seg2", "seg3"]
    assert scenario.expected_findings("seg1") == {
        ("unregistered-host", "198.18.1.66", "02:66:00:00:01:66", None)
    }
    assert ("mac-moved", "198.18.2.50", mac_for("198.18.1.50"), None) in (
        scenario.expected_findings("seg2")
    )
    sites = {reg.ip: reg.site for reg in scenario.registrations()}
    assert (sites["198.18.1.10"], sites["198.18.1.11"], sites["198.18.1.50"]) == (
        "seg1",
        "",
        "seg1",
    )


@pytest.mark.parametrize(
    ("segment", "ip", "message"),
    [
        ("seg9", "198.18.9.2", "is not a lab segment"),
        ("seg1", "198.18.1.3", "has two scanners"),
        ("seg2", "198.18.1.3", "is not in its segment"),
    ],
)
def test_sensors_must_sit_one_per_segment_on_their_segment(
    segment: str, ip: str, message: str
) -> None:
    import dataclasses

    extra = Scanner(ip=ip, mac=mac_for(ip), segment=segment)
    scenario = multi_site(2)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(scenario, sensors=(extra,))
