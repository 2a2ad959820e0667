"""The `snmp` phase: every configured switch and router polled at once, each into an `SnmpPoll`.

    poll = SnmpPoller(devices).poll()     # [SnmpPoll(device="core-1", answered=True, arp=…)]

A device that stays silent (down, wrong community, ACL), refuses a v3 key, loops or times out
gives a poll with `answered=False` and one warning naming it; the others are unaffected. A Cisco
switch that will not serve some VLANs' tables answers with those in `unread_vlans`. Secrets
are read from the environment or a mode-600 file when the poll starts and appear nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ipguard.model import (
    FdbEntry,
    Observation,
    ObservationSource,
    ScanRequest,
    SnmpDevice,
    SnmpPoll,
)
from ipguard.scanners import snmp_tables as tables
from ipguard.scanners.snmp_client import (
    DEFAULT_LIMIT,
    STREAMS,
    Credentials,
    SnmpSession,
    Varbind,
)
from ipguard.scanners.snmp_errors import SnmpError, WalkStopped
from ipguard.scanners.snmp_secrets import credentials
from ipguard.scanners.snmp_udp import together

# ipNetToPhysicalState is left out: an incomplete entry has no MAC, and rows without one are
# dropped anyway; walking it would cost a third more.
ROUTER_COLUMNS = ("ipNetToPhysicalPhysAddress", "ipNetToPhysicalType")
MEDIA_COLUMNS = ("ipNetToMediaPhysAddress", "ipNetToMediaType")
PORT_COLUMNS = ("dot1dBasePortIfIndex", "dot1qVlanFdbId", "dot1qTpFdbPort", "dot1qTpFdbStatus")
BRIDGE_COLUMNS = ("dot1dTpFdbPort", "dot1dTpFdbStatus")
LLDP_COLUMNS = tuple(name for name in tables.COLUMNS if name.startswith("lldp"))
CISCO, HUAWEI = (1, 3, 6, 1, 4, 1, 9), (1, 3, 6, 1, 4, 1, 2011)  # sysObjectID enterprises
VLANS_AT_ONCE = 8  # Cisco per-VLAN instances read concurrently


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: a walk allocates a few objects per row, none in a
    cycle, and the collector would sweep them again and again (a tenth of a router walk's CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class SnmpPoller:
    """Polls devices concurrently: system group, interfaces, ARP, FDB and LLDP."""

    devices: Sequence[SnmpDevice]
    timeout: float = 2.0
    retries: int = 2
    deadline: float = 120.0  # seconds one device may take in all
    max_repetitions: int = 100
    max_rows: int = DEFAULT_LIMIT  # rows of one column before the table counts as endless

    def poll(self) -> list[SnmpPoll]:
        """Every device's poll, in configuration order."""
        if not self.devices:
            return []
        secrets = [credentials(device) for device in self.devices]  # config errors first
        polls: list[SnmpPoll] = []
        # The polls are handed back through a list, not as the coroutine's result: asyncio.run
        # (3.11) formats its main task's repr, result included, when it restores SIGINT, which
        # costs a second for a router's 25,000 ARP entries.
        with paused_gc():
            asyncio.run(self._poll_all(secrets, polls))
        return polls

    async def _poll_all(self, secrets: list[Credentials], polls: list[SnmpPoll]) -> None:
        streams = asyncio.Semaphore(STREAMS)  # shared: every device's column walks together
        polls.extend(
            await asyncio.gather(
                *(
                    self.poll_one(device, creds, streams)
                    for device, creds in zip(self.devices, secrets, strict=True)
                )
            )
        )

    async def poll_one(
        self, device: SnmpDevice, creds: Credentials, streams: asyncio.Semaphore | None = None
    ) -> SnmpPoll:
        """One device's poll; never raises for what the network does."""
        walked: dict[str, list[Varbind]] = {}
        where = f"{device.name} ({device.host}:{device.port})"
        system: dict[tuple[int, ...], object] = {}
        notes: list[str] = []  # what went wrong without stopping the poll
        unread: list[int] = []  # VLANs whose table the agent would not serve
        warning = ""
        try:
            async with SnmpSession(
                device.host,
                device.port,
                creds,
                timeout=self.timeout,
                retries=self.retries,
                max_repetitions=self.max_repetitions,
                streams=streams,
            ) as session:
                await asyncio.wait_for(
                    self._collect(session, device, walked, system, notes, unread),
                    timeout=self.deadline,
                )
        except WalkStopped as stop:
            warning = f"{where}: {stop}"
        except TimeoutError:
            warning = f"{where}: poll took longer than {self.deadline:g} s"
        except (SnmpError, OSError) as error:
            warning = f"{where}: {error}"
        answered = not warning
        if notes:
            warning = "; ".join([warning, *notes]) if warning else f"{where}: " + "; ".join(notes)
        return self._result(device, walked, system, warning, answered, unread)

    async def _collect(
        self,
        session: SnmpSession,
        device: SnmpDevice,
        walked: dict[str, list[Varbind]],
        system: dict[tuple[int, ...], object],
        notes: list[str],
        unread: list[int],
    ) -> None:
        values = await session.get(list(tables.SYSTEM.values()))
        if not values:
            raise SnmpError("the agent has no system group (SNMPv2-MIB) in its view")
        system.update(values)
        sys_object_id = values.get(tables.SYSTEM["sys_object_id"])
        vendor = sys_object_id[:7] if isinstance(sys_object_id, tuple) else ()
        # Interfaces, ARP and FDB side by side: each waits on the agent, not on the others.
        branches = [self._walk(session, walked, ("ifName", "ifDescr"))]
        if "router" in device.roles:
            branches.append(self._arp(session, walked))
        if "switch" in device.roles:
            branches.append(self._fdb(session, walked, vendor, notes, unread))
        await together(branches)
        if not walked.get("ifName") and not walked.get("ifDescr"):
            # Every switch and router has interfaces: tables this empty are what a restricted
            # view shows, and they must not read as "no hosts" (nor resolve findings).
            raise SnmpError(
                "the agent shows no interfaces (IF-MIB): its view hides the tables "
                "(net-snmp's default view is systemonly)"
            )

    async def _arp(self, session: SnmpSession, walked: dict[str, list[Varbind]]) -> None:
        # the two ARP tables are read in turn: net-snmp serves the old one 150 times slower
        await self._walk(session, walked, ROUTER_COLUMNS)
        if not walked.get("ipNetToPhysicalPhysAddress"):
            await self._walk(session, walked, MEDIA_COLUMNS)

    async def _fdb(
        self,
        session: SnmpSession,
        walked: dict[str, list[Varbind]],
        vendor: tuple[int, ...],
        notes: list[str],
        unread: list[int],
    ) -> None:
        """The forwarding table and LLDP, with the fallbacks a vendor (sysObjectID) needs."""
        await self._walk(session, walked, (*PORT_COLUMNS, *LLDP_COLUMNS))
        if not walked.get("dot1qTpFdbPort"):
            await self._walk(session, walked, BRIDGE_COLUMNS)
            if vendor == CISCO:
                await self._per_vlan(session, walked, notes, unread)
            elif vendor == HUAWEI and not walked.get("dot1dTpFdbPort"):
                await self._walk(session, walked, ("hwDynFdbPort",))  # HUAWEI-L2MAM-MIB

    async def _walk(
        self, session: SnmpSession, walked: dict[str, list[Varbind]], names: Sequence[str]
    ) -> None:
        """The named columns, all at once (what came is kept when the walk stops early)."""
        roots = [tables.COLUMNS[name] for name in names]
        try:
            found = await session.walk_columns(roots, limit=self.max_rows)
        except WalkStopped as stop:
            walked.update(zip(names, stop.columns, strict=False))
            raise
        walked.update(zip(names, found, strict=True))

    async def _per_vlan(
        self,
        session: SnmpSession,
        walked: dict[str, list[Varbind]],
        notes: list[str],
        unread: list[int],
    ) -> None:
        """Cisco keeps one BRIDGE-MIB instance per VLAN: community@VLAN, or v3 context vlan-N.

        VLANs are read a few at a time. One the agent will not serve (net-snmp drops a request
        for a context it does not know; a Catalyst stays silent for a VLAN without an instance)
        is a note in the poll's warning and in `unread`; the others are read all the same.
        """
        await self._walk(session, walked, ("vtpVlanState",))
        at_once = asyncio.Semaphore(VLANS_AT_ONCE)

        async def one(vlan: int) -> None:
            per_vlan: dict[str, list[Varbind]] = {}
            vlan_session = session.with_context(f"@{vlan}", f"vlan-{vlan}")
            async with at_once, vlan_session:
                try:
                    await self._walk(
                        vlan_session, per_vlan, ("dot1dBasePortIfIndex", *BRIDGE_COLUMNS)
                    )
                except SnmpError as error:
                    if isinstance(error, WalkStopped):
                        raise
                    v3 = session.credentials.version == "3"
                    where = f"context vlan-{vlan}" if v3 else f"VLAN {vlan}"
                    notes.append(f"{where}: {error}")
                    unread.append(vlan)
                    return
            walked[f"vlan {vlan}"] = []  # a marker: this VLAN was walked
            for name, rows in per_vlan.items():
                walked.setdefault(f"{name}@{vlan}", []).extend(rows)

        await together([one(vlan) for vlan in tables.cisco_vlans(walked)])

    def _result(
        self,
        device: SnmpDevice,
        walked: dict[str, list[Varbind]],
        system: dict[tuple[int, ...], object],
        warning: str,
        answered: bool,
        unread: list[int],
    ) -> SnmpPoll:
        return SnmpPoll(
            device=device.name,
            host=device.host,
            answered=answered,
            warning=warning,
            unread_vlans=tuple(sorted(unread)),
            system=tables.system(system),
            **parse(walked),  # type: ignore[arg-type]
            roles=tuple(device.roles),
        )


def parse(walked: dict[str, list[Varbind]]) -> dict[str, tuple[object, ...]]:
    """ARP, FDB (with every Cisco per-VLAN walk) and LLDP rows from a device's walked columns."""
    interfaces = tables.Interfaces.from_walk(walked)
    fdb: list[FdbEntry] = tables.fdb_entries(walked, interfaces)
    for key in walked:
        if key.startswith("vlan "):
            vlan = int(key.split()[1])
            per_vlan = {
                name: walked.get(f"{name}@{vlan}", [])
                for name in ("dot1dBasePortIfIndex", *BRIDGE_COLUMNS)
            }
            ports = tables.Interfaces(
                interfaces.names, tables.Interfaces.from_walk(per_vlan).base_ports
            )
            fdb.extend(tables.fdb_entries(per_vlan, ports, vlan=vlan))
    return {
        "arp": tuple(tables.arp_entries(walked, interfaces)),
        "fdb": tuple(fdb),
        "lldp": tuple(tables.lldp_neighbours(walked, interfaces)),
    }


def collect(
    request: ScanRequest, scope: Container[str], own_ip: str = "", own_mac: str = ""
) -> tuple[list[Observation], tuple[SnmpPoll, ...]]:
    """The snmp phase: poll every configured device; routers' ARP entries inside the run's
    subnets (`scope`) become `snmp-arp` observations naming the device and interface.

    The sensor's own address is left out, as the sweep leaves it out; so are, on the switch port
    where the sensor's MAC is learnt, the locally administered MACs ipguard's own probes (the
    DHCP DISCOVER's client MAC, this run's and recent runs') leave in forwarding tables.
    """
    polls = SnmpPoller(
        request.snmp_devices, timeout=request.snmp_timeout, retries=request.snmp_retries
    ).poll()
    now = datetime.now(UTC)
    observations = [
        Observation(
            entry.ip,
            entry.mac,
            now,
            ObservationSource.SNMP_ARP,
            device=poll.device,
            interface=entry.if_name,
        )
        for poll in polls
        if poll.answered and "router" in poll.roles
        for entry in poll.arp
        if entry.ip in scope and entry.ip != own_ip
    ]
    return observations, tuple(_without_own_probes(poll, own_mac) for poll in polls)


def _without_own_probes(poll: SnmpPoll, own_mac: str) -> SnmpPoll:
    sensor_ports = {(e.if_name, e.vlan) for e in poll.fdb if e.mac == own_mac}
    if not sensor_ports:
        return poll
    kept = tuple(
        entry
        for entry in poll.fdb
        if (entry.if_name, entry.vlan) not in sensor_ports
        or entry.mac == own_mac
        or not int(entry.mac[:2], 16) & 0x02
    )
    return replace(poll, fdb=kept)


def merge_routed(
    observations: Iterable[Observation], routed: Iterable[Observation]
) -> list[Observation]:
    """The sweep's observations and the routers' ARP entries together, without the MAC-less
    echo replies at addresses a router's table gave a MAC for (they would only repeat, without
    the MAC, what the router's entry says)."""
    routed = list(routed)
    resolved = {seen.ip for seen in routed}
    kept = [seen for seen in observations if seen.mac is not None or seen.ip not in resolved]
    return kept + routed
