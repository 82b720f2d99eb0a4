"""``RoomEvents`` over python-socketio: each domain fact becomes its Socket.IO event, sent to the
Socket.IO room named after the room's key (one per room lifetime), or to the connections the
fact names. A payload that carries the room's settings (``roomUpdated``, and ``admitted`` as
the ``joinRoom`` answer) also says whether the meeting is being recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import socketio

from parley import wire
from parley.chat.models import ChatMessage
from parley.files.links import DownloadLinks
from parley.media.engine import IceCandidate, LinkProbe
from parley.recording.models import Recording
from parley.rooms.models import (
    Departure,
    JoinedRoom,
    KeyMessage,
    LayerReason,
    LobbyOutcome,
    LobbyRequest,
    MediaKind,
    Participant,
    RoomRecord,
    Stream,
)
from parley.signalling import linkprobe

RecordingOf = Callable[[str], Awaitable[Recording | None]]
"""The running recording of the room with this key, or None."""


class SocketRoomEvents:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        links: DownloadLinks,
        recording_of: RecordingOf | None = None,
    ) -> None:
        self._sio = sio
        self._links = links
        self._recording_of = recording_of

    async def _recording(self, room: RoomRecord) -> dict[str, object] | None:
        """``recording`` as the room's payloads carry it: its running recording, or null."""
        if self._recording_of is None:
            return None
        return wire.recording(await self._recording_of(room.uid))

    async def _to_room(
        self, room: RoomRecord, event: str, data: object, skip: str | None = None
    ) -> None:
        await self._sio.emit(event, data, room=room.uid, skip_sid=skip)

    async def _to(self, conn_id: str | None, event: str, data: object) -> None:
        if conn_id is not None:
            await self._sio.emit(event, data, to=conn_id)

    async def connection_entered(self, conn_id: str, room: RoomRecord) -> None:
        await self._sio.enter_room(conn_id, room.uid)

    async def connection_left(self, conn_id: str, room: RoomRecord) -> None:
        await self._sio.leave_room(conn_id, room.uid)

    async def replaced(self, conn_id: str, room: RoomRecord) -> None:
        await self._to(conn_id, "replaced", {"roomId": room.room_id})

    # --- the room --------------------------------------------------------------------------
    async def room_updated(self, room: RoomRecord) -> None:
        data = {
            "roomId": room.room_id,
            "settings": wire.settings(room.settings),
            "recording": await self._recording(room),
        }
        await self._to_room(room, "roomUpdated", data)

    async def meeting_ended(self, room: RoomRecord, by: str) -> None:
        await self._to_room(room, "meetingEnded", {"roomId": room.room_id, "endedBy": by})

    # --- people ----------------------------------------------------------------------------
    async def user_joined(self, room: RoomRecord, participant: Participant) -> None:
        data = {"userId": participant.user_id, "userName": participant.user_name}
        await self._to_room(room, "userJoined", data, skip=participant.conn_id)

    async def user_left(self, room: RoomRecord, participant: Participant, why: Departure) -> None:
        data = {"userId": participant.user_id, "userName": participant.user_name, "reason": why}
        await self._to_room(room, "userLeft", data)

    async def user_updated(self, room: RoomRecord, participant: Participant) -> None:
        await self._to_room(room, "userUpdated", wire.user(participant))

    async def host_changed(self, room: RoomRecord, host: Participant) -> None:
        await self._to_room(room, "hostChanged", {"userId": host.user_id})

    async def streaming_changed(self, room: RoomRecord, participant: Participant) -> None:
        event = "streamStarted" if participant.is_streaming else "streamStopped"
        await self._to_room(room, event, {"userId": participant.user_id}, participant.conn_id)

    async def screen_started(self, room: RoomRecord, sharer: Participant) -> None:
        await self._to_room(room, "screenStarted", {"userId": sharer.user_id}, sharer.conn_id)

    async def screen_stopped(self, room: RoomRecord, sharer: Participant) -> None:
        await self._to_room(room, "screenStopped", {"userId": sharer.user_id})

    async def kicked(self, room: RoomRecord, participant: Participant, by: str) -> None:
        await self._to(participant.conn_id, "kicked", {"roomId": room.room_id, "by": by})

    async def muted(
        self, room: RoomRecord, participant: Participant, kind: MediaKind, by: str
    ) -> None:
        data = {"roomId": room.room_id, "kind": kind, "by": by}
        await self._to(participant.conn_id, "muted", data)

    async def reaction(
        self, room: RoomRecord, participant: Participant, emoji: str, at: int
    ) -> None:
        data = {"userId": participant.user_id, "emoji": emoji, "timestamp": at}
        await self._to_room(room, "reaction", data)

    # --- the lobby -------------------------------------------------------------------------
    async def lobby_request(
        self, room: RoomRecord, request: LobbyRequest, hosts: list[Participant]
    ) -> None:
        data = {"roomId": room.room_id, **wire.lobby_request(request)}
        del data["since"]
        for host in hosts:
            await self._to(host.conn_id, "lobbyRequest", data)

    async def lobby_resolved(
        self,
        room: RoomRecord,
        request: LobbyRequest,
        outcome: LobbyOutcome,
        hosts: list[Participant],
    ) -> None:
        data = {"roomId": room.room_id, "requestId": request.request_id, "outcome": outcome}
        for host in hosts:
            await self._to(host.conn_id, "lobbyResolved", data)

    async def admitted(self, request: LobbyRequest, joined: JoinedRoom) -> None:
        data = {**wire.joined(joined), "recording": await self._recording(joined.record)}
        await self._to(request.conn_id, "admitted", data)

    async def lobby_denied(self, room: RoomRecord, request: LobbyRequest) -> None:
        await self._to(request.conn_id, "lobbyDenied", {"roomId": room.room_id})

    # --- media -----------------------------------------------------------------------------
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
        data = {"id": peer_id, "candidate": wire.candidate(candidate)}
        await self._to(owner.conn_id, "iceCandidate", data)

    async def layer_changed(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        layer: int,
        reason: LayerReason,
    ) -> None:
        data = {
            "roomId": room.room_id,
            "subscriptionId": subscription_id,
            "layer": layer,
            "reason": reason,
        }
        await self._to(subscriber.conn_id, "layerChanged", data)

    async def video_paused(
        self, room: RoomRecord, subscriber: Participant, subscription_id: str, paused: bool
    ) -> None:
        data = {"roomId": room.room_id, "subscriptionId": subscription_id, "paused": paused}
        await self._to(subscriber.conn_id, "videoPaused", data)

    async def active_speaker(self, room: RoomRecord, speaker: Participant) -> None:
        await self._to_room(
            room, "activeSpeaker", {"roomId": room.room_id, "userId": speaker.user_id}
        )

    async def probe_link(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        kbps: float,
        seconds: float,
    ) -> LinkProbe | None:
        if subscriber.conn_id is None:
            return None
        return await linkprobe.probe(
            self._sio,
            subscriber.conn_id,
            room_id=room.room_id,
            subscription_id=subscription_id,
            kbps=kbps,
            seconds=seconds,
        )

    # --- chat ------------------------------------------------------------------------------
    async def message_posted(
        self, room: RoomRecord, message: ChatMessage, only: list[Participant] | None
    ) -> None:
        data = wire.message(message, self._links)
        if only is None:
            await self._to_room(room, "message", data)
            return
        for person in only:
            await self._to(person.conn_id, "message", data)

    # --- end-to-end encryption -------------------------------------------------------------
    async def e2ee_public_key(
        self,
        room: RoomRecord,
        sender: Participant,
        public_key: str,
        only: Participant | None,
    ) -> None:
        data = {"roomId": room.room_id, "userId": sender.user_id, "publicKey": public_key}
        if only is None:
            await self._to_room(room, "e2eePublicKey", data, skip=sender.conn_id)
        else:
            await self._to(only.conn_id, "e2eePublicKey", data)

    async def e2ee_key(
        self, room: RoomRecord, sender: Participant, recipient: Participant, message: KeyMessage
    ) -> None:
        data = {
            "roomId": room.room_id,
            "from": sender.user_id,
            "keyId": message.key_id,
            "payload": message.payload,
        }
        await self._to(recipient.conn_id, "e2eeKey", data)
