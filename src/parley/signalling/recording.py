"""Recording over Socket.IO: the host's events (``startRecording``, ``stopRecording``,
``getRecordings``), what the room is told (``recordingStarted``, ``recordingStopped``,
``recordingReady``), and ``recording`` in the ``joinRoom`` and ``updateRoom`` answers."""

from __future__ import annotations

from dataclasses import replace

import socketio

from parley import wire
from parley.recording.models import Recording
from parley.recording.service import RecordingService
from parley.signalling import payloads as p
from parley.signalling.dispatch import Handler, Route


class SocketRecordingEvents:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def recording_started(self, r: Recording) -> None:
        data = {
            "roomId": r.room_id,
            "recordingId": r.recording_id,
            "by": r.started_by,
            "startedAt": r.started_at,
        }
        await self._sio.emit("recordingStarted", data, room=r.room_uid)

    async def recording_stopped(self, r: Recording) -> None:
        data = {"roomId": r.room_id, "recordingId": r.recording_id, "reason": r.reason}
        await self._sio.emit("recordingStopped", data, room=r.room_uid)

    async def recording_ready(self, r: Recording, url: str) -> None:
        data = {
            "roomId": r.room_id,
            "recordingId": r.recording_id,
            "duration": r.duration_ms,
            "size": r.size,
            "url": url,
        }
        await self._sio.emit("recordingReady", data, room=r.room_uid)


class RecordingHandlers:
    def __init__(self, recordings: RecordingService) -> None:
        self._recordings = recordings

    async def start(self, sid: str, m: p.InRoom) -> object:
        recording = await self._recordings.start(sid, m.roomId)
        return {"recordingId": recording.recording_id}

    async def stop(self, sid: str, m: p.InRoom) -> object:
        recording = await self._recordings.stop(sid, m.roomId)
        return {"recordingId": recording.recording_id}

    async def recordings(self, sid: str, m: p.InRoom) -> object:
        found = await self._recordings.of_room(sid, m.roomId)
        return [self._recordings.describe(r) for r in found]

    def _joined(self, join: Handler) -> Handler:
        """``joinRoom`` whose answer (once in the room) also says whether it is recorded."""

        async def handler(sid: str, m: object) -> object:
            answer = await join(sid, m)
            if isinstance(answer, dict) and "userId" in answer and "token" in answer:
                found = None
                if isinstance(m, p.JoinRoom):
                    found = await self._recordings.active_in(m.roomId)
                answer["recording"] = wire.recording(found)
            return answer

        return handler

    def _updated(self, update: Handler) -> Handler:
        """``updateRoom`` whose answer, like every payload with the room's settings, also says
        whether it is recorded."""

        async def handler(sid: str, m: object) -> object:
            answer = await update(sid, m)
            if isinstance(answer, dict) and "settings" in answer and isinstance(m, p.UpdateRoom):
                answer["recording"] = wire.recording(await self._recordings.active_in(m.roomId))
            return answer

        return handler

    def _listed(self, rooms_list: Handler) -> Handler:
        """``getRoomsList`` whose rooms also say whether they are recorded (the pre-join page
        says so before anyone joins)."""

        async def handler(sid: str, m: object) -> object:
            answer = await rooms_list(sid, m)
            if isinstance(answer, list):
                running = await self._recordings.running_by_room_id()
                for room in answer:
                    if isinstance(room, dict):
                        room["recording"] = wire.recording(running.get(str(room.get("roomId"))))
            return answer

        return handler

    def routes(self, routes: list[Route]) -> list[Route]:
        """``routes`` with the recording events added, and ``joinRoom``, ``updateRoom`` and
        ``getRoomsList`` telling the recording."""
        wrap = {"joinRoom": self._joined, "updateRoom": self._updated, "getRoomsList": self._listed}
        joined = [
            replace(r, handler=wrap[r.event](r.handler)) if r.event in wrap else r for r in routes
        ]
        return [
            *joined,
            Route("startRecording", p.InRoom, self.start),
            Route("stopRecording", p.InRoom, self.stop),
            Route("getRecordings", p.InRoom, self.recordings, limited=True),
        ]
