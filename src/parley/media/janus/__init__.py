"""Janus as Parley's second media engine (VideoRoom plugin over the WebSocket API).

``create_engine(settings)`` gives a ``MediaEngine`` that runs its own supervised ``janus``
(configuration generated under ``<data_dir>/janus/``) or, with ``janus_url``, uses a Janus run
by someone else, or with ``janus_urls`` a pool of them (``pool``: rooms placed by ``placement``,
shared between nodes through ``redis_url``). ``janus_available(settings)`` tells whether that
can work here (what ``media_engine = "auto"`` checks). Modules: ``client`` (WebSocket API),
``config`` and ``process`` (the child Janus), ``link`` (connection kept up), ``engine`` (the
mapping).
"""

from __future__ import annotations

from parley.media.engine import MediaEngine
from parley.settings import Settings

from .engine import JanusEngine
from .placement import LocalPlacement, Placement, RedisPlacement
from .pool import JanusPoolEngine
from .process import ExternalJanus, JanusProcess, JanusProvider, find_binary, find_library_dir

__all__ = ["JanusEngine", "JanusPoolEngine", "create_engine", "janus_available"]


def janus_available(settings: Settings) -> bool:
    """True when the Janus engine can run: an external ``janus_url`` is set, or the
    ``janus_binary`` is installed together with its VideoRoom plugin and WebSocket transport."""
    if settings.janus_url or settings.janus_urls:
        return True
    binary = find_binary(settings)
    return binary is not None and find_library_dir(binary) is not None


def create_engine(settings: Settings) -> MediaEngine:
    """The Janus engine for ``settings`` (not started: the caller calls ``start()``)."""
    if settings.janus_urls:
        placement: Placement = (
            RedisPlacement(settings.redis_url) if settings.redis_url else LocalPlacement()
        )
        return JanusPoolEngine(settings, settings.janus_urls, placement)
    provider: JanusProvider
    if settings.janus_url:
        provider = ExternalJanus(
            settings.janus_url, settings.janus_api_secret, settings.janus_admin_key
        )
    else:
        provider = JanusProcess(settings)
    return JanusEngine(settings, provider)
