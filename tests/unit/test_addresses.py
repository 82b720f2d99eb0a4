"""The key every per-address limit counts a client under."""

from __future__ import annotations

import pytest

from parley.addresses import limiter_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:0:7::1", "2001:db8:0:7::/64"),
        ("2001:db8:0:7:ffff:ffff:ffff:ffff", "2001:db8:0:7::/64"),
        ("2001:DB8:0:8::1", "2001:db8:0:8::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_ipv4_counts_by_address_and_ipv6_by_its_slash_64(address: str, key: str) -> None:
    assert limiter_key(address) == key
