"""The key a client address is counted under by every per-address limit.

An IPv4 client is its address. An IPv6 client is its /64: one subscriber line is usually
given a whole /64 and can pick any address in it, so counting single IPv6 addresses would
give one attacker 2^64 separate allowances. An IPv4-mapped IPv6 address counts as the IPv4
address it carries. Anything that is not an IP address (a Unix socket, ``unknown``) is its
own key.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network, ip_address

IPV6_PREFIX = 64
"""The IPv6 prefix length one client is assumed to hold."""


def limiter_key(address: str) -> str:
    """The key ``address`` (a client's IP address, as the web server reports it) is limited
    under: the address itself for IPv4, its /64 network for IPv6."""
    try:
        ip = ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)
