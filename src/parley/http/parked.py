"""The admin REST API's parked webhook events: those a receiver refused for
``webhook_park_seconds``, listed and sent again by hand (mounted under the admin API's prefix
and key check, ``parley.http.api``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict

from parley.errors import InvalidPayload
from parley.webhooks.worker import WebhookWorker, redacted


class ParkedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    eventId: str
    event: str
    url: str
    """The receiver, without its query (which may carry a token)."""
    createdAt: int
    parkedAt: int
    attempts: int
    error: str
    """The last refusal: ``HTTP 503``, ``ConnectTimeout``, a TLS failure..."""
    payload: dict[str, Any]
    """The event's JSON, as it is sent."""


def router(worker: WebhookWorker | None) -> APIRouter:
    """The parked events' routes (none are parked without webhooks)."""
    r = APIRouter()

    @r.get("/webhooks/parked", response_model=list[ParkedEvent])
    async def parked() -> list[dict[str, object]]:
        """The parked events, oldest first."""
        found = await worker.parked() if worker is not None else []
        return [
            {
                "id": p.id,
                "eventId": p.event_id,
                "event": p.event,
                "url": redacted(p.url),
                "createdAt": p.created_at,
                "parkedAt": p.parked_at,
                "attempts": p.attempts,
                "error": p.error,
                "payload": json.loads(p.body),
            }
            for p in found
        ]

    @r.post("/webhooks/parked/{parkedId}/retry", status_code=204)
    async def retry(parkedId: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
        """Send a parked event again, now (after the events its room has waiting)."""
        if worker is None or not await worker.retry_parked(parkedId):
            raise InvalidPayload("No parked event has that id.")
        return Response(status_code=204)

    return r
