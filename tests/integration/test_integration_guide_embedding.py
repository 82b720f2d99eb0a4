"""docs/integration.md's webhook and embedding examples: the webhook receiver of
``examples/webhooks.py`` run against a real server (every event verified, the departure's
reason and the tracks told), its ``retry-parked`` over the REST API, and the guide showing
the worked embedding page (run in Chromium by ``tests/browser/test_embed.py``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Clients
from tests.support.server import run_server

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
API_KEY = "a" * 40
WEBHOOK_SECRET = "w" * 40
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)


@pytest.mark.asyncio
async def test_the_webhook_receiver_example_hears_a_meeting(tmp_path: Path) -> None:
    env = {**os.environ, "PARLEY_WEBHOOK_SECRET": WEBHOOK_SECRET}
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "webhooks.py"), "serve", "0",
        env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert receiver.stdout is not None
    try:
        url = (await asyncio.wait_for(receiver.stdout.readline(), 30)).decode().split()[-1]
        settings = Settings(
            data_dir=tmp_path,
            media_engine="none",
            api_key=API_KEY,
            webhook_urls=[url],
            webhook_secret=WEBHOOK_SECRET,
        )
        async with run_server(settings, FakeEngine()) as server, Clients() as clients:
            ada = await clients.connect(server.url)
            made = {"userName": "Ada", "roomName": "Guide", "customRoomId": "guide"}
            await ada.ok("createRoom", made)
            stream = await ada.ok("publish", {"roomId": "guide", "source": "camera", "sdp": OFFER})
            await ada.ok("unpublish", {"roomId": "guide", "streamId": stream["streamId"]})
            await ada.ok("leaveRoom", {"roomId": "guide"})
            lines = []
            while not lines or not lines[-1].startswith("participant_left"):
                line = await asyncio.wait_for(receiver.stdout.readline(), 30)
                lines.append(line.decode().strip())
            assert lines == [
                "room_started guide",
                "participant_joined guide Ada",
                "track_published guide Ada camera:audio+video",
                "track_unpublished guide Ada camera:audio+video",
                "participant_left guide Ada left",
            ]
            retry = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / "webhooks.py"), "retry-parked",
                env={**os.environ, "PARLEY_URL": server.url, "PARLEY_API_KEY": API_KEY},
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(retry.communicate(), 60)
            assert retry.returncode == 0 and out.decode().splitlines() == ["retried 0"]
    finally:
        receiver.kill()
        await receiver.wait()


def test_the_guide_shows_the_embedding_and_webhook_examples() -> None:
    guide = (EXAMPLES.parent / "integration.md").read_text()
    for example in ("embed.html", "webhooks.py"):
        assert f"examples/{example}" in guide
    assert "/embed.js" in guide and "PARLEY_FRAME_ANCESTORS" in guide
