"""A probe of a subscriber's downlink over its own Socket.IO connection (``linkProbe``).

A media engine that cannot pad a subscriber's media to find room for a bigger layer (Janus)
asks for padding beside it instead: pieces of ``PIECE`` characters, paced at the rate to test,
each acknowledged by the client as it arrives. The connection shares the subscriber's link
with its media, so a link with room carries the padding without delay, and one without room
queues it: the round trips grow. The probe stops early once one has grown by ``STOP_GROWTH``
(the link has answered, and the media behind the padding should not wait longer; the growth
it reports is then at least that), and it is only run on a WebSocket (polling batches what it
sends)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics

import socketio

from parley.media.engine import LinkProbe

PIECE = 1000
"""Characters of padding per piece (one Socket.IO packet, under one IP packet)."""
STOP_GROWTH = 0.08
"""Seconds of round-trip growth after which the rest of the padding is not sent."""
LATE = 1.0
"""Seconds after the last piece that its acknowledgement is waited for."""


async def probe(
    sio: socketio.AsyncServer,
    conn_id: str,
    *,
    room_id: str,
    subscription_id: str,
    kbps: float,
    seconds: float,
) -> LinkProbe | None:
    """Pad ``conn_id``'s connection at ``kbps`` for ``seconds``; None: it cannot be probed
    (not a WebSocket of this node, or nothing acknowledged at all)."""
    if kbps <= 0 or seconds <= 0:
        return None
    try:
        if sio.transport(conn_id) != "websocket":
            return None
    except KeyError:  # gone, or connected to another node
        return None
    loop = asyncio.get_running_loop()
    interval = PIECE * 8 / (kbps * 1000)
    pieces = max(3, round(seconds / interval))
    padding = "." * PIECE
    sent_at: list[float] = []
    round_trips: dict[int, float] = {}
    all_in = asyncio.Event()
    stop = asyncio.Event()

    def acknowledged(seq: int) -> None:
        round_trips[seq] = loop.time() - sent_at[seq]
        first = [round_trips[i] for i in range(min(3, len(sent_at))) if i in round_trips]
        if first and round_trips[seq] - min(first) > STOP_GROWTH:
            stop.set()  # the link has answered: no room
        if len(round_trips) == pieces:
            all_in.set()

    start = loop.time()
    for seq in range(pieces):
        if stop.is_set():
            break
        sent_at.append(loop.time())
        data = {
            "roomId": room_id,
            "subscriptionId": subscription_id,
            "seq": seq,
            "padding": padding,
        }
        await sio.emit(
            "linkProbe", data, to=conn_id, callback=lambda *_, seq=seq: acknowledged(seq)
        )
        await asyncio.sleep(max(0.0, start + (seq + 1) * interval - loop.time()))
    if not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), LATE)
    if not round_trips:
        return None
    growth = _growth(round_trips, len(sent_at))
    return LinkProbe(
        kbps=kbps,
        sent=len(sent_at),
        acknowledged=len(round_trips),
        delay_growth=max(growth, STOP_GROWTH) if stop.is_set() else growth,
    )


def _growth(round_trips: dict[int, float], sent: int) -> float:
    """How much longer the last third's round trips were than the first third's (medians);
    a piece never acknowledged counts as late as the probe waited."""
    third = max(1, sent // 3)
    first = [round_trips[i] for i in range(third) if i in round_trips]
    last = [round_trips.get(i, LATE + STOP_GROWTH) for i in range(sent - third, sent)]
    return statistics.median(last) - (statistics.median(first) if first else 0.0)
