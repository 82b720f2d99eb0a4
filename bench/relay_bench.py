"""Join-to-first-frame, direct vs through TURN, in one run, on the embedded SFU.

Parley's own coturn (``PARLEY_TURN=embedded``) on 127.0.0.1; for each round an aiortc
publisher and subscriber join (offer, answer, ICE, DTLS) and the time from the publisher's
offer to the subscriber's first decoded video frame is taken, once with host candidates
(direct UDP) and once with relay candidates only (TURN over UDP, then over TCP).

    scripts/loopback-only .venv/bin/python bench/relay_bench.py [rounds]
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection  # noqa: E402
from aiortc.rtcconfiguration import RTCIceTransportPolicy  # noqa: E402

from parley.media import embedded  # noqa: E402
from parley.media.engine import MediaEngine  # noqa: E402
from parley.settings import Settings  # noqa: E402
from parley.tokens import turn_credentials  # noqa: E402
from parley.turn.process import TurnProcess  # noqa: E402
from tests.support.peers import LOOPBACK, TestPublisher, TestSubscriber  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


async def join(engine: MediaEngine, room: str, config: RTCConfiguration | None) -> float:
    relay = config is not None
    publisher = TestPublisher(address="" if relay else LOOPBACK, configuration=config)
    subscriber = TestSubscriber(
        pc=RTCPeerConnection(config) if relay else RTCPeerConnection(RTCConfiguration([])),
        address="" if relay else LOOPBACK,
    )
    started = time.monotonic()
    try:
        published = await engine.publish(room, "cam", await publisher.offer())
        await publisher.accept(published.answer_sdp)
        offer = await engine.subscribe(room, "cam", "sub")
        await engine.accept_answer(room, "sub", await subscriber.answer(offer))
        frames = await subscriber.wait_for("video", 1, timeout=30)
        return frames[0].at - started
    finally:
        await publisher.close()
        await subscriber.close()
        await engine.close_room(room)


async def main(rounds: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="parley-relay-bench-"))
    settings = Settings(
        data_dir=data,
        media_addresses=[LOOPBACK],
        turn="embedded",
        turn_port=free_port(),
        turn_listen_addresses=[LOOPBACK],
        turn_allow_loopback=True,
    )
    turn = TurnProcess(settings)
    await turn.start()
    engine = embedded.create_engine(settings)
    await engine.start()
    username, credential = turn_credentials(turn.secret, "bench", int(time.time()) + 3600)

    def relay(transport: str) -> RTCConfiguration:
        url = f"turn:{LOOPBACK}:{settings.turn_port}?transport={transport}"
        return RTCConfiguration(
            iceServers=[RTCIceServer(url, username, credential)],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )

    results: dict[str, list[float]] = {"direct (UDP)": [], "TURN/UDP": [], "TURN/TCP": []}
    try:
        for index in range(rounds):
            for name, config in (
                ("direct (UDP)", None),
                ("TURN/UDP", relay("udp")),
                ("TURN/TCP", relay("tcp")),
            ):
                results[name].append(await join(engine, f"room-{index}-{name}", config))
    finally:
        await engine.close()
        await turn.close()
    print(f"join to first frame, embedded SFU, {rounds} rounds (ms):")
    print(f"{'path':<14}{'median':>8}{'min':>8}{'max':>8}")
    for name, times in results.items():
        ms = [t * 1000 for t in times]
        print(f"{name:<14}{statistics.median(ms):>8.0f}{min(ms):>8.0f}{max(ms):>8.0f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
