"""The end-to-end encryption events: relayed between the members of an E2EE room, unread."""

from __future__ import annotations

from parley.rooms.e2ee import E2eeRelay
from parley.rooms.models import KeyMessage
from parley.signalling import payloads as p
from parley.signalling.dispatch import Route


class E2eeHandlers:
    def __init__(self, relay: E2eeRelay) -> None:
        self._relay = relay

    async def public_key(self, sid: str, m: p.E2eePublicKey) -> object:
        await self._relay.public_key(sid, m.roomId, m.publicKey, m.to)
        return {}

    async def key(self, sid: str, m: p.E2eeKey) -> object:
        await self._relay.key(sid, m.roomId, m.to, KeyMessage(m.keyId, m.payload))
        return {}

    def routes(self) -> list[Route]:
        return [
            Route("e2eePublicKey", p.E2eePublicKey, self.public_key),
            Route("e2eeKey", p.E2eeKey, self.key),
        ]
