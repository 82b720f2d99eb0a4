"""The recording service: a host (or the REST API) starts and stops a meeting's recording;
the engine captures its tracks; when it stops (a host, the meeting's end, a limit) a
background job composes one file of it. It also closes recordings a crash interrupted,
enforces the length and the quotas while one runs, and deletes old ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from parley.clock import Clock
from parley.errors import (
    FileNotFound,
    InvalidPayload,
    MediaError,
    NotInRoom,
    RecordingActive,
)
from parley.files.links import DownloadLinks
from parley.recording import manifest, rules
from parley.recording.capture import Capture, Settling
from parley.recording.composer import Composer
from parley.recording.models import Recording, RecordingStore, Status, StopReason
from parley.rooms.models import RoomRecord
from parley.rooms.presence import Presence
from parley.rooms.rules.access import host_in

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0
"""How often a running recording's length, quotas and streams are looked at."""


class RecordingNotFound(FileNotFound):
    """A recording id nobody knows (``FILE_NOT_FOUND``: a recording is a file)."""


@dataclass(frozen=True, kw_only=True)
class RecordingLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    max_recording_seconds: float
    max_room_upload_bytes: int
    max_total_upload_bytes: int
    recording_keep_days: float


class RecordingEvents(Protocol):
    """What the room is told (spelled by the signalling edge)."""

    async def recording_started(self, recording: Recording) -> None: ...

    async def recording_stopped(self, recording: Recording) -> None: ...

    async def recording_ready(self, recording: Recording, url: str) -> None: ...


class RecordingLog(Protocol):
    """What other applications are told (webhooks): ``recording_started``,
    ``recording_ready``, ``recording_failed``."""

    async def recording_event(
        self, event: str, room_uid: str, room_id: str, recording: dict[str, object]
    ) -> None: ...


class NoRecordingLog:
    async def recording_event(
        self, event: str, room_uid: str, room_id: str, recording: dict[str, object]
    ) -> None:
        return None


class RecordingService:
    def __init__(
        self,
        store: RecordingStore,
        presence: Presence,
        capture: Capture | None,
        composer: Composer,
        events: RecordingEvents,
        links: DownloadLinks,
        clock: Clock,
        limits: RecordingLimits,
        directory: Path,
        *,
        log_events: RecordingLog | None = None,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._presence = presence
        self._capture = capture
        self._composer = composer
        self._events = events
        self.links = links
        self._clock = clock
        self._limits = limits
        self.directory = directory
        self._log = log_events or NoRecordingLog()
        self._node = node
        self._running: dict[str, Recording] = {}
        """Recordings this node captures, by room key."""
        self._streams: dict[str, dict[str, tuple[str, str]]] = {}
        """By recording id: every stream seen in the room (id -> userId, source)."""
        self._tasks: set[asyncio.Task[None]] = set()

    # --- who may ---------------------------------------------------------------------------
    async def start(self, conn_id: str, room_id: str) -> Recording:
        room, host = host_in(await self._presence.room(room_id), conn_id)
        return await self.start_for(room.record, host.user_id)

    async def stop(self, conn_id: str, room_id: str) -> Recording:
        room, _ = host_in(await self._presence.room(room_id), conn_id)
        return await self.stop_for(room.record, "stopped")

    async def of_room(self, conn_id: str, room_id: str) -> list[Recording]:
        room, _ = host_in(await self._presence.room(room_id), conn_id)
        return await self._store.room_recordings(room.key)

    # --- starting and stopping -------------------------------------------------------------
    async def start_for(self, room: RoomRecord, by: str) -> Recording:
        """Start recording the live meeting ``room`` (``by``: a host's userId, or ``api``); an
        end-to-end encrypted meeting is refused (``E2EE_ACTIVE``)."""
        async with self._presence.hold(room.uid) as hold:
            live = hold.room
            if live is None:
                raise NotInRoom("The meeting is not running.")
            e2ee = live.record.settings.e2ee
            rules.check_start(await self._store.active_recording(room.uid), e2ee=e2ee)
            if self._capture is None:
                raise MediaError("This server's media engine cannot record.")
            recording = Recording(
                recording_id=secrets.token_hex(8),
                room_uid=room.uid,
                room_id=room.room_id,
                started_at=self._clock.now_ms(),
                started_by=by,
                node=self._node,
            )
            folder = self.folder(recording)
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            if not await self._store.add_recording(recording):
                raise RecordingActive("This meeting is already being recorded.")
            try:
                await self._capture.start_recording(room.uid, folder)
            except BaseException:
                await self._store.delete_recording(recording.recording_id)
                raise
            self._running[room.uid] = recording
            self._streams[recording.recording_id] = {
                s.stream_id: (s.user_id, s.source) for s in live.streams
            }
            manifest.write_streams(folder, self._streams[recording.recording_id])
        log.info("room %s: recording %s started by %s", room.room_id, recording.recording_id, by)
        await self._events.recording_started(recording)
        await self._log.recording_event(
            "recording_started", room.uid, room.room_id, self.describe(recording)
        )
        return recording

    async def stop_for(self, room: RoomRecord, reason: StopReason) -> Recording:
        """Stop the meeting's running recording (INVALID_PAYLOAD when none runs)."""
        active = rules.check_stop(await self._store.active_recording(room.uid))
        finished = await self._finish(active, reason)
        if finished is None:
            raise InvalidPayload("This meeting is not being recorded.")
        return finished

    async def _finish(
        self, active: Recording, reason: StopReason, *, interrupted: bool = False
    ) -> Recording | None:
        """Stop capturing, store it as processing, tell the room, compose in the background;
        None when another call finished it first. ``interrupted``: its capture died with this
        server, so it stopped when its files were last written."""
        running = self._running.get(active.room_uid)
        if running is not None and running.recording_id == active.recording_id:
            del self._running[active.room_uid]
        if self._capture is not None:
            await self._capture.stop_recording(active.room_uid)
        current = await self._store.get_recording(active.recording_id)
        if current is None or current.status != "recording":
            return None
        folder = self.folder(active)
        streams = self._streams.pop(active.recording_id, None)
        if streams is not None:
            manifest.write_streams(folder, streams)
        size = await asyncio.to_thread(manifest.folder_bytes, folder)
        now = self._clock.now_ms()
        if interrupted:
            now = await asyncio.to_thread(manifest.last_written_ms, folder, current.started_at)
        done = replace(rules.stopped(current, reason, now), size=size)
        await self._store.update_recording(done)
        log.info("room %s: recording %s stopped (%s)", done.room_id, done.recording_id, reason)
        await self._events.recording_stopped(done)
        self._spawn(self._compose(done))
        return done

    def room_gone(self, room_key: str) -> None:
        """The meeting ended: its recording stops with ``reason: "ended"``."""
        if room_key in self._running:
            self._spawn(self._ended(self._running[room_key]))

    async def _ended(self, recording: Recording) -> None:
        await self._finish(recording, "ended")

    # --- composing -------------------------------------------------------------------------
    async def _compose(self, recording: Recording) -> None:
        folder = self.folder(recording)
        output = self.directory / f"{recording.recording_id}.webm"
        try:
            if isinstance(self._capture, Settling):
                await self._capture.settle(folder)
            tracks = await asyncio.to_thread(manifest.read_tracks, folder)
            if not tracks:
                raise MediaError("nothing was captured")
            await self._composer.compose(
                tracks, recording.started_at, recording.duration_ms, folder, output
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("recording %s could not be composed: %s", recording.recording_id, error)
            failed = replace(recording, status="failed")
            await self._store.update_recording(failed)
            await self._log.recording_event(
                "recording_failed", failed.room_uid, failed.room_id, self.describe(failed)
            )
            return
        size = await asyncio.to_thread(manifest.folder_bytes, folder)
        size += (await asyncio.to_thread(output.stat)).st_size
        ready = replace(recording, status="ready", filename=output.name, size=size)
        await self._store.update_recording(ready)
        log.info("recording %s ready (%d bytes)", ready.recording_id, size)
        await self._events.recording_ready(ready, self.url(ready) or "")
        await self._log.recording_event(
            "recording_ready", ready.room_uid, ready.room_id, self.describe(ready)
        )

    # --- looking up ------------------------------------------------------------------------
    async def active(self, room_key: str) -> Recording | None:
        return await self._store.active_recording(room_key)

    async def running_by_room_id(self) -> dict[str, Recording]:
        """Every running recording, by its meeting's roomId."""
        return {r.room_id: r for r in await self._store.recordings_with_status("recording")}

    async def active_in(self, room_id: str) -> Recording | None:
        """The running recording of the live meeting ``room_id``."""
        live = await self._presence.room(room_id)
        return None if live is None else await self._store.active_recording(live.key)

    async def get(self, recording_id: str) -> Recording:
        found = await self._store.get_recording(recording_id)
        if found is None:
            raise RecordingNotFound("No such recording.")
        return found

    async def room_recordings(self, room_key: str) -> list[Recording]:
        return await self._store.room_recordings(room_key)

    async def delete(self, recording_id: str) -> None:
        recording = await self.get(recording_id)
        if recording.status == "recording":
            raise RecordingActive("Stop the recording before deleting it.")
        await self._remove(recording)

    async def _remove(self, recording: Recording) -> None:
        await self._store.delete_recording(recording.recording_id)
        await asyncio.to_thread(shutil.rmtree, self.folder(recording), True)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread((self.directory / f"{recording.recording_id}.webm").unlink)
        log.info("recording %s deleted", recording.recording_id)

    def folder(self, recording: Recording) -> Path:
        return self.directory / recording.recording_id

    def file(self, recording_id: str) -> Path | None:
        """The composed file of a ready recording's id (None for a malformed id)."""
        if not recording_id.isalnum() or len(recording_id) > 32:
            return None
        return self.directory / f"{recording_id}.webm"

    def url(self, recording: Recording) -> str | None:
        if recording.status != "ready":
            return None
        return self.links.url(recording.recording_id, "/download-recording/")

    def describe(self, r: Recording) -> dict[str, object]:
        """The wire spelling of ``r`` (docs/protocol.md, ``Recording``), with a fresh ``url``
        when it is ready."""
        wire: dict[str, object] = {
            "recordingId": r.recording_id,
            "roomId": r.room_id,
            "startedAt": r.started_at,
            "stoppedAt": r.stopped_at,
            "duration": r.duration_ms,
            "size": r.size,
            "status": r.status,
        }
        url = self.url(r)
        if url is not None:
            wire["url"] = url
        return wire

    # --- running ---------------------------------------------------------------------------
    async def recover(self) -> None:
        """At start: recordings this node was capturing when it stopped (a crash) are closed
        and composed from what was written; compositions cut short run again."""
        for recording in await self._store.recordings_with_status("recording"):
            if recording.node == self._node:
                log.warning("recording %s was interrupted", recording.recording_id)
                await self._finish(recording, "failed", interrupted=True)
        for recording in await self._store.recordings_with_status("processing"):
            if recording.node == self._node:
                self._spawn(self._compose(recording))

    async def node_gone(self, node: str) -> None:
        """Cluster mode: ``node`` died (this node alone is told, see ``NodeLeases``). Its
        running recordings end as interrupted (``reason: "failed"``) and are composed here, as
        are those it was composing; they are this node's from now on."""
        if node == self._node:  # this node's previous life: ``recover`` does it
            return
        statuses: tuple[Status, ...] = ("recording", "processing")
        for status in statuses:
            for recording in await self._store.recordings_with_status(status):
                if recording.node != node:
                    continue
                adopted = replace(recording, node=self._node)
                await self._store.update_recording(adopted)
                log.warning("recording %s: node %s died; taken over", recording.recording_id, node)
                if status == "recording":
                    await self._finish(adopted, "failed", interrupted=True)
                else:
                    self._spawn(self._compose(adopted))

    async def run(self) -> None:
        """Every second: stop recordings past their length or a quota, note the streams of
        recorded rooms; now and then delete recordings past ``recording_keep_days``."""
        next_sweep = 0.0
        while True:
            await self.check()
            if self._clock.monotonic() >= next_sweep:
                await self.sweep()
                next_sweep = self._clock.monotonic() + 3600
            await asyncio.sleep(CHECK_EVERY_SECONDS)

    async def check(self) -> None:
        """One look at every recording this node runs."""
        for room_key, recording in list(self._running.items()):
            try:
                await self._check(room_key, recording)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording %s: check failed", recording.recording_id)

    async def _check(self, room_key: str, recording: Recording) -> None:
        live = await self._presence.room_by_key(room_key)
        streams = self._streams.get(recording.recording_id)
        if live is not None and streams is not None:
            new = {s.stream_id: (s.user_id, s.source) for s in live.streams}
            if not new.keys() <= streams.keys():
                streams.update(new)
                manifest.write_streams(self.folder(recording), streams)
        size = await asyncio.to_thread(manifest.folder_bytes, self.folder(recording))
        room_files, all_files, _ = await self._store.file_usage(room_key)
        room_recs, all_recs = await self._store.recording_usage(room_key)
        usage = rules.Usage(room=room_files + room_recs + size, total=all_files + all_recs + size)
        limits = self._limits
        if rules.over_limit(
            recording,
            self._clock.now_ms(),
            usage,
            max_seconds=limits.max_recording_seconds,
            max_room_bytes=limits.max_room_upload_bytes,
            max_total_bytes=limits.max_total_upload_bytes,
        ):
            log.info("recording %s reached a limit", recording.recording_id)
            await self._finish(recording, "quota")

    async def sweep(self) -> None:
        """Delete recordings older than ``recording_keep_days``."""
        before = self._clock.now_ms() - int(self._limits.recording_keep_days * 86_400_000)
        for recording in await self._store.recordings_before(before):
            if recording.status != "recording":
                await self._remove(recording)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no background job (stopping, composing) runs: for tests and shutdown."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop capturing (the recordings stay ``recording``: the next start closes them) and
        cancel background jobs; idempotent."""
        if self._capture is not None:
            for room_key in list(self._running):
                await self._capture.stop_recording(room_key)
        self._running.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
