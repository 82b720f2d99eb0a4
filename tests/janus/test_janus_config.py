"""The configuration Parley generates for its Janus (no Janus binary needed)."""

from __future__ import annotations

import re
from pathlib import Path

from parley.media.janus import JanusConfig
from parley.media.janus.config import (
    JanusLayout,
    JanusPorts,
    JanusSecrets,
    core_config,
    videoroom_config,
    websockets_config,
    write_config,
)
from parley.media.select import janus_config
from parley.settings import IceServer, Settings


def _config(tmp_path: Path, **overrides: object) -> JanusConfig:
    return janus_config(Settings(data_dir=tmp_path, **overrides))  # type: ignore[arg-type]


def _value(text: str, key: str) -> str | None:
    match = re.search(rf"^\s*{key} = (.*)$", text, re.MULTILINE)
    return match.group(1) if match else None


def test_every_run_gets_its_own_random_secrets() -> None:
    first, second = JanusSecrets(), JanusSecrets()
    assert first.api_secret != second.api_secret
    assert len({first.api_secret, first.admin_secret, first.admin_key}) == 3
    assert len(first.admin_secret) >= 40


def test_both_apis_are_bound_to_loopback_only() -> None:
    text = websockets_config(JanusPorts(api=40001, admin=40002))
    assert _value(text, "ws_ip") == '"127.0.0.1"'
    assert _value(text, "admin_ws_ip") == '"127.0.0.1"'
    assert _value(text, "ws_port") == "40001"
    assert _value(text, "admin_ws_port") == "40002"
    assert _value(text, "wss") == "false"
    assert _value(text, "admin_wss") == "false"


def test_media_addresses_ports_and_announced_address_reach_janus(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        media_addresses=["10.0.0.5", "eth1"],
        announced_address="203.0.113.7",
        rtp_port_min=30000,
        rtp_port_max=30100,
    )
    text = core_config(config, JanusLayout(tmp_path / "run"), JanusSecrets())
    assert _value(text, "ice_enforce_list") == '"10.0.0.5,eth1"'
    assert _value(text, "nat_1_1_mapping") == '"203.0.113.7"'
    assert _value(text, "rtp_port_range") == '"30000-30100"'


def test_stun_and_turn_come_from_the_ice_servers(tmp_path: Path) -> None:
    servers = [
        IceServer(urls=["stun:stun.example.org:3479"]),
        IceServer(urls=["turn:turn.example.org:3480?transport=tcp"], username="u", credential="p"),
    ]
    text = core_config(
        _config(tmp_path, ice_servers=servers), JanusLayout(tmp_path), JanusSecrets()
    )
    assert _value(text, "stun_server") == '"stun.example.org"'
    assert _value(text, "stun_port") == "3479"
    assert _value(text, "turn_server") == '"turn.example.org"'
    assert _value(text, "turn_port") == "3480"
    assert _value(text, "turn_type") == '"tcp"'
    assert _value(text, "turn_user") == '"u"'
    assert _value(text, "turn_pwd") == '"p"'


def test_secrets_are_written_where_janus_reads_them(tmp_path: Path) -> None:
    secrets = JanusSecrets()
    core = core_config(_config(tmp_path), JanusLayout(tmp_path), secrets)
    assert _value(core, "api_secret") == f'"{secrets.api_secret}"'
    assert _value(core, "admin_secret") == f'"{secrets.admin_secret}"'
    room = videoroom_config(secrets)
    assert _value(room, "admin_key") == f'"{secrets.admin_key}"'
    assert _value(room, "string_ids") == "true"


def test_nothing_points_at_etc_janus_and_demo_rooms_are_absent(tmp_path: Path) -> None:
    layout = JanusLayout(tmp_path / "run")
    library = tmp_path / "lib"
    (library / "plugins").mkdir(parents=True)
    (library / "transports").mkdir()
    write_config(_config(tmp_path), layout, JanusSecrets(), JanusPorts(1, 2), library_dir=library)
    names = sorted(p.name for p in layout.conf.iterdir())
    assert names == [
        "janus.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.transport.websockets.jcfg",
    ]
    for path in layout.conf.iterdir():
        text = path.read_text()
        assert "/etc/janus" not in text
        assert "room-" not in text
