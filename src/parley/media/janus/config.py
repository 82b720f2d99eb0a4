"""The Janus engine's configuration (``JanusConfig``) and the configuration Parley writes for
the Janus it runs.

Only the VideoRoom plugin and the WebSocket transport are loaded (the plugin and transport
folders are private folders holding links to just those two libraries); the Janus API and the
Admin API listen on 127.0.0.1 only; every secret is random; ICE gathers only on the configured
media addresses. Nothing here reads ``/etc/janus``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from parley.media.sdp import Networks

PLUGIN = "libjanus_videoroom.so"
TRANSPORT = "libjanus_websockets.so"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class IceServerConfig:
    """One STUN or TURN server Janus uses to gather its own candidates."""

    urls: tuple[str, ...]
    username: str | None
    credential: str | None


@dataclass(frozen=True, kw_only=True)
class JanusConfig:
    """What the Janus engine is told; each field is the Parley setting of the same name (built
    from the settings by ``parley.media.select``)."""

    janus_binary: str
    """The Janus executable Parley runs when no ``janus_url`` is given."""
    janus_url: str | None
    """A Janus run by someone else, used instead of Parley's own."""
    janus_urls: tuple[str, ...]
    """A pool of Janus run by someone else (``pool.py``)."""
    janus_api_secret: str | None
    """The ``api_secret`` of the Janus at ``janus_url`` (or of the pool)."""
    janus_admin_key: str | None
    """The VideoRoom ``admin_key`` of the Janus at ``janus_url`` (or of the pool)."""
    redis_url: str | None
    """Where the pool's placement is shared between nodes (none: this node alone)."""
    data_dir: Path
    """Parley's data folder; its own Janus gets a private folder under ``janus/``."""
    media_addresses: tuple[str, ...]
    """The only addresses (or interfaces) Janus gathers ICE candidates on; empty: any."""
    announced_address: str | None
    """The public address Janus announces (1:1 NAT)."""
    rtp_port_min: int | None
    rtp_port_max: int | None
    """Janus's media port range (both given, or none)."""
    ice_servers: tuple[IceServerConfig, ...]
    """STUN and TURN servers for Janus's own gathering (the first of each kind is used)."""
    max_sdp_bytes: int
    """The longest offer or answer accepted."""
    ice_ignore_addresses: Networks
    """Candidates in these networks are dropped from offers and answers before Janus sees
    them (as trickled ones are refused)."""
    max_participants: int
    max_streams_per_participant: int
    """Together: how many publishers a VideoRoom takes."""
    janus_pp_rec_binary: str = "janus-pp-rec"
    """Janus's post-processor, which turns its recordings into Matroska (``recording.py``)."""
    recording_niceness: int = 10
    """The ``nice`` increment of that post-processing."""


def _secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class JanusSecrets:
    """Random secrets made once per Parley run and kept across Janus restarts."""

    api_secret: str = field(default_factory=_secret)
    """What every Janus API request must carry."""
    admin_secret: str = field(default_factory=_secret)
    """What every Admin API request must carry."""
    admin_key: str = field(default_factory=_secret)
    """What the VideoRoom plugin requires to create rooms."""


@dataclass(frozen=True)
class JanusPorts:
    """TCP ports of the two WebSocket servers, both on 127.0.0.1."""

    api: int
    admin: int


@dataclass(frozen=True)
class JanusLayout:
    """Where one run's files live (a private folder under ``<data_dir>/janus/``)."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def transports(self) -> Path:
        return self.root / "transports"

    @property
    def empty(self) -> Path:
        return self.root / "none"

    @property
    def main_config(self) -> Path:
        return self.conf / "janus.jcfg"


def _quote(value: str) -> str:
    # libconfig strings use C escapes; JSON's escaping is a compatible subset for our values.
    return json.dumps(value)


def _stun(servers: tuple[IceServerConfig, ...]) -> tuple[str, int] | None:
    for server in servers:
        for url in server.urls:
            if url.startswith("stun:"):
                host, _, port = url[5:].partition(":")
                return host, int(port or 3478)
    return None


def _turn(servers: tuple[IceServerConfig, ...]) -> list[str]:
    for server in servers:
        for url in server.urls:
            if not url.startswith("turn:"):
                continue
            parts = urlsplit(url.replace("turn:", "turn://", 1))
            transport = parse_qs(parts.query).get("transport", ["udp"])[0]
            lines = [
                f"turn_server = {_quote(parts.hostname or '')}",
                f"turn_port = {parts.port or 3478}",
                f"turn_type = {_quote(transport)}",
            ]
            if server.username:
                lines.append(f"turn_user = {_quote(server.username)}")
            if server.credential:
                lines.append(f"turn_pwd = {_quote(server.credential)}")
            return lines
    return []


def core_config(
    config: JanusConfig, layout: JanusLayout, secrets_: JanusSecrets, *, debug_level: int = 4
) -> str:
    """``janus.jcfg``: folders, secrets, media ports, NAT and ICE gathering."""
    general = [
        f"configs_folder = {_quote(str(layout.conf))}",
        f"plugins_folder = {_quote(str(layout.plugins))}",
        f"transports_folder = {_quote(str(layout.transports))}",
        f"events_folder = {_quote(str(layout.empty))}",
        f"loggers_folder = {_quote(str(layout.empty))}",
        f"debug_level = {debug_level}",
        "debug_colors = false",
        f"api_secret = {_quote(secrets_.api_secret)}",
        f"admin_secret = {_quote(secrets_.admin_secret)}",
        'server_name = "parley"',
        "session_timeout = 60",
        "reclaim_session_timeout = 0",
        "hide_dependencies = true",
        'protected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", '
        '"/sys", "/usr", "/var"]',
    ]
    # A keyframe sent to a subscriber empties its retransmission buffer: after a switch to a
    # smaller layer, the packets of the bigger one its narrow link lost are not sent again
    # (they would crowd out the keyframe that replaces them).
    media: list[str] = ["nack_optimizations = true"]
    if any(":" in address for address in config.media_addresses):
        media.append("ipv6 = true")
    if config.rtp_port_min is not None and config.rtp_port_max is not None:
        media.append(f'rtp_port_range = "{config.rtp_port_min}-{config.rtp_port_max}"')
    nat = ["nice_debug = false", "ignore_unreachable_ice_server = true", "ignore_mdns = false"]
    if config.media_addresses:
        nat.append(f"ice_enforce_list = {_quote(','.join(config.media_addresses))}")
    else:
        nat.append('ice_ignore_list = "vmnet"')
    if config.announced_address:
        nat.append(f"nat_1_1_mapping = {_quote(config.announced_address)}")
    stun = _stun(config.ice_servers)
    if stun is not None:
        nat += [f"stun_server = {_quote(stun[0])}", f"stun_port = {stun[1]}"]
    nat += _turn(config.ice_servers)
    return "\n".join(
        [
            _section("general", general),
            _section("certificates", []),
            _section("media", media),
            _section("nat", nat),
            _section("plugins", []),
            _section("transports", []),
            _section("loggers", []),
            _section("events", ["broadcast = false"]),
        ]
    )


def websockets_config(ports: JanusPorts) -> str:
    """``janus.transport.websockets.jcfg``: both APIs on 127.0.0.1, plain ``ws``."""
    general = [
        'json = "compact"',
        "events = false",
        "ws = true",
        f"ws_port = {ports.api}",
        f'ws_ip = "{LOOPBACK}"',
        'ws_acl = "127."',
        "wss = false",
    ]
    admin = [
        "admin_ws = true",
        f"admin_ws_port = {ports.admin}",
        f'admin_ws_ip = "{LOOPBACK}"',
        'admin_ws_acl = "127."',
        "admin_wss = false",
    ]
    return "\n".join([_section("general", general), _section("admin", admin), _section("cors", [])])


def videoroom_config(secrets_: JanusSecrets) -> str:
    """``janus.plugin.videoroom.jcfg``: string room ids, rooms created only with the key."""
    general = [
        f"admin_key = {_quote(secrets_.admin_key)}",
        "lock_rtp_forward = true",
        "string_ids = true",
        "events = false",
    ]
    return _section("general", general)


def _section(name: str, lines: list[str]) -> str:
    body = "".join(f"\t{line}\n" for line in lines)
    return f"{name}: {{\n{body}}}\n"


def write_config(
    config: JanusConfig,
    layout: JanusLayout,
    secrets_: JanusSecrets,
    ports: JanusPorts,
    *,
    library_dir: Path,
) -> None:
    """Write the configuration and the private plugin/transport folders (owner-only)."""
    for folder in (layout.root, layout.conf, layout.plugins, layout.transports, layout.empty):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    for folder, name in ((layout.plugins, PLUGIN), (layout.transports, TRANSPORT)):
        link = folder / name
        subdir = "plugins" if folder == layout.plugins else "transports"
        link.unlink(missing_ok=True)
        link.symlink_to(library_dir / subdir / name)
    files = {
        "janus.jcfg": core_config(config, layout, secrets_),
        "janus.transport.websockets.jcfg": websockets_config(ports),
        "janus.plugin.videoroom.jcfg": videoroom_config(secrets_),
    }
    for name, text in files.items():
        path = layout.conf / name
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
