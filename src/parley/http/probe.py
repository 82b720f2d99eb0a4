"""The pre-join connectivity probe: does this browser reach the media server directly?

Before joining, a browser has no participant token, so no TURN credentials and no place in a
room. Two small endpoints let the pre-join screen check its network anyway, without handing a
stranger anything it could use beyond the check:

- ``GET /connectivity-probe``: ``{ probe, turnUrls }``. ``probe`` says whether the server answers
  probe offers (it does when it runs a media engine); ``turnUrls`` are the TURN URLs a
  participant would be given, *without credentials*. The page asks the TURN server for an
  allocation with placeholder credentials: an answer (401) proves the relay is reachable, and
  nothing is allocated.
- ``POST /connectivity-probe`` ``{ sdp }`` (an offer with one audio section and no track):
  ``{ sdp }``, the answer of a peer connection that gathers where the embedded SFU gathers (the
  media addresses, the RTP port range, the announced address), receives and sends nothing, and
  closes itself after ``PROBE_SECONDS``. It talks to the requester's address only (the one its
  HTTP request came from): the offer's candidates for any other address (and for
  ``ice_ignore_addresses``) are left out, and checks from elsewhere go unanswered. Each address
  may open ``probe_rate`` a second (burst ``probe_burst``); at most ``max_probes`` are open at
  once (``SERVER_FULL`` beyond).

The peer connection is the media side's (``ProbePeer``; ``media/embedded/probe.py`` makes it
with the embedded engine's own helpers, so the probe binds exactly where the SFU's connections
bind); this module knows it only through that protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from parley.addresses import limiter_key
from parley.errors import InvalidPayload, MediaError, RateLimited, ServerFull
from parley.media.sdp import check_description, filter_candidates, ignored_networks
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.settings import Settings
from parley.tls import TlsFiles
from parley.turn.config import turn_urls

log = logging.getLogger(__name__)

PATH = "/connectivity-probe"
PROBE_SECONDS = 10.0
"""How long one probe's peer connection lives: enough for ICE checks, even through a relay."""
_NO_STORE = {"Cache-Control": "no-store"}


class ProbePeer(Protocol):
    """One probe's peer connection: it answers one offer, then receives and sends nothing."""

    async def answer(self, offer: str, requester: str) -> str:
        """The answer to ``offer`` (checked for size and shape, its candidates ``requester``'s
        own), ready for the browser; answers connectivity checks from ``requester`` only;
        raises ``MediaError`` when the offer is not usable."""
        ...

    async def close(self) -> None:
        """Close it (safe to call twice, never raises)."""
        ...


class Probes:
    """The open probe connections: each closes itself after ``PROBE_SECONDS``.
    ``open_peer`` makes one peer connection (not yet answering anything)."""

    def __init__(
        self,
        settings: Settings,
        enabled: bool,
        tls: TlsFiles | None,
        open_peer: Callable[[], ProbePeer],
        *,
        shared: SharedBuckets | None = None,
    ) -> None:
        self._settings = settings
        self._open_peer = open_peer
        self.enabled = enabled
        self._tls = tls
        self._limiter = KeyedLimiter(
            "probe.address", settings.probe_rate, settings.probe_burst, shared=shared
        )
        self._ignored = ignored_networks(settings.ice_ignore_addresses)
        self._open: dict[ProbePeer, asyncio.TimerHandle | None] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def max_body_bytes(self) -> int:
        """The largest POST body: an SDP offer at its limit, JSON-escaped."""
        return 2 * self._settings.max_sdp_bytes

    @property
    def open_count(self) -> int:
        return len(self._open)

    def turn_urls(self, request_host: str | None) -> list[str]:
        """TURN URLs (never credentials) a participant of this server would be given."""
        s = self._settings
        urls: list[str] = [url for server in s.ice_servers for url in server.urls if _turn(url)]
        if s.turn_secret and s.turn_urls:
            urls += s.turn_urls
        elif s.turn == "embedded" and not s.turn_urls:
            urls += turn_urls(s, request_host, self._tls)
        return list(dict.fromkeys(urls))

    async def answer(self, address: str, offer: object, now: float) -> str:
        """The answer to one probe offer; raises a ParleyError (and keeps nothing open)."""
        if not self.enabled:
            raise MediaError("This server runs no media engine, so it answers no probes.")
        if not self._limiter.allow(address, now):
            raise RateLimited(
                "Too many connectivity checks from your address; try again soon.",
                retry_after=self._limiter.wait(address, now),
            )
        if len(self._open) >= self._settings.max_probes:
            raise ServerFull("Too many connectivity checks at once; try again soon.")
        sdp = check_description(offer, self._settings.max_sdp_bytes, "offer")
        sdp = filter_candidates(sdp, self._ignored, only_from=address)
        peer = self._open_peer()
        self._open[peer] = None
        try:
            answer = await peer.answer(sdp, address)
        except BaseException:
            await self._close(peer)
            raise
        loop = asyncio.get_running_loop()
        self._open[peer] = loop.call_later(PROBE_SECONDS, self._expire, peer)
        return answer

    def _expire(self, peer: ProbePeer) -> None:
        task = asyncio.create_task(self._close(peer), name="probe expiry")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, peer: ProbePeer) -> None:
        timer = self._open.pop(peer, None)
        if timer is not None:
            timer.cancel()
        await peer.close()

    async def close(self) -> None:
        """Close every open probe (the server stops)."""
        await asyncio.gather(*(self._close(peer) for peer in list(self._open)))
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _turn(url: str) -> bool:
    return url.startswith(("turn:", "turns:"))


def install(app: FastAPI, probes: Probes) -> None:
    @app.get(PATH)
    async def probe_info(request: Request) -> JSONResponse:
        body = {"probe": probes.enabled, "turnUrls": probes.turn_urls(request.url.hostname)}
        return JSONResponse(body, headers=_NO_STORE)

    @app.post(PATH)
    async def probe(request: Request) -> JSONResponse:
        address = limiter_key(request.client.host) if request.client else "unknown"
        declared = request.headers.get("content-length", "")
        limit = probes.max_body_bytes
        if not declared.isdigit() or len(declared) > 12 or int(declared) > limit:
            raise InvalidPayload(f"The body must declare its length, at most {limit} bytes.")
        try:
            body: Any = await request.json()
        except ValueError as exc:
            raise InvalidPayload("The body must be JSON: { sdp }.") from exc
        if not isinstance(body, dict) or set(body) != {"sdp"}:
            raise InvalidPayload("The body must be exactly { sdp }.")
        loop = asyncio.get_running_loop()
        sdp = await probes.answer(address, body["sdp"], loop.time())
        log.info("connectivity probe answered (%d open)", probes.open_count)
        return JSONResponse({"sdp": sdp}, headers=_NO_STORE)
