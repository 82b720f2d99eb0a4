"""An in-memory media engine that negotiates nothing: it keeps the ownership tree and
answers with placeholder SDP. It lets the rooms and signalling tests exercise the media
events without WebRTC; the real engines are ``embedded`` and ``janus``."""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.errors import MediaError
from parley.media.engine import EngineInfo, IceCandidate, MediaKind, MediaListener, Published


@dataclass
class _Room:
    streams: dict[str, set[str]] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)
    candidates: list[tuple[str, IceCandidate | None]] = field(default_factory=list)
    muted: dict[str, frozenset[MediaKind]] = field(default_factory=dict)


class FakeEngine:
    info = EngineInfo(name="fake", forwarding="none")

    def __init__(self) -> None:
        self.rooms: dict[str, _Room] = {}
        self.listener: MediaListener | None = None
        self.layers: dict[str, int] = {}
        self.shown: dict[str, bool] = {}
        self.closed = False

    def set_listener(self, listener: MediaListener) -> None:
        self.listener = listener

    async def start(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.rooms.clear()
        self.closed = True

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        if not offer_sdp.startswith("v=0"):
            raise MediaError("The offer is not an SDP session description.")
        kinds: list[MediaKind] = []
        for line in offer_sdp.splitlines():
            if line.startswith("m=audio") and "audio" not in kinds:
                kinds.append("audio")
            elif line.startswith("m=video") and "video" not in kinds:
                kinds.append("video")
        if not kinds:
            raise MediaError("The offer has no audio or video section.")
        self.rooms.setdefault(room_key, _Room()).streams[stream_id] = set()
        return Published(answer_sdp=f"v=0\r\ns=answer {stream_id}\r\n", kinds=tuple(kinds))

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        room = self.rooms.get(room_key)
        if room is None:
            return
        for sub_id in room.streams.pop(stream_id, set()):
            room.subscriptions.pop(sub_id, None)

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        room = self.rooms.get(room_key)
        if room is None or stream_id not in room.streams:
            raise MediaError("No such stream.")
        room.streams[stream_id].add(subscription_id)
        room.subscriptions[subscription_id] = stream_id
        return f"v=0\r\ns=offer {subscription_id}\r\n"

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        room = self.rooms.get(room_key)
        if room is None or subscription_id not in room.subscriptions:
            raise MediaError("No such subscription.")
        if not answer_sdp.startswith("v=0"):
            raise MediaError("The answer is not an SDP session description.")

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        room = self.rooms.get(room_key)
        if room is None:
            return
        stream_id = room.subscriptions.pop(subscription_id, None)
        if stream_id is not None:
            room.streams.get(stream_id, set()).discard(subscription_id)

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        room = self.rooms.get(room_key)
        if room is None or subscription_id not in room.subscriptions:
            raise MediaError("No such subscription.")
        self.layers[subscription_id] = layer

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        room = self.rooms.get(room_key)
        if room is None or subscription_id not in room.subscriptions:
            raise MediaError("No such subscription.")
        self.shown[subscription_id] = shown

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self.rooms.get(room_key)
        if room is None or (peer_id not in room.streams and peer_id not in room.subscriptions):
            raise MediaError("No such stream or subscription.")
        room.candidates.append((peer_id, candidate))

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        room = self.rooms.get(room_key)
        if room is None or stream_id not in room.streams:
            raise MediaError("No such stream.")
        room.muted[stream_id] = kinds

    async def close_room(self, room_key: str) -> None:
        self.rooms.pop(room_key, None)

    def stats(self) -> dict[str, int]:
        return {
            "rooms": len(self.rooms),
            "streams": sum(len(r.streams) for r in self.rooms.values()),
            "subscriptions": sum(len(r.subscriptions) for r in self.rooms.values()),
        }
