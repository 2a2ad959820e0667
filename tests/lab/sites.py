"""A lab of many sites: one segment and one sensor per site, all reporting to one ledger.

lab = Lab.build(multi_site(8))
lab.run(lab.sensor_ns("seg3"), ["ipguard", "scan", "--site", "seg3", …])
"""

from __future__ import annotations

import dataclasses

from tests.lab.scenario import Host, Registration, Scanner, Scenario, Segment
from tests.lab.scenarios import mac_for


def _site_device(name: str, ip: str, site: str, *, registered_at: str | None = None) -> Host:
    """A PC on ``site``'s segment registered as ``site-pc…``; ``registered_at`` another address."""
    department, _, asset_tag = name.partition("-")
    reg_ip = registered_at or ip
    registration = Registration(
        ip=reg_ip,
        mac=mac_for(reg_ip),
        hostname=name,
        owner=f"user of {name}",
        department=department,
        asset_tag=asset_tag,
        site=site,
    )
    return Host(
        name=name, ip=ip, mac=mac_for(reg_ip), segment=department, registration=registration
    )


def multi_site(sites: int = 8) -> Scenario:
    """``sites`` segments ``seg1``…, each a site with its own sensor and a few hosts.

    On segment k (198.18.k.0/24, sensor at .2): a PC registered for site segk (.10), a PC
    registered for every site (.11) and an unregistered visitor (.66, unregistered-host). The PC
    registered for seg1 at 198.18.1.50 has moved to seg2, as 198.18.2.50: one mac-moved, raised
    by seg2's sensor. Nothing routes between segments: each sensor sees its own segment only.
    """
    if not 2 <= sites <= 50:
        raise ValueError("a multi-site lab has 2 to 50 sites")
    segments = tuple(Segment(f"seg{k}", f"198.18.{k}.0/24") for k in range(1, sites + 1))

    def sensor(k: int) -> Scanner:
        ip = f"198.18.{k}.2"
        reg = Registration(
            ip=ip, mac=mac_for(ip), hostname=f"seg{k}-sensor", roles=("server",), site=f"seg{k}"
        )
        return Scanner(ip=ip, mac=mac_for(ip), registration=reg, segment=f"seg{k}")

    hosts: list[Host] = []
    for k in range(1, sites + 1):
        site = f"seg{k}"
        hosts += [
            _site_device(f"{site}-pc10", f"198.18.{k}.10", site),
            _site_device(f"{site}-pc11", f"198.18.{k}.11", ""),
            Host(
                name=f"{site}-visitor",
                ip=f"198.18.{k}.66",
                mac=f"02:66:00:00:{k:02d}:66",
                segment=site,
                expect=(("unregistered-host", None),),
            ),
        ]
    mover = _site_device("seg2-pc50", "198.18.2.50", "seg1", registered_at="198.18.1.50")
    hosts.append(dataclasses.replace(mover, expect=(("mac-moved", None),)))
    return Scenario(
        name=f"multi-site-{sites}",
        segments=segments,
        scanner=sensor(1),
        sensors=tuple(sensor(k) for k in range(2, sites + 1)),
        hosts=tuple(hosts),
        ports="tcp/22",
    )
