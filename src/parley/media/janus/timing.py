"""How long the Janus engine waits for Janus, and how it retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .link import JanusLink
from .process import JanusProvider


@dataclass(frozen=True, kw_only=True)
class JanusTiming:
    """How long the Janus engine waits, and how it retries."""

    request_timeout: float = 10.0
    """Longest wait for any Janus answer."""
    connect_timeout: float = 10.0
    """Longest wait for Janus to accept the connection (or to be restarted)."""
    live_timeout: float = 10.0
    """A published stream or subscription whose media is not up by then is reported failed,
    and a subscribe waits at most this long for its stream to come up."""
    keepalive_interval: float = 20.0
    """Session keepalives (Janus drops a silent session after 60 s)."""
    layer_timeout: float = 1.2
    layer_attempts: int = 3
    """How long a layer switch is awaited, and how often it is asked for (``set_layer``)."""
    link_interval: float = 0.5
    """How often each subscriber's link is read (Admin API ``handle_info``) and judged."""
    probe_seconds: float = 0.5
    """How long the padding of a probe of a subscriber's link lasts (``links.py``)."""
    probe_max_kbps: float = 4000.0
    """The fastest a probe pads a subscriber's connection, whatever the publisher sends."""
    min_backoff: float = 0.2
    max_backoff: float = 5.0
    """Delays between reconnection attempts."""

    def link(
        self,
        provider: JanusProvider,
        *,
        on_lost: Callable[[], None],
        on_reset: Callable[[], Awaitable[None]],
    ) -> JanusLink:
        """A link to the provider's Janus with these timings."""
        return JanusLink(
            provider,
            on_lost=on_lost,
            on_reset=on_reset,
            request_timeout=self.request_timeout,
            connect_timeout=self.connect_timeout,
            keepalive_interval=self.keepalive_interval,
            min_backoff=self.min_backoff,
            max_backoff=self.max_backoff,
        )
