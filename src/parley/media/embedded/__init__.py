"""The embedded media engine: a forwarding SFU on aiortc, inside the Parley process.

Only this package imports aiortc and aioice; the aiortc internals it needs are all in
``aiortc_internals.py``.
"""

from __future__ import annotations

from parley.media.embedded.config import EmbeddedConfig, IceServerConfig
from parley.media.embedded.engine import EmbeddedEngine
from parley.media.engine import MediaEngine
from parley.media.sdp import ignored_networks
from parley.settings import Settings

__all__ = [
    "EmbeddedConfig",
    "EmbeddedEngine",
    "IceServerConfig",
    "config_from_settings",
    "create_engine",
]


def config_from_settings(settings: Settings) -> EmbeddedConfig:
    """The engine's configuration from Parley's settings."""
    port_range: tuple[int, int] | None = None
    if settings.rtp_port_min is not None or settings.rtp_port_max is not None:
        low = settings.rtp_port_min or 1024
        high = settings.rtp_port_max or 65535
        if low > high:
            raise ValueError(f"rtp_port_min ({low}) is above rtp_port_max ({high})")
        port_range = (low, high)
    return EmbeddedConfig(
        ice_servers=tuple(
            IceServerConfig(urls=tuple(s.urls), username=s.username, credential=s.credential)
            for s in settings.ice_servers
        ),
        media_addresses=tuple(settings.media_addresses),
        announced_address=settings.announced_address,
        port_range=port_range,
        max_sdp_bytes=settings.max_sdp_bytes,
        ignored_networks=ignored_networks(settings.ice_ignore_addresses),
        recording_queue=settings.recording_queue,
        max_publish_bps=settings.max_publish_kbps * 1000,
    )


def create_engine(settings: Settings) -> MediaEngine:
    """The embedded engine configured from ``settings`` (not started)."""
    return EmbeddedEngine(config_from_settings(settings))
