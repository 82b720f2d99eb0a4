"""Choosing the media engine a server runs, from ``Settings.media_engine``."""

from __future__ import annotations

import importlib

from parley.errors import MediaError
from parley.media.engine import MediaEngine
from parley.settings import Settings


def cluster_media_problem(settings: Settings) -> str | None:
    """Why the media settings cannot serve a cluster node (``redis_url`` set), or None.

    A room's people may be on several nodes, so its media must be negotiated on a server every
    node reaches: the embedded engine (media inside one node) and a Janus of a node's own cannot.
    The one place this rule lives."""
    if not settings.redis_url:
        return None
    engine = settings.media_engine
    if engine == "none" or (engine in ("janus", "auto") and settings.janus_urls):
        return None
    if engine == "janus":
        return (
            "cluster mode (PARLEY_REDIS_URL) with PARLEY_MEDIA_ENGINE=janus needs "
            "PARLEY_JANUS_URLS: the Janus servers every node shares"
        )
    return (
        f"cluster mode (PARLEY_REDIS_URL) cannot use the {engine} media engine: the embedded "
        "engine cannot serve a room whose people are on several nodes; set "
        "PARLEY_MEDIA_ENGINE=janus with PARLEY_JANUS_URLS (or none)"
    )


def create_engine(settings: Settings) -> MediaEngine | None:
    problem = cluster_media_problem(settings)
    if problem is not None:
        raise MediaError(problem)
    choice = settings.media_engine
    if choice == "none":
        return None
    if choice == "auto":
        from parley.media.janus import janus_available

        choice = "janus" if janus_available(settings) else "embedded"
    module = importlib.import_module(f"parley.media.{choice}")
    engine: MediaEngine = module.create_engine(settings)
    return engine
