"""The embedded TURN server's configuration: its secret, its URLs and its ``turnserver.conf``.

Parley writes the configuration under ``<data_dir>/turn/run-*`` (private, like Janus's) and
keeps the ``static-auth-secret`` in ``<data_dir>/turn/secret`` (0600), so credentials handed
out before a restart stay valid after it. The server relays only to the SFU's media addresses:
every other peer address is denied.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from aioice.ice import get_host_addresses

from parley.settings import Settings
from parley.tls import TlsFiles
from parley.tokens import load_or_create_secret

REALM = "parley"


@dataclass(frozen=True)
class TurnLayout:
    """The files of one run of the embedded TURN server."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "turnserver.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / "turnserver.pid"

    @property
    def userdb(self) -> Path:
        return self.root / "turndb"


def turn_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "turn"


def load_or_create_turn_secret(settings: Settings) -> str:
    """The embedded TURN server's ``static-auth-secret``: random, made once, kept 0600."""
    return load_or_create_secret(turn_dir(settings) / "secret")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def relay_peers(settings: Settings) -> list[str]:
    """The only addresses the TURN server relays to: the SFU's media addresses (every
    non-loopback address of this machine when ``media_addresses`` is empty, as the SFU gathers
    there) and the announced address."""
    peers = [address for address in settings.media_addresses if _is_ip(address)]
    if not settings.media_addresses:
        peers = get_host_addresses(use_ipv4=True, use_ipv6=True)
    if settings.announced_address and _is_ip(settings.announced_address):
        peers.append(settings.announced_address)
    return list(dict.fromkeys(peers))


def user_quota(settings: Settings) -> int:
    """Allocations one participant may hold (``turn_user_quota``, else three per peer
    connection a participant may have: UDP, TCP and TLS)."""
    if settings.turn_user_quota is not None:
        return settings.turn_user_quota
    return 3 * (settings.max_streams_per_participant + settings.max_subscriptions_per_participant)


def total_quota(settings: Settings) -> int:
    """Allocations the server holds at once (``turn_total_quota``, else three per peer
    connection the SFU may hold)."""
    if settings.turn_total_quota is not None:
        return settings.turn_total_quota
    return 3 * settings.max_peer_connections


_UNCONNECTED = "07"
"""``/proc/net/udp`` state of a socket bound but not connected: it takes datagrams from anyone."""


def _proc_address(text: str) -> str:
    """An address as ``/proc/net/udp{,6}`` writes it (32-bit words in host order, hex)."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def udp_listeners(
    tables: tuple[str, ...] = ("/proc/net/udp", "/proc/net/udp6"),
) -> set[tuple[str, int]]:
    """(address, port) of every UDP socket of this machine that takes datagrams from anyone."""
    found: set[tuple[str, int]] = set()
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _UNCONNECTED:
                address, _, port = fields[1].partition(":")
                found.add((_proc_address(address), int(port, 16)))
    return found


def relay_reaches(
    settings: Settings, listeners: set[tuple[str, int]] | None = None
) -> list[tuple[str, int]]:
    """UDP sockets the embedded TURN server could relay to besides the SFU's: bound on a relay
    peer address (or on every address) at a port outside the RTP range and outside coturn's own
    relay range. coturn filters peers by address only, so these are reachable through it."""
    if settings.rtp_port_min is None or settings.rtp_port_max is None:
        return []
    peers = {str(ipaddress.ip_address(p)) for p in relay_peers(settings)}
    media = range(settings.rtp_port_min, settings.rtp_port_max + 1)
    relays = range(settings.turn_relay_port_min, settings.turn_relay_port_max + 1)
    reached = []
    for address, port in sorted(udp_listeners() if listeners is None else listeners):
        on_peer = address in peers or address in ("0.0.0.0", "::")
        if on_peer and port not in media and port not in relays:
            reached.append((address, port))
    return reached


def turn_urls(settings: Settings, request_host: str | None, tls: TlsFiles | None) -> list[str]:
    """The URLs participants are given for the embedded TURN server: UDP and TCP on
    ``turn_port`` and, with a certificate browsers trust (not the self-signed one), TLS on
    ``turn_tls_port``. The host: ``turn_host``, else ``announced_address``, else the host the
    browser reached Parley by."""
    host = settings.turn_host or settings.announced_address or request_host or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    urls = [
        f"turn:{host}:{settings.turn_port}?transport=udp",
        f"turn:{host}:{settings.turn_port}?transport=tcp",
    ]
    if tls is not None and not tls.self_signed:
        urls.append(f"turns:{host}:{settings.turn_tls_port}?transport=tcp")
    return urls


def render(settings: Settings, secret: str, layout: TurnLayout, tls: TlsFiles | None) -> str:
    """``turnserver.conf`` for one run."""
    lines = [
        "# Written by Parley for this run; it is rewritten at every start.",
        f"listening-port={settings.turn_port}",
        "fingerprint",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "stale-nonce=600",
        f"min-port={settings.turn_relay_port_min}",
        f"max-port={settings.turn_relay_port_max}",
        "no-cli",
        "no-dtls",
        "no-multicast-peers",
        # Peers are UDP media servers: no TCP relay endpoints (RFC 6062) for anyone.
        "no-tcp-relay",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        # Per participant (the userId of its credentials, whatever their expiry) and in all.
        f"user-quota={user_quota(settings)}",
        f"total-quota={total_quota(settings)}",
        f"max-bps={settings.turn_max_bps}",
        "log-file=stdout",
        "simple-log",
        f"pidfile={layout.pidfile}",
        f"userdb={layout.userdb}",
    ]
    for address in settings.turn_listen_addresses:
        lines += [f"listening-ip={address}", f"relay-ip={address}"]
    if settings.announced_address and _is_ip(settings.announced_address):
        lines.append(f"external-ip={settings.announced_address}")
    if tls is not None:
        lines += [
            f"tls-listening-port={settings.turn_tls_port}",
            f"cert={tls.cert.resolve()}",
            f"pkey={tls.key.resolve()}",
            "no-tlsv1",
            "no-tlsv1_1",
        ]
    else:
        lines.append("no-tls")
    # Relay only to Parley's media addresses: everything else is denied.
    lines += [
        "denied-peer-ip=0.0.0.0-255.255.255.255",
        "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    lines += [f"allowed-peer-ip={peer}" for peer in relay_peers(settings)]
    if settings.turn_allow_loopback:
        lines.append("allow-loopback-peers")
    return "\n".join(lines) + "\n"


def write_config(settings: Settings, secret: str, layout: TurnLayout, tls: TlsFiles | None) -> None:
    layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = layout.config
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(render(settings, secret, layout, tls))
