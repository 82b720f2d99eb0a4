"""Choosing the media engine a server runs, from ``Settings.media_engine``."""

from __future__ import annotations

import importlib

from parley.media.engine import MediaEngine
from parley.settings import Settings


def create_engine(settings: Settings) -> MediaEngine | None:
    choice = settings.media_engine
    if choice == "none":
        return None
    if choice == "auto":
        from parley.media.janus import janus_available

        choice = "janus" if janus_available(settings) else "embedded"
    module = importlib.import_module(f"parley.media.{choice}")
    engine: MediaEngine = module.create_engine(settings)
    return engine
