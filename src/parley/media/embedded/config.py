"""The embedded SFU's configuration: plain values, no environment."""

from __future__ import annotations

from dataclasses import dataclass

from parley.media.sdp import Networks


@dataclass(frozen=True)
class IceServerConfig:
    """One STUN or TURN server the SFU may use to gather candidates."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class EmbeddedConfig:
    """What the embedded engine needs to know."""

    ice_servers: tuple[IceServerConfig, ...] = ()
    """STUN/TURN servers; empty: host candidates only (never aiortc's built-in default)."""
    media_addresses: tuple[str, ...] = ()
    """Local addresses to gather candidates on; empty: aioice's choice (every non-loopback one)."""
    announced_address: str | None = None
    """Address written into the host candidates handed to clients (1:1 NAT)."""
    port_range: tuple[int, int] | None = None
    """Inclusive UDP port range for host candidates; None: ephemeral ports."""
    max_sdp_bytes: int = 64 * 1024
    """Largest SDP offer or answer accepted."""
    ignored_networks: Networks = ()
    """Addresses never sent a connectivity check: candidates for them are left out of every
    offer and answer (``ice_ignore_addresses``)."""
    history_size: int = 512
    """Packets kept per subscribed track to answer NACKs (a power of two)."""
    queue_size: int = 256
    """Packets waiting to be sent per subscribed track; beyond it the oldest are dropped."""
    keyframe_interval: float = 0.5
    """Shortest time between two keyframe requests sent to one publisher, in seconds."""
    negotiation_timeout: float = 10.0
    """Longest wait for an offer/answer step (candidate gathering included), in seconds."""
    connect_timeout: float = 30.0
    """Longest time from the offer until the connection is up; then it counts as failed."""
    close_timeout: float = 5.0
    """Longest wait for one peer connection to close, in seconds."""
    max_publish_bps: int = 2_500_000
    """The highest bit rate a publisher's video is invited to reach (REMB, ``b=AS``/TIAS)."""
    record_latency: bool = False
    """Keep samples of the receive-to-send time of forwarded packets (benchmarks)."""
    latency_samples: int = 100_000
    """How many latency samples to keep when ``record_latency`` is on."""
    recording_queue: int = 2048
    """Packets of one recorded room waiting for its writer; past it they are dropped."""
