"""Choosing the media engine a server runs, from ``Settings.media_engine``, and building it
from the settings (each engine is given only its own configuration)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from parley.media.engine import MediaEngine
from parley.media.sdp import ignored_networks
from parley.settings import Settings

if TYPE_CHECKING:
    from parley.media.janus import JanusConfig


def janus_config(settings: Settings) -> JanusConfig:
    """The Janus engine's configuration: the settings it uses, by the same names."""
    from parley.media.janus import IceServerConfig, JanusConfig

    return JanusConfig(
        janus_binary=settings.janus_binary,
        janus_url=settings.janus_url,
        janus_urls=tuple(settings.janus_urls),
        janus_api_secret=settings.janus_api_secret,
        janus_admin_key=settings.janus_admin_key,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        media_addresses=tuple(settings.media_addresses),
        announced_address=settings.announced_address,
        rtp_port_min=settings.rtp_port_min,
        rtp_port_max=settings.rtp_port_max,
        ice_servers=tuple(
            IceServerConfig(urls=tuple(s.urls), username=s.username, credential=s.credential)
            for s in settings.ice_servers
        ),
        max_sdp_bytes=settings.max_sdp_bytes,
        ice_ignore_addresses=ignored_networks(settings.ice_ignore_addresses),
        max_participants=settings.max_participants,
        max_streams_per_participant=settings.max_streams_per_participant,
        janus_pp_rec_binary=settings.janus_pp_rec_binary,
        recording_niceness=settings.recording_niceness,
    )


def create_engine(settings: Settings) -> MediaEngine | None:
    """The engine ``media_engine`` names (``auto``: Janus when it can run here, else the
    embedded one), not started; None for ``none``."""
    choice = settings.media_engine
    if choice == "none":
        return None
    if choice in ("janus", "auto"):
        from parley.media import janus

        config = janus_config(settings)
        if choice == "janus" or janus.janus_available(config):
            return janus.create_engine(config)
    embedded = importlib.import_module("parley.media.embedded")  # aiortc: only when chosen
    engine: MediaEngine = embedded.create_engine(settings)
    return engine
