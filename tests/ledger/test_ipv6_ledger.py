"""Static IPv6 addresses of a device: migration 0005, the store, the field's rules."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ipguard.fields import FieldError, parse_ipv6_list
from ipguard.ledger import devices
from ipguard.ledger.store import SCHEMA_HEAD, Store
from tests.ledger.test_sites import upgrade


def test_migration_0005_gives_existing_records_no_static_ipv6(db_url: str) -> None:
    upgrade(db_url, "0004")
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO device (ip, mac, owner, created_at, updated_at) VALUES "
                "('10.0.0.1', '02:00:00:00:00:01', '李伟', '2026-01-01', '2026-01-02')"
            )
        )
    engine.dispose()
    store = Store(db_url)
    with store.session() as session:
        version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        [before] = devices.snapshot(session)
        session.execute(
            sa.text("UPDATE device SET ipv6 = '2001:db8::1;fd00:1::7' WHERE ip = '10.0.0.1'")
        )
    with store.session(write=False) as session:
        [after] = devices.snapshot(session)
    store.close()
    assert version == SCHEMA_HEAD == "0005"
    assert (before.ip, before.owner, before.ipv6) == ("10.0.0.1", "李伟", ())
    assert after.ipv6 == ("2001:db8::1", "fd00:1::7")


def test_addresses_are_canonical_in_the_order_given() -> None:
    assert parse_ipv6_list(" 2001:DB8:0:0::1 ; fd00::A;") == ("2001:db8::1", "fd00::a")
    assert parse_ipv6_list("") == ()


@pytest.mark.parametrize(
    ("text", "value", "reason"),
    [
        ("fe80::1", "fe80::1", "link-local address (fe80::/10) is scoped to one link"),
        ("2001:db8::1%eth0", "2001:db8::1%eth0", "zone index"),
        ("ff02::1", "ff02::1", "multicast"),
        ("::", "::", "unspecified"),
        ("::1", "::1", "loopback"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1", "register it as 10.0.0.1"),
        ("10.0.0.1", "10.0.0.1", "an IPv4 address; it belongs in the ip column"),
        ("fec0::1", "fec0::1", "site-local"),
        ("2001:db8::g", "2001:db8::g", "not an IPv6 address"),
        ("2001:db8::1;2001:DB8:0::1", "2001:DB8:0::1", "2001:db8::1 is listed twice"),
    ],
)
def test_what_cannot_be_a_static_address_is_refused_with_the_reason(
    text: str, value: str, reason: str
) -> None:
    with pytest.raises(FieldError) as raised:
        parse_ipv6_list(text)
    assert (raised.value.field, raised.value.value) == ("ipv6", value)
    assert reason in raised.value.reason
