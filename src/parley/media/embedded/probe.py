"""The peer connection of the pre-join connectivity probe (``http/probe.py``): aiortc's, set up
with the embedded SFU's own helpers, so that a probe gathers exactly where the SFU's
connections gather (the media addresses, the RTP port range, the announced address).

It answers one offer, receives and sends nothing; whoever opened it closes it. It talks to the
requester's address only: the offer's candidates for any other address are left out
(``http/probe.py``) and connectivity checks from elsewhere go unanswered, so a probe cannot be
pointed at a third party.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial

from aiortc import RTCSessionDescription

from parley.errors import MediaError
from parley.media.embedded import config_from_settings
from parley.media.embedded.aiortc_internals import (
    NEGOTIATION_ERRORS,
    answer_checks_only_from,
    drop_empty_datagrams,
    new_peer_connection,
    restrict_gathering,
)
from parley.media.embedded.config import EmbeddedConfig
from parley.media.sdp import announce
from parley.settings import Settings

_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *NEGOTIATION_ERRORS)


class EmbeddedProbePeer:
    """One probe peer connection (``http.probe.ProbePeer``)."""

    def __init__(self, config: EmbeddedConfig) -> None:
        self._config = config
        self._pc = new_peer_connection(config.ice_servers)

    async def answer(self, offer: str, requester: str) -> str:
        """The answer to ``offer`` (an SDP offer already checked for size and shape, its
        candidates the requester's own), with the announced address written in; ``MediaError``
        when aiortc cannot use it (within the negotiation timeout). Only ``requester`` is
        answered connectivity checks."""
        config, pc = self._config, self._pc
        try:
            async with asyncio.timeout(config.negotiation_timeout):
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
                restrict_gathering(pc, config.media_addresses, config.port_range)
                answer_checks_only_from(pc, requester)
                drop_empty_datagrams(pc)
                await pc.setLocalDescription(await pc.createAnswer())
        except _FAILURES as exc:
            raise MediaError(f"the probe offer is not usable: {exc or type(exc).__name__}") from exc
        return announce(pc.localDescription.sdp, config.announced_address, config.media_addresses)

    async def close(self) -> None:
        """Close the peer connection (safe to call twice; never raises)."""
        with contextlib.suppress(Exception):
            await self._pc.close()


def probe_peers(settings: Settings) -> Callable[[], EmbeddedProbePeer]:
    """What ``http.probe.Probes`` opens a probe peer connection with, configured like the
    embedded SFU from ``settings``."""
    return partial(EmbeddedProbePeer, config_from_settings(settings))
