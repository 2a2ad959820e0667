"""Ready-made lab scenarios: :func:`demo` (every planted behaviour), :func:`small` (three hosts);
``multi-site`` (one sensor per segment) is :func:`tests.lab.sites.multi_site`, ``dhcp`` (every
kind of DHCP server on one link) :func:`tests.lab.dhcp_lab.dhcp_servers`.

Addresses: the scanned LAN is 198.18.0.0/24, the legitimate gateway at .1 routes to 198.19.0.0/24,
and a rogue NAT router hides 198.19.50.0/24. Locally administered MACs spell the address they were
registered with: 198.18.0.21 ↔ 02:18:00:00:00:21, 198.19.0.10 ↔ 02:19:00:00:00:10.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.lab.scenario import (
    DhcpServer,
    Expect,
    Host,
    Registration,
    Router,
    Scanner,
    Scenario,
    Segment,
    Service,
    Ssdp,
)

LAN = Segment("lan", "198.18.0.0/24")
ROUTED = Segment("routed", "198.19.0.0/24")
HIDDEN = Segment("hidden", "198.19.50.0/24")
GATEWAY = "198.18.0.1"

SSH = Service(22, "banner", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")
TELNET = Service(23, "socat", r"\r\nDebian GNU/Linux 12\r\nmath-pc05 login: ")
LOCATIONS = {
    "office": "行政楼 302",
    "math": "数学楼 201",
    "physics": "物理楼 105",
    "chem": "化学楼 110",
}
TPLINK_MAC = (
    "50:c7:bf:3a:91:0e"  # TP-Link OUI: netaddr resolves it to TP-LINK TECHNOLOGIES CO.,LTD.
)
HP_MAC = "3c:d9:2b:55:00:05"  # Hewlett Packard OUI, for the printer
IGD = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
WLAN_AP = "urn:schemas-upnp-org:device:WLANAccessPointDevice:1"


def lan_ip(n: int) -> str:
    """198.18.0.n"""
    return f"198.18.0.{n}"


def mac_for(ip: str) -> str:
    """The locally administered MAC that spells ``ip``: 198.18.0.21 → 02:18:00:00:00:21."""
    _a, b, c, d = (int(x) for x in ip.split("."))
    return f"02:{b:02d}:{c % 100:02d}:{c // 100:02d}:{d // 100:02d}:{d % 100:02d}"


def switch_port(ip: str) -> str:
    """An access-switch port for ``ip``: 48-port stack members, one port per last octet."""
    n = int(ip.rsplit(".", 1)[1])
    return f"Gi{n // 48 + 1}/0/{n % 48 + 1}"


def device(
    name: str,
    ip: str,
    owner: str,
    *,
    mac: str | None = None,
    segment: str = "lan",
    services: tuple[Service, ...] = (),
    allowed: tuple[str, ...] = (),
    roles: tuple[str, ...] = ("host",),
    dns_name: str | None = None,
    expect: tuple[Expect, ...] = (),
    **extra: Any,
) -> Host:
    """A registered host named ``<department>-<asset_tag>``; ``extra``: Registration/Host fields."""
    department, _, asset_tag = name.partition("-")
    mac = mac or mac_for(ip)
    reg_fields: dict[str, Any] = {
        "location": LOCATIONS[department],
        "switch_port": switch_port(ip),
    }
    reg_fields |= {k: extra.pop(k) for k in list(extra) if k in Registration.__dataclass_fields__}
    registration = Registration(
        ip=ip,
        mac=mac,
        hostname=name,
        owner=owner,
        department=department,
        asset_tag=asset_tag,
        roles=roles,
        allowed_services=allowed,
        **reg_fields,
    )
    gateway = extra.pop("gateway", GATEWAY if segment == "lan" else "198.19.0.1")
    return Host(
        name=name,
        ip=ip,
        mac=mac,
        segment=segment,
        gateway=gateway,
        registration=registration,
        dns_name=dns_name or name,
        services=services,
        expect=expect,
        **extra,
    )


def stranger(
    name: str, ip: str, mac: str, *, expect: tuple[Expect, ...] = (), **extra: Any
) -> Host:
    """A host that is not in the ledger."""
    return Host(
        name=name, ip=ip, mac=mac, gateway=extra.pop("gateway", GATEWAY), expect=expect, **extra
    )


def _scanner() -> Scanner:
    ip = lan_ip(2)
    reg = Registration(
        ip=ip,
        mac=mac_for(ip),
        hostname="office-scan01",
        owner="王芳",
        department="office",
        location=LOCATIONS["office"],
        switch_port=switch_port(ip),
        asset_tag="scan01",
        roles=("server",),
        notes="ipguard scanner",
    )
    return Scanner(ip=ip, mac=mac_for(ip), registration=reg, dns_name="office-scan01")


def _infrastructure() -> list[Host]:
    """Gateway (routes to 198.19.0.0/24), the DNS + authorised DHCP server, printer, web server."""
    inside = "198.19.0.1"
    inside_reg = Registration(
        ip=inside,
        mac=mac_for(inside),
        hostname="office-gw01",
        owner="王芳",
        department="office",
        location="网络中心",
        switch_port="Gi1/0/48",
        asset_tag="gw01",
        roles=("gateway", "router"),
    )
    return [
        device(
            "office-gw01",
            GATEWAY,
            "王芳",
            roles=("gateway", "router"),
            gateway=None,
            location="网络中心",
            router=Router(
                "routed", inside, mac_for(inside), registration=inside_reg, dns_name="office-gw01"
            ),
        ),
        device(
            "office-srv01",
            lan_ip(3),
            "王芳",
            roles=("server", "dhcp-server"),
            allowed=("tcp/53", "udp/53", "udp/67"),
            dns=True,
            dhcp=DhcpServer(lan_ip(100), lan_ip(149), router=GATEWAY),
            approval_ref="NET-2023-001",
        ),
        device(
            "office-prn01",
            lan_ip(5),
            "陈静",
            mac=HP_MAC,
            roles=("printer",),
            allowed=("tcp/80", "tcp/515"),
            services=(Service(80, "http", "HP LaserJet Pro M404dn"), Service(515, "banner")),
        ),
        device(
            "office-web01",
            lan_ip(6),
            "刘洋",
            roles=("server",),
            allowed=("tcp/22", "tcp/80", "tcp/443"),
            services=(SSH, Service(80, "http", "理学院 School of Science"), Service(443, "banner")),
        ),
    ]


def _ordinary() -> list[Host]:
    """Registered PCs that behave exactly as registered: they raise no findings."""
    jupyter = Service(8080, "http", "Jupyter Server")
    return [
        device("office-pc01", lan_ip(10), "李娜", services=(SSH,)),
        device("office-pc02", lan_ip(11), "王静"),
        device("office-pc04", lan_ip(12), "赵敏"),
        device("office-pc05", lan_ip(13), "孙丽"),
        device("math-pc01", lan_ip(20), "李伟", services=(SSH,)),
        device("math-pc02", lan_ip(21), "黄强"),
        device("math-pc03", lan_ip(22), "周杰", services=(SSH, jupyter), allowed=("tcp/8080",)),
        device("math-pc04", lan_ip(23), "吴娜"),
        device("math-pc06", lan_ip(25), "徐涛"),
        device("physics-pc01", lan_ip(30), "杨磊", services=(SSH,)),
        device("physics-pc02", lan_ip(31), "马超"),
        device("physics-pc03", lan_ip(32), "朱红"),
        device("physics-pc04", lan_ip(33), "胡军"),
        device("chem-pc01", "198.19.0.10", "郭亮", segment="routed", services=(SSH,)),
        device("chem-pc02", "198.19.0.11", "何平", segment="routed"),
        device(
            "chem-srv01",
            "198.19.0.20",
            "林峰",
            segment="routed",
            roles=("server",),
            allowed=("tcp/80",),
            services=(Service(80, "http", "化学系 Chemistry"),),
        ),
    ]


def _misbehaving() -> list[Host]:
    """Registered hosts that each break one rule."""
    tinyproxy = Service(3128, "http-proxy")
    socks = Service(1080, "socks")
    return [
        device(
            "math-pc05",
            lan_ip(24),
            "高翔",
            services=(SSH, TELNET),
            expect=(("unexpected-service", 23),),
        ),
        device(
            "physics-pc06",
            lan_ip(35),
            "罗琳",
            services=(tinyproxy,),
            expect=(("open-proxy", 3128),),
        ),
        device(
            "math-pc08",
            lan_ip(27),
            "郑浩",
            services=(socks,),
            expect=(("open-proxy", 1080),),
        ),
        device(
            "physics-pc07",
            lan_ip(36),
            "梁宇",
            dhcp=DhcpServer(lan_ip(150), lan_ip(199)),
            expect=(("rogue-dhcp", None),),
        ),
        device(
            "physics-pc12",
            lan_ip(37),
            "张伟",
            dns_name="zhangwei-laptop",
            expect=(("hostname-policy", None),),
        ),
        device("office-pc03", lan_ip(40), "宋佳", expect=(("duplicate-ip", None),)),
        device("math-pc10", lan_ip(46), "韩雪", moves_to=lan_ip(88)),
        device(
            "office-pc09",
            lan_ip(50),
            "唐敏",
            status="suspended",
            notes="停用：欠费",
            expect=(("suspended-device-online", None),),
        ),
        device(
            "physics-pc09",
            lan_ip(51),
            "冯刚",
            isolated=True,
            notes="隔离：病毒感染",
            expect=(("isolated-device-online", None),),
        ),
    ]


def _rogues() -> list[Host]:
    """Devices that are not in the ledger (or squat on someone else's registered address)."""
    ap = Ssdp(
        http_port=80,
        device_types=(IGD, WLAN_AP),
        server="Linux/2.6.36, UPnP/1.0, Portable SDK for UPnP devices/1.6.19",
        manufacturer="TP-Link",
        model="TL-WR840N",
        friendly_name="Wireless N Router TL-WR840N",
        uuid="6f1d2c3e-0000-1000-8000-50c7bf3a910e",
    )
    return [
        stranger(
            "dup-clone",
            lan_ip(40),
            "02:66:00:00:00:40",
            expect=(("duplicate-ip", None),),
        ),
        stranger("thief", lan_ip(45), "02:66:00:00:00:45", expect=(("ip-mac-mismatch", None),)),
        stranger(
            "rogue-nat",
            lan_ip(60),
            "02:66:00:00:00:60",
            router=Router("hidden", "198.19.50.1", "02:66:00:00:50:01", nat=True),
            expect=(("unregistered-host", None), ("rogue-router", None)),
        ),
        stranger(
            "hidden-pc",
            "198.19.50.10",
            "02:66:00:00:50:10",
            segment="hidden",
            gateway="198.19.50.1",
            services=(SSH,),
        ),
        stranger(
            "tplink-ap",
            lan_ip(70),
            TPLINK_MAC,
            services=(Service(80, "http", "TL-WR840N"),),
            ssdp=ap,
            expect=(("unregistered-host", None), ("rogue-ap", None), ("rogue-router", None)),
        ),
        stranger("visitor", lan_ip(90), "02:66:00:00:00:90", expect=(("unregistered-host", None),)),
    ]


# The demo's probe rate. Its first service scan SYN-probes 34 live hosts x 1,028 ports, some
# 35,000 probes: at ipguard's default 2,000 a second (chosen for real switches and the hosts
# behind them) that pass alone takes 18 s. The lab is one bridge of virtual links inside this
# machine, which carry far more than this without loss, so the demo scans at ten times the default.
DEMO_RATE = 20_000


def demo() -> Scenario:
    """The default demo: ~20 well-behaved registered hosts and every planted misbehaviour."""
    absent = Registration(
        ip=lan_ip(45),
        mac=mac_for(lan_ip(45)),
        hostname="math-pc09",
        owner="王磊",
        department="math",
        location=LOCATIONS["math"],
        switch_port=switch_port(lan_ip(45)),
        asset_tag="pc09",
        notes="owner on leave; device switched off",
    )
    return Scenario(
        name="demo",
        segments=(LAN, ROUTED, HIDDEN),
        scanner=_scanner(),
        hosts=(*_infrastructure(), *_ordinary(), *_misbehaving(), *_rogues()),
        absent=(absent,),
        rate=DEMO_RATE,
    )


def small() -> Scenario:
    """Scanner plus three hosts on one segment (two registered, one not): quick to build."""
    return Scenario(
        name="small",
        segments=(LAN,),
        scanner=_scanner(),
        hosts=(
            device("math-pc01", lan_ip(20), "李伟", services=(SSH,), gateway=None),
            device(
                "math-pc02",
                lan_ip(21),
                "黄强",
                allowed=("tcp/80",),
                gateway=None,
                services=(Service(80, "http", "Math PC 02"),),
            ),
            stranger(
                "visitor",
                lan_ip(90),
                "02:66:00:00:00:90",
                gateway=None,
                expect=(("unregistered-host", None),),
            ),
        ),
    )


def _multi_site() -> Scenario:
    # tests.lab.sites builds on this module's helpers: imported when asked for, not in a cycle.
    from tests.lab.sites import multi_site

    return multi_site()


def _dhcp_servers() -> Scenario:
    from tests.lab.dhcp_lab import dhcp_servers

    return dhcp_servers()


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "demo": demo,
    "small": small,
    "multi-site": _multi_site,
    "dhcp": _dhcp_servers,
}
