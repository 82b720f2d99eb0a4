"""Janus as Parley's second media engine (VideoRoom plugin over the WebSocket API).

``create_engine(config)`` gives a ``MediaEngine`` that runs its own supervised ``janus``
(configuration generated under ``<data_dir>/janus/``) or, with ``janus_url``, uses a Janus run
by someone else, or with ``janus_urls`` a pool of them (``pool``: rooms placed by ``placement``,
shared between nodes through ``redis_url``). ``janus_available(config)`` tells whether that
can work here (what ``media_engine = "auto"`` checks). The ``JanusConfig`` comes from Parley's
settings (``parley.media.select.janus_config``). Modules: ``client`` (WebSocket API),
``config`` and ``process`` (the child Janus), ``link`` (connection kept up), ``timing``,
``videoroom`` (the rooms on one Janus, what both engines share), ``engine`` (one Janus),
``pool`` (several).
"""

from __future__ import annotations

from parley.media.engine import MediaEngine

from .config import IceServerConfig, JanusConfig
from .engine import JanusEngine
from .placement import LocalPlacement, Placement, RedisPlacement
from .pool import JanusPoolEngine
from .process import ExternalJanus, JanusProcess, JanusProvider, find_binary, find_library_dir
from .timing import JanusTiming
from .videoroom import JanusRooms

__all__ = [
    "IceServerConfig",
    "JanusConfig",
    "JanusEngine",
    "JanusPoolEngine",
    "JanusRooms",
    "JanusTiming",
    "create_engine",
    "janus_available",
]


def janus_available(config: JanusConfig) -> bool:
    """True when the Janus engine can run: an external ``janus_url`` is set, or the
    ``janus_binary`` is installed together with its VideoRoom plugin and WebSocket transport."""
    if config.janus_url or config.janus_urls:
        return True
    binary = find_binary(config)
    return binary is not None and find_library_dir(binary) is not None


def create_engine(config: JanusConfig) -> MediaEngine:
    """The Janus engine for ``config`` (not started: the caller calls ``start()``)."""
    if config.janus_urls:
        placement: Placement = (
            RedisPlacement(config.redis_url) if config.redis_url else LocalPlacement()
        )
        return JanusPoolEngine(config, placement)
    provider: JanusProvider
    if config.janus_url:
        provider = ExternalJanus(config.janus_url, config.janus_api_secret, config.janus_admin_key)
    else:
        provider = JanusProcess(config)
    return JanusEngine(config, provider)
