"""One handler per client event: call one service method, spell its answer for the wire
(``parley.wire``). Rules live in the services; this is only the wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from parley import wire
from parley.chat.service import ChatService
from parley.files.links import DownloadLinks
from parley.media.engine import IceCandidate
from parley.rooms.controls import Controls, SettingsChange
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaService
from parley.rooms.models import Waiting
from parley.rooms.service import RoomsService
from parley.signalling import payloads as p
from parley.signalling.dispatch import ANSWER_OVERHEAD, Route, encoded_size, newest_that_fit

AddressOf = Callable[[str], Awaitable[str]]
Emit = Callable[[str, str, object], Awaitable[None]]


class Handlers:
    def __init__(
        self,
        rooms: RoomsService,
        chat: ChatService,
        media: MediaService,
        controls: Controls,
        lobby: Lobby,
        address_of: AddressOf,
        emit: Emit,
        max_answer_bytes: int = 1_000_000,
        *,
        links: DownloadLinks,
    ) -> None:
        self._links = links
        self._max_answer_bytes = max_answer_bytes
        self._rooms = rooms
        self._chat = chat
        self._media = media
        self._controls = controls
        self._lobby = lobby
        self._address_of = address_of
        self._emit = emit

    async def create_room(self, sid: str, m: p.CreateRoom) -> object:
        address = await self._address_of(sid)
        created = await self._rooms.create_room(
            sid, address, m.userName, m.roomName, m.customRoomId, m.listed, m.e2ee
        )
        await self._emit("roomCreated", sid, wire.room_created(created))
        return wire.created(created)

    async def join_room(self, sid: str, m: p.JoinRoom) -> object:
        joined = await self._rooms.join_room(
            sid,
            m.roomId,
            m.userName or "",
            m.hostKey,
            m.resumeToken,
            m.password,
            await self._address_of(sid),
            m.jwt,
        )
        return wire.waiting(joined) if isinstance(joined, Waiting) else wire.joined(joined)

    async def leave_room(self, sid: str, m: p.RoomAction) -> object:
        await self._rooms.leave_room(sid, m.roomId)
        return {}

    async def end_meeting(self, sid: str, m: p.RoomAction) -> object:
        await self._rooms.end_meeting(sid, m.roomId)
        return {}

    async def rooms_list(self, sid: str, _m: None) -> object:
        return [wire.room(r) for r in await self._rooms.list_rooms()]

    async def users(self, sid: str, m: p.InRoom) -> object:
        return [wire.user(u) for u in await self._rooms.users(sid, m.roomId)]

    async def message(self, sid: str, m: p.SendMessage) -> object:
        filename = m.file.filename if m.file else None
        stored = await self._chat.send(
            sid,
            await self._address_of(sid),
            m.roomId,
            m.message,
            filename,
            m.timestamp,
            m.clientMessageId,
            m.to,
        )
        return {"id": stored.id, "timestamp": stored.timestamp}

    async def history(self, sid: str, m: p.GetChatHistory) -> object:
        """The page, shrunk to the newest messages that fit in one answer."""
        found = await self._chat.history(sid, m.roomId, m.before, m.limit)
        messages = [wire.message(x, self._links) for x in found]
        budget = self._max_answer_bytes - ANSWER_OVERHEAD - encoded_size({"ok": True, "data": []})
        return newest_that_fit(messages, budget)

    # --- meeting controls -------------------------------------------------------------------
    async def update_room(self, sid: str, m: p.UpdateRoom) -> object:
        change = SettingsChange(
            locked=m.locked,
            lobby=m.lobby,
            password=m.password,
            remove_password="password" in m.model_fields_set and m.password is None,
            self_unmute=m.selfUnmute,
            private_chat=m.privateChat,
            listed=m.listed,
        )
        address = await self._address_of(sid)
        settings = await self._controls.update_room(sid, m.roomId, change, address=address)
        return {"settings": wire.settings(settings)}

    async def admit(self, sid: str, m: p.LobbyDecision) -> object:
        await self._lobby.admit(sid, m.roomId, m.requestId)
        return {}

    async def deny(self, sid: str, m: p.LobbyDecision) -> object:
        await self._lobby.deny(sid, m.roomId, m.requestId)
        return {}

    async def kick(self, sid: str, m: p.Kick) -> object:
        await self._controls.kick(sid, m.roomId, m.userId)
        return {}

    async def set_role(self, sid: str, m: p.SetRole) -> object:
        await self._controls.set_role(sid, m.roomId, m.userId, m.role == "host")
        return {}

    async def mute(self, sid: str, m: p.Mute) -> object:
        await self._controls.mute(sid, m.roomId, m.userId, m.kind)
        return {}

    async def unmute(self, sid: str, m: p.Mute) -> object:
        await self._controls.unmute(sid, m.roomId, m.userId, m.kind)
        return {}

    async def mute_all(self, sid: str, m: p.MuteAll) -> object:
        await self._controls.mute_all(sid, m.roomId, m.kind)
        return {}

    async def raise_hand(self, sid: str, m: p.RaiseHand) -> object:
        await self._controls.raise_hand(sid, m.roomId, m.raised, m.userId)
        return {}

    async def react(self, sid: str, m: p.React) -> object:
        await self._controls.react(sid, m.roomId, m.emoji)
        return {}

    # --- presence flags and media ------------------------------------------------------------
    async def start_stream(self, sid: str, m: p.InRoom) -> object:
        await self._rooms.set_streaming(sid, m.roomId, True)
        return {}

    async def stop_stream(self, sid: str, m: p.InRoom) -> object:
        await self._rooms.set_streaming(sid, m.roomId, False)
        return {}

    async def start_screen(self, sid: str, m: p.InRoom) -> object:
        await self._media.set_screen(sid, m.roomId, True)
        return {}

    async def stop_screen(self, sid: str, m: p.InRoom) -> object:
        await self._media.set_screen(sid, m.roomId, False)
        return {}

    async def publish(self, sid: str, m: p.Publish) -> object:
        published = await self._media.publish(sid, m.roomId, m.source, m.sdp)
        return {"streamId": published.stream.stream_id, "sdp": published.answer_sdp}

    async def unpublish(self, sid: str, m: p.Unpublish) -> object:
        await self._media.unpublish(sid, m.roomId, m.streamId)
        return {}

    async def subscribe(self, sid: str, m: p.Subscribe) -> object:
        offered = await self._media.subscribe(sid, m.roomId, m.streamId)
        return {"subscriptionId": offered.subscription.subscription_id, "sdp": offered.offer_sdp}

    async def subscribe_answer(self, sid: str, m: p.SubscribeAnswer) -> object:
        await self._media.answer(sid, m.roomId, m.subscriptionId, m.sdp)
        return {}

    async def select_layer(self, sid: str, m: p.SelectLayer) -> object:
        await self._media.select_layer(sid, m.roomId, m.subscriptionId, m.layer)
        return {}

    async def show_video(self, sid: str, m: p.ShowVideo) -> object:
        await self._media.show_video(sid, m.roomId, m.subscriptionId, m.shown)
        return {}

    async def unsubscribe(self, sid: str, m: p.Unsubscribe) -> object:
        await self._media.unsubscribe(sid, m.roomId, m.subscriptionId)
        return {}

    async def ice_candidate(self, sid: str, m: p.IceCandidateEvent) -> object:
        c = m.candidate
        candidate = (
            None
            if c is None or not c.candidate
            else IceCandidate(c.candidate, c.sdpMid, c.sdpMLineIndex)
        )
        await self._media.candidate(sid, m.roomId, m.id, candidate)
        return {}

    def routes(self) -> list[Route]:
        return [
            Route("createRoom", p.CreateRoom, self.create_room),
            Route("joinRoom", p.JoinRoom, self.join_room),
            Route("leaveRoom", p.RoomAction, self.leave_room),
            Route("endMeeting", p.RoomAction, self.end_meeting),
            Route("getRoomsList", None, self.rooms_list, reply_event="roomsList", limited=True),
            Route("getUsers", p.InRoom, self.users, reply_event="getUsers", limited=True),
            Route("message", p.SendMessage, self.message),
            Route(
                "getChatHistory",
                p.GetChatHistory,
                self.history,
                reply_event="chatHistory",
                limited=True,
            ),
            Route("startStream", p.InRoom, self.start_stream),
            Route("stopStream", p.InRoom, self.stop_stream),
            Route("startScreen", p.InRoom, self.start_screen),
            Route("stopScreen", p.InRoom, self.stop_screen),
            Route("publish", p.Publish, self.publish),
            Route("unpublish", p.Unpublish, self.unpublish),
            Route("subscribe", p.Subscribe, self.subscribe),
            Route("subscribeAnswer", p.SubscribeAnswer, self.subscribe_answer),
            Route("unsubscribe", p.Unsubscribe, self.unsubscribe),
            Route("selectLayer", p.SelectLayer, self.select_layer),
            Route("showVideo", p.ShowVideo, self.show_video),
            Route("iceCandidate", p.IceCandidateEvent, self.ice_candidate),
            Route("updateRoom", p.UpdateRoom, self.update_room),
            Route("admit", p.LobbyDecision, self.admit),
            Route("deny", p.LobbyDecision, self.deny),
            Route("kick", p.Kick, self.kick),
            Route("setRole", p.SetRole, self.set_role),
            Route("mute", p.Mute, self.mute),
            Route("unmute", p.Mute, self.unmute),
            Route("muteAll", p.MuteAll, self.mute_all),
            Route("raiseHand", p.RaiseHand, self.raise_hand),
            Route("react", p.React, self.react),
        ]
