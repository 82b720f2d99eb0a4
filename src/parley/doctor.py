"""``parley doctor``: a deployment checked from the server's side, with what to fix.

It reads the same settings as ``parley serve`` and writes nothing: the file-descriptor limit,
the certificate (names, expiry), the addresses the SFU will announce, the RTP port range, the
TURN server (whether it answers, accepts Parley's credentials and relays to the SFU's media
addresses), the join-token settings and, in cluster mode, whether Redis asks for a
password.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import resource
import shutil
import socket
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from aioice.ice import get_host_addresses
from redis.exceptions import RedisError

from parley import jwt_keys
from parley.cluster.redis_client import answers_anonymously, where
from parley.settings import Settings
from parley.tls import describe, is_loopback, wanted_names
from parley.tokens import check_secret, turn_credentials
from parley.turn.config import relay_reaches, turn_dir
from parley.turn.process import probe_address
from parley.turn.stun import check_relay, stun_binding

Level = Literal["ok", "warning", "problem"]

WANTED_OPEN_FILES = 4096
"""The file-descriptor limit below which ``parley serve`` and ``parley doctor`` warn."""


@dataclass
class Report:
    lines: list[tuple[Level, str, str]] = field(default_factory=list)

    def ok(self, what: str) -> None:
        self.lines.append(("ok", what, ""))

    def warn(self, what: str, fix: str = "") -> None:
        self.lines.append(("warning", what, fix))

    def problem(self, what: str, fix: str) -> None:
        self.lines.append(("problem", what, fix))

    @property
    def problems(self) -> int:
        return sum(1 for level, _, _ in self.lines if level == "problem")

    def render(self) -> str:
        out = []
        for level, what, fix in self.lines:
            out.append(f"{level:>7}: {what}")
            if fix:
                out.append(f"         fix: {fix}")
        count = self.problems
        out.append(
            "no problems found" if count == 0 else f"{count} problem{'s' * (count != 1)} to fix"
        )
        return "\n".join(out)


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def check_tls(settings: Settings, report: Report) -> None:
    if settings.tls == "off":
        if is_loopback(settings.host):
            report.ok("plain HTTP on loopback (PARLEY_TLS=off): for a TLS proxy on this machine")
        else:
            report.warn(
                f"plain HTTP on {settings.host} (PARLEY_TLS=off): browsers on other machines "
                "get no camera or microphone unless a TLS proxy is in front",
                "put a TLS reverse proxy in front, or unset PARLEY_TLS",
            )
        return
    if settings.tls_cert is not None or settings.tls_key is not None:
        if settings.tls_cert is None or settings.tls_key is None:
            report.problem(
                "only one of PARLEY_TLS_CERT and PARLEY_TLS_KEY is set",
                "set both: the certificate (chain) and its private key, PEM files",
            )
            return
        if not settings.tls_key.is_file():
            report.problem(
                f"the TLS key {settings.tls_key} does not exist",
                "point PARLEY_TLS_KEY at the certificate's private key (PEM)",
            )
        if not settings.tls_cert.is_file():
            report.problem(
                f"the TLS certificate {settings.tls_cert} does not exist",
                "point PARLEY_TLS_CERT at your certificate (PEM, e.g. Let's Encrypt's "
                "fullchain.pem), or unset it to use a self-signed one",
            )
            return
        cert_path, source = settings.tls_cert, "the given certificate"
    elif settings.tls == "auto" and is_loopback(settings.host):
        report.ok(
            f"plain HTTP on {settings.host}: browsers treat http://localhost as secure; "
            "other machines cannot reach it"
        )
        return
    else:
        cert_path = settings.data_dir / "tls" / "cert.pem"
        source = "the self-signed certificate"
        if not cert_path.is_file():
            report.warn(
                f"no self-signed certificate yet in {cert_path.parent}: `parley serve` makes one",
                "",
            )
            return
    try:
        info = describe(cert_path)
    except (OSError, ValueError) as error:
        report.problem(
            f"{source} {cert_path} cannot be read: {error}", "give a PEM certificate file"
        )
        return
    left = info.not_after - datetime.datetime.now(datetime.UTC)
    summary = (
        f"{source} {cert_path}: names {', '.join(info.names) or '(none)'}; valid until "
        f"{info.not_after:%Y-%m-%d}; SHA-256 {info.fingerprint}"
    )
    if left.total_seconds() <= 0:
        report.problem(f"{summary}: EXPIRED", "renew the certificate (e.g. certbot renew)")
    elif left < datetime.timedelta(days=14):
        report.warn(f"{summary}: expires in {left.days} days", "renew the certificate soon")
    else:
        report.ok(summary)
    if info.self_signed:
        report.warn(
            "the certificate is self-signed: each browser asks once to trust it, and "
            "`turns:` (TURN over TLS) is not offered with it",
            "for the internet, use a real certificate (PARLEY_TLS_CERT/PARLEY_TLS_KEY)",
        )
    needed = [name for name in (settings.announced_address, settings.turn_host) if name is not None]
    if not info.self_signed:
        needed += [name for name in settings.allowed_hosts if not name.startswith("*")]
    else:
        needed += [name for name in wanted_names(settings) if name not in info.names]
    missing = [name for name in dict.fromkeys(needed) if name.lower() not in info.names]
    if missing:
        report.problem(
            f"the certificate does not cover {', '.join(missing)}",
            "get a certificate for these names (a self-signed one is remade at the next start)",
        )


def check_addresses(settings: Settings, report: Report) -> list[str]:
    """The media addresses, reported; returned for the TURN relay check."""
    if settings.media_engine == "none":
        report.ok("media engine none: no media addresses needed")
        return []
    addresses = list(settings.media_addresses) or get_host_addresses(True, False)
    if not addresses:
        report.problem(
            "the SFU has no address to gather on (no non-loopback interface)",
            "set PARLEY_MEDIA_ADDRESSES to the address browsers reach this machine on",
        )
        return []
    announced = settings.announced_address
    listed = ", ".join(addresses)
    report.ok(
        f"the SFU announces {announced} (gathering on {listed})"
        if announced
        else f"the SFU announces {listed}"
    )
    if announced is None and not any(_is_public(a) for a in addresses):
        report.warn(
            f"every media address ({', '.join(addresses)}) is private: only browsers on the "
            "same network reach the SFU directly",
            "behind 1:1 NAT (a cloud VM), set PARLEY_ANNOUNCED_ADDRESS to the public address; "
            "for other networks, run TURN (PARLEY_TURN=embedded)",
        )
    if all(ipaddress.ip_address(a).is_loopback for a in addresses if _is_ip(a)) and addresses:
        report.warn("the media addresses are loopback only: no other machine can send media")
    return [a for a in addresses if _is_ip(a)]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_ports(settings: Settings, report: Report) -> None:
    low, high = settings.rtp_port_min, settings.rtp_port_max
    if low is None and high is None:
        report.warn(
            "no RTP port range: the SFU uses any high UDP port",
            "set PARLEY_RTP_PORT_MIN/PARLEY_RTP_PORT_MAX (e.g. 40000-40999) and open that "
            "range for UDP in the firewall",
        )
    elif low is None or high is None or low > high:
        report.problem(
            f"RTP port range {low}-{high} is incomplete or reversed",
            "set both PARLEY_RTP_PORT_MIN and PARLEY_RTP_PORT_MAX, min <= max",
        )
    else:
        report.ok(
            f"RTP ports {low}-{high}/udp ({high - low + 1} ports, one per peer connection): "
            "open them in the firewall"
        )


def _external_turn(settings: Settings) -> list[tuple[str, int, str]]:
    """(host, port, transport) of each plain ``turn:`` URL in ``turn_urls``."""
    servers = []
    for url in settings.turn_urls:
        scheme, _, rest = url.partition(":")
        if scheme != "turn":
            continue
        parts = urlsplit(f"//{rest}")
        transport = "tcp" if "transport=tcp" in (parts.query or "") else "udp"
        if parts.hostname:
            servers.append((parts.hostname, parts.port or 3478, transport))
    return servers


def check_relay_reach(settings: Settings, report: Report) -> None:
    """Embedded TURN: UDP services its relay reaches besides the SFU (coturn filters peers by
    address, not by port)."""
    reached = relay_reaches(settings)
    if not reached:
        return
    shown = ", ".join(f"{address}:{port}" for address, port in reached[:10])
    report.warn(
        f"the TURN relay reaches {len(reached)} UDP socket(s) on the media addresses besides "
        f"the SFU: {shown}",
        "bind those services elsewhere, or drop UDP from the TURN relay ports to them in the "
        "firewall",
    )


async def check_turn(settings: Settings, peers: list[str], report: Report) -> None:
    if settings.turn == "embedded":
        check_relay_reach(settings, report)
        if shutil.which(settings.turn_binary) is None:
            report.problem(
                f"PARLEY_TURN=embedded but {settings.turn_binary!r} is not installed",
                "apt install coturn (Parley runs it itself; its own service can stay disabled)",
            )
            return
        secret_path = turn_dir(settings) / "secret"
        if not secret_path.is_file():
            report.problem(
                f"no TURN secret in {secret_path}: Parley has not run with PARLEY_TURN=embedded",
                "start `parley serve` with PARLEY_TURN=embedded, then run doctor again",
            )
            return
        secret = check_secret(secret_path.read_text().strip(), str(secret_path))
        host = probe_address(settings)
        servers = [(host, settings.turn_port, "udp"), (host, settings.turn_port, "tcp")]
    elif settings.turn_secret and settings.turn_urls:
        secret = settings.turn_secret
        servers = _external_turn(settings)
        if not servers:
            report.warn("PARLEY_TURN_URLS has no plain turn: URL that doctor can check")
            return
    else:
        report.warn(
            "no TURN server: people on networks that block UDP (offices, hotels, schools) "
            "cannot send or receive media",
            "set PARLEY_TURN=embedded (and apt install coturn), or PARLEY_TURN_SECRET and "
            "PARLEY_TURN_URLS for a coturn of your own",
        )
        return
    username, password = turn_credentials(secret, "parley-doctor", int(time.time()) + 120)
    for host, port, transport in servers:
        where = f"TURN {host}:{port} over {transport.upper()}"
        try:
            address = (socket.gethostbyname(host), port)
        except OSError as error:
            report.problem(f"{where}: the name does not resolve ({error})", "fix the TURN URL")
            continue
        if transport == "udp":
            try:
                await stun_binding(address, wait=1.5)
            except (OSError, TimeoutError):
                report.problem(
                    f"{where} does not answer",
                    "start Parley with PARLEY_TURN=embedded (it runs coturn), or start your "
                    f"coturn; open {port}/udp and {port}/tcp in the firewall",
                )
                continue
        result = await check_relay(address, username, password, peers, transport)
        if not result.allocated:
            report.problem(
                f"{where} refuses Parley's credentials or cannot be reached: {result.error}",
                "the TURN server's static-auth-secret must be Parley's (PARLEY_TURN_SECRET), "
                "with use-auth-secret",
            )
            continue
        report.ok(f"{where} answers and allocates a relay ({result.relayed_address})")
        for peer, reached in result.reached.items():
            if reached:
                report.ok(f"{where}: its relay reaches the SFU's address {peer}")
            else:
                report.problem(
                    f"{where}: its relay cannot reach the SFU's address {peer}",
                    "allow the TURN server to relay to the media addresses "
                    "(allowed-peer-ip; for loopback: allow-loopback-peers)",
                )


async def check_redis(settings: Settings, report: Report) -> None:
    """Cluster mode: Redis must ask for a password (a node refuses one that does not)."""
    if not settings.redis_url:
        return
    shown = where(settings.redis_url)
    try:
        async with asyncio.timeout(5):
            anonymous = await answers_anonymously(settings.redis_url)
    except (RedisError, OSError, TimeoutError) as error:
        report.problem(
            f"redis {shown} cannot be reached ({type(error).__name__})",
            "start Redis, or correct PARLEY_REDIS_URL",
        )
        return
    if not anonymous:
        report.ok(f"redis {shown} asks for a password")
        return
    what = f"redis {shown} answers without authentication: anyone who reaches it can read and "
    fix = (
        "set requirepass (or an ACL user) in redis.conf and put the password in "
        "PARLEY_REDIS_URL (redis://:PASSWORD@host:6379/0)"
    )
    if settings.redis_insecure:
        report.warn(what + "change every meeting (PARLEY_REDIS_INSECURE=1)", fix)
    else:
        report.problem(what + "change every meeting, so cluster nodes refuse to start", fix)


def check_open_files(settings: Settings, report: Report) -> None:
    """The descriptor limit ``parley serve`` will run with: it raises the soft limit to the
    hard one at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else max(soft, WANTED_OPEN_FILES)
    if soft == resource.RLIM_INFINITY or limit >= WANTED_OPEN_FILES:
        shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
        report.ok(f"open files limit: soft {shown}, raised to {limit} when serving")
        return
    report.warn(
        f"open files limit: soft {soft}, hard {hard}: below {WANTED_OPEN_FILES}, so about "
        f"{max(0, limit - settings.fd_reserve)} connections at most (fd_reserve "
        f"{settings.fd_reserve} are kept free)",
        f"raise the hard limit to {WANTED_OPEN_FILES} or more (systemd: LimitNOFILE=65536; "
        "shell: ulimit -Hn 65536 as root; Docker: --ulimit nofile=65536:65536)",
    )


def check_join_tokens(settings: Settings, report: Report) -> None:
    """The join-token settings ``parley serve`` refuses to start with, each named."""
    if not (settings.jwt_secret or settings.jwt_public_key or settings.jwt_jwks_url):
        return
    found = jwt_keys.problems(settings)
    for what, fix in found:
        report.problem(what, fix)
    if not found:
        report.ok("join token settings (PARLEY_JWT_*) are usable")


async def run(settings: Settings) -> Report:
    report = Report()
    check_open_files(settings, report)
    check_join_tokens(settings, report)
    check_tls(settings, report)
    peers = check_addresses(settings, report)
    check_ports(settings, report)
    await check_turn(settings, peers, report)
    await check_redis(settings, report)
    return report
