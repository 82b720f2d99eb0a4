"""Who is where right now: live rooms and the connection behind each participant.

Presence lives in memory and is rebuilt from connections after a restart; rooms themselves
are durable (``RoomStore``).
"""

from __future__ import annotations

from parley.errors import ErrorCode, Forbidden
from parley.rooms.models import LiveRoom, Participant


class Presence:
    def __init__(self) -> None:
        self.rooms: dict[str, LiveRoom] = {}
        self._by_key: dict[str, LiveRoom] = {}
        self._conns: dict[str, tuple[LiveRoom, str]] = {}

    def add_room(self, room: LiveRoom) -> None:
        self.rooms[room.room_id] = room
        self._by_key[room.key] = room

    def remove_room(self, room: LiveRoom) -> None:
        if self.rooms.get(room.room_id) is room:
            del self.rooms[room.room_id]
        self._by_key.pop(room.key, None)
        for conn_id in [c for c, (r, _) in self._conns.items() if r is room]:
            del self._conns[conn_id]

    def bind(self, conn_id: str, room: LiveRoom, participant: Participant) -> None:
        participant.conn_id = conn_id
        self._conns[conn_id] = (room, participant.user_id)

    def unbind(self, conn_id: str) -> tuple[LiveRoom, Participant] | None:
        found = self.of_conn(conn_id)
        self._conns.pop(conn_id, None)
        if found is not None and found[1].conn_id == conn_id:
            found[1].conn_id = None
        return found

    def of_conn(self, conn_id: str) -> tuple[LiveRoom, Participant] | None:
        entry = self._conns.get(conn_id)
        if entry is None:
            return None
        room, user_id = entry
        participant = room.participants.get(user_id)
        if participant is None or self.rooms.get(room.room_id) is not room:
            self._conns.pop(conn_id, None)
            return None
        return room, participant

    def member(self, conn_id: str, room_id: str) -> tuple[LiveRoom, Participant]:
        """The caller's room and participant, or NOT_IN_ROOM."""
        found = self.of_conn(conn_id)
        if found is None or found[0].room_id != room_id:
            raise Forbidden("You are not in this meeting.", ErrorCode.NOT_IN_ROOM)
        return found

    def host(self, conn_id: str, room_id: str) -> tuple[LiveRoom, Participant]:
        room, participant = self.member(conn_id, room_id)
        if not participant.is_host:
            raise Forbidden("Only a host can do that.")
        return room, participant

    def by_key(self, room_key: str) -> LiveRoom | None:
        return self._by_key.get(room_key)

    def participant_count(self) -> int:
        return sum(len(room.participants) for room in self.rooms.values())
