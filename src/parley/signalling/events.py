"""``RoomEvents`` over python-socketio: each domain fact becomes its Socket.IO event, sent to the
Socket.IO room named after the room's key (one per room lifetime)."""

from __future__ import annotations

import socketio

from parley import wire
from parley.chat.models import ChatMessage
from parley.files.links import DownloadLinks
from parley.media.engine import IceCandidate
from parley.rooms.models import Participant, RoomRecord, Stream


class SocketRoomEvents:
    def __init__(self, sio: socketio.AsyncServer, *, links: DownloadLinks) -> None:
        self._sio = sio
        self._links = links

    async def _to_room(
        self, room: RoomRecord, event: str, data: object, skip: str | None = None
    ) -> None:
        await self._sio.emit(event, data, room=room.uid, skip_sid=skip)

    async def connection_entered(self, conn_id: str, room: RoomRecord) -> None:
        await self._sio.enter_room(conn_id, room.uid)

    async def connection_left(self, conn_id: str, room: RoomRecord) -> None:
        await self._sio.leave_room(conn_id, room.uid)

    async def user_joined(self, room: RoomRecord, participant: Participant) -> None:
        data = {"userId": participant.user_id, "userName": participant.user_name}
        await self._to_room(room, "userJoined", data, skip=participant.conn_id)

    async def user_left(self, room: RoomRecord, participant: Participant) -> None:
        data = {"userId": participant.user_id, "userName": participant.user_name}
        await self._to_room(room, "userLeft", data)

    async def host_changed(self, room: RoomRecord, host: Participant) -> None:
        await self._to_room(room, "hostChanged", {"userId": host.user_id})

    async def meeting_ended(self, room: RoomRecord, by: Participant) -> None:
        data = {"roomId": room.room_id, "endedBy": by.user_id}
        await self._to_room(room, "meetingEnded", data)

    async def streaming_changed(self, room: RoomRecord, participant: Participant) -> None:
        event = "streamStarted" if participant.is_streaming else "streamStopped"
        await self._to_room(room, event, {"userId": participant.user_id}, participant.conn_id)

    async def screen_started(self, room: RoomRecord, sharer: Participant) -> None:
        await self._to_room(room, "screenStarted", {"userId": sharer.user_id}, sharer.conn_id)

    async def screen_stopped(self, room: RoomRecord, sharer: Participant) -> None:
        await self._to_room(room, "screenStopped", {"userId": sharer.user_id})

    async def stream_published(
        self, room: RoomRecord, stream: Stream, publisher: Participant
    ) -> None:
        await self._to_room(room, "streamPublished", wire.stream(stream), publisher.conn_id)

    async def stream_unpublished(
        self, room: RoomRecord, stream: Stream, publisher: Participant | None
    ) -> None:
        data = {"streamId": stream.stream_id, "userId": stream.user_id, "source": stream.source}
        skip = publisher.conn_id if publisher else None
        await self._to_room(room, "streamUnpublished", data, skip)

    async def media_reset(self, room: RoomRecord) -> None:
        await self._to_room(room, "mediaReset", {"roomId": room.room_id})

    async def candidate_found(
        self, owner: Participant, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        if owner.conn_id is not None:
            data = {"id": peer_id, "candidate": wire.candidate(candidate)}
            await self._sio.emit("iceCandidate", data, to=owner.conn_id)

    async def message_posted(self, room: RoomRecord, message: ChatMessage) -> None:
        await self._to_room(room, "message", wire.message(message, self._links))
