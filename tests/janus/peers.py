"""aiortc peers for the Janus tests: the shared test peers (``tests/support/peers.py``) gathering
on the media address of the ``media_net`` veth, with the engine calls and counters these tests
use."""

from __future__ import annotations

from parley.media.engine import MediaEngine
from tests.support.media_net import MEDIA_ADDRESS
from tests.support.peers import TestPublisher, TestSubscriber
from tests.support.waiting import wait_until


class Publisher(TestPublisher):
    """A client that publishes one stream of generated audio (unless ``audio`` is false) and
    320x240 video."""

    def __init__(self, audio: bool = True) -> None:
        super().__init__(audio=audio, address=MEDIA_ADDRESS)

    async def publish(self, engine: MediaEngine, room_key: str, stream_id: str) -> None:
        published = await engine.publish(room_key, stream_id, await self.offer())
        assert set(published.kinds) == {t.kind for t in self.pc.getTransceivers()}
        await self.accept(published.answer_sdp)


class Subscriber(TestSubscriber):
    """A client that subscribes to one stream and decodes what it receives."""

    def __init__(self) -> None:
        super().__init__(address=MEDIA_ADDRESS)

    @property
    def video_widths(self) -> list[int]:
        return [frame.width for frame in self.of("video")]

    async def subscribe(
        self, engine: MediaEngine, room_key: str, stream_id: str, subscription_id: str
    ) -> None:
        offer = await engine.subscribe(room_key, stream_id, subscription_id)
        await engine.accept_answer(room_key, subscription_id, await self.answer(offer))

    async def wait_frames(self, video: int, audio: int, within: float = 20.0) -> None:
        """Return once at least ``video`` and ``audio`` frames were decoded."""
        await wait_until(
            lambda: len(self.of("video")) >= video and len(self.of("audio")) >= audio,
            within,
            f"{video} video and {audio} audio frames",
        )
