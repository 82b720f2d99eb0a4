"""``RoomEvents``: the port through which the domain tells a room what happened.

One method per fact, in domain terms. The signalling edge implements it (it alone knows event
names and their JSON spelling); a cluster implementation can publish the same facts to every
node. Unless a method says otherwise, everyone whose connection hears the room is told.
"""

from __future__ import annotations

from typing import Protocol

from parley.chat.models import ChatMessage
from parley.media.engine import IceCandidate, LinkProbe
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


class RoomEvents(Protocol):
    # --- who hears the room ----------------------------------------------------------------
    async def connection_entered(self, conn_id: str, room: RoomRecord) -> None:
        """From now on ``conn_id`` hears this room's events."""

    async def connection_left(self, conn_id: str, room: RoomRecord) -> None:
        """From now on ``conn_id`` no longer hears this room's events."""

    async def replaced(self, conn_id: str, room: RoomRecord) -> None:
        """Only ``conn_id``, whose place another connection of the same person took (told
        before it stops hearing the room)."""

    # --- the room --------------------------------------------------------------------------
    async def room_updated(self, room: RoomRecord) -> None:
        """The room's settings changed."""

    async def meeting_ended(self, room: RoomRecord, by: str) -> None:
        """``by``: the userId of the host who ended it, or ``api``."""

    # --- people ----------------------------------------------------------------------------
    async def user_joined(self, room: RoomRecord, participant: Participant) -> None:
        """Everyone but the newcomer."""

    async def user_left(
        self, room: RoomRecord, participant: Participant, why: Departure
    ) -> None: ...

    async def user_updated(self, room: RoomRecord, participant: Participant) -> None:
        """A participant's flags or role changed."""

    async def host_changed(self, room: RoomRecord, host: Participant) -> None:
        """``host`` has just become a host."""

    async def streaming_changed(self, room: RoomRecord, participant: Participant) -> None:
        """``participant.is_streaming`` changed; everyone but that participant."""

    async def screen_started(self, room: RoomRecord, sharer: Participant) -> None:
        """Everyone but the sharer."""

    async def screen_stopped(self, room: RoomRecord, sharer: Participant) -> None: ...

    async def kicked(self, room: RoomRecord, participant: Participant, by: str) -> None:
        """Only the participant removed (``by``: the host's userId, or ``api``); the room
        learns it from ``user_left``."""

    async def muted(
        self, room: RoomRecord, participant: Participant, kind: MediaKind, by: str
    ) -> None:
        """Only the participant whose ``kind`` the server stopped forwarding."""

    async def reaction(
        self, room: RoomRecord, participant: Participant, emoji: str, at: int
    ) -> None: ...

    # --- the lobby -------------------------------------------------------------------------
    async def lobby_request(
        self, room: RoomRecord, request: LobbyRequest, hosts: list[Participant]
    ) -> None:
        """Only ``hosts``: someone waits to be let in."""

    async def lobby_resolved(
        self,
        room: RoomRecord,
        request: LobbyRequest,
        outcome: LobbyOutcome,
        hosts: list[Participant],
    ) -> None:
        """Only ``hosts``: a request was admitted, denied or cancelled."""

    async def admitted(self, request: LobbyRequest, joined: JoinedRoom) -> None:
        """Only the connection that waited: it is in the room now."""

    async def lobby_denied(self, room: RoomRecord, request: LobbyRequest) -> None:
        """Only the connection that waited: it will not be let in."""

    # --- media -----------------------------------------------------------------------------
    async def stream_published(
        self, room: RoomRecord, stream: Stream, publisher: Participant
    ) -> None:
        """Everyone but the publisher."""

    async def stream_unpublished(
        self, room: RoomRecord, stream: Stream, publisher: Participant | None
    ) -> None:
        """Everyone but the publisher (when still present)."""

    async def media_reset(self, room: RoomRecord) -> None:
        """The media engine lost every stream and subscription of the room."""

    async def candidate_found(
        self, owner: Participant, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        """Only the owner of the connection ``peer_id``: a server-side ICE candidate (None: no
        more candidates)."""

    async def layer_changed(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        layer: int,
        reason: LayerReason,
    ) -> None:
        """Only the subscriber: its subscription now receives simulcast ``layer``."""

    async def video_paused(
        self, room: RoomRecord, subscriber: Participant, subscription_id: str, paused: bool
    ) -> None:
        """Only the subscriber: the subscription's video stopped (or resumed) for lack of
        bandwidth."""

    async def active_speaker(self, room: RoomRecord, speaker: Participant) -> None:
        """``speaker`` is now the loudest sustained speaker of the room."""

    async def probe_link(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        kbps: float,
        seconds: float,
    ) -> LinkProbe | None:
        """Only the subscriber: padding at ``kbps`` for ``seconds``, each piece acknowledged
        as it arrives (None: its connection cannot be probed)."""

    # --- chat ------------------------------------------------------------------------------
    async def message_posted(
        self, room: RoomRecord, message: ChatMessage, only: list[Participant] | None
    ) -> None:
        """Everyone, or ``only`` those people (a private message: its sender and recipient)."""

    # --- end-to-end encryption -------------------------------------------------------------
    async def e2ee_public_key(
        self,
        room: RoomRecord,
        sender: Participant,
        public_key: str,
        only: Participant | None,
    ) -> None:
        """Everyone but ``sender``, or ``only`` that person: ``sender``'s public key."""

    async def e2ee_key(
        self, room: RoomRecord, sender: Participant, recipient: Participant, message: KeyMessage
    ) -> None:
        """Only ``recipient``: an opaque key message from ``sender``."""
