"""Recording in a cluster on the Janus pool: the Janus holding the room writes the tracks into
``PARLEY_FILES_DIR``; when the node running the recording dies (SIGKILL), the surviving node
ends it as interrupted (``reason: "failed"``) and composes it, and the file shows the camera
and plays its tone."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.clients import Client
from tests.support.cluster import Cluster
from tests.support.media_net import media_net
from tests.support.recording import TONE_HZ, Publisher, janus_seconds, middle_peak_hz
from tests.support.waiting import wait_until

from .test_media_pool import media_cluster

__all__ = ["media_cluster", "media_net"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media, pytest.mark.slow]


async def test_a_node_dies_while_recording_and_the_other_node_composes_it(
    media_cluster: Cluster, media_net: str
) -> None:
    node1, node2 = media_cluster.nodes["node1"], media_cluster.nodes["node2"]
    closing: list[Any] = []
    try:
        ada = await Client(node2.url).connect()  # the host, on the node that dies
        closing.append(ada)
        room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Recorded apart"})
        room_id = room["roomId"]
        bob = await Client(node1.url).connect()
        closing.append(bob)
        await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
        publisher = Publisher(media_net)
        closing.append(publisher)
        stream_id = await publisher.publish(ada, room_id)

        started = await ada.ok("startRecording", {"roomId": room_id})
        assert (await bob.next("recordingStarted", timeout=15))["by"] == room["userId"]
        recordings = media_cluster.base / "files" / "recordings"
        folder = recordings / started["recordingId"]
        await wait_until(lambda: janus_seconds(folder, stream_id, 2.0), 30, "two seconds recorded")

        node2.kill()
        stopped = await bob.next("recordingStopped", timeout=30)
        assert stopped["recordingId"] == started["recordingId"]
        assert stopped["reason"] == "failed"
        ready = await bob.next("recordingReady", timeout=120)
        assert ready["recordingId"] == started["recordingId"]
        assert ready["duration"] >= 2000

        composed = recordings / f"{started['recordingId']}.webm"
        _check_picture_and_tone(composed)
    finally:
        for thing in reversed(closing):
            with contextlib.suppress(Exception):
                await thing.close()
        if node2.process is None:
            media_cluster.start_node("node2")


def _check_picture_and_tone(composed: Path) -> None:
    with av.open(str(composed)) as container:
        frames = [f for f in container.decode(video=0)]
    picture = frames[len(frames) // 2].to_ndarray(format="rgb24")
    centre = picture[picture.shape[0] // 2, picture.shape[1] // 2]
    assert centre[0] > 180 and centre[1] < 80 and centre[2] < 80, centre
    assert abs(middle_peak_hz(composed) - TONE_HZ) < 10
