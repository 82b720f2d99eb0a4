"""How fast a moderator's mute takes effect in the media plane, on both engines (not a test).

For each engine: one aiortc publisher (audio + video), one subscriber counting RTP packets as
they arrive. Each round asks the engine to mute the stream's audio and times, at the subscriber,
the last audio packet after the request ("stopped after"); then unmutes and times the first
audio packet back ("resumed after"). The yardstick printed beside them is the publisher's audio
packet interval (Opus, 20 ms): a mute can take effect no faster than the packets in flight.

Janus gathers on 127.0.0.2 on a veth, as in the test suite, so run it as root in a namespace:

    scripts/loopback-only .venv/bin/python bench/mute_bench.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.media import embedded, janus
from parley.media.engine import MediaEngine
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.media_net import MEDIA_ADDRESS, _make_veth, _veth_ready
from tests.support.peers import LOOPBACK, ROOM, Peers, TestSubscriber
from tests.support.waiting import wait_until


def quiet(subscriber: TestSubscriber, seconds: float) -> bool:
    arrivals = subscriber.packets_of("audio")
    return bool(arrivals) and time.monotonic() - arrivals[-1] >= seconds


async def measure(name: str, engine: MediaEngine, address: str, rounds: int) -> dict[str, float]:
    await engine.start()
    peers = Peers(engine, address, ROOM)
    stopped: list[float] = []
    resumed: list[float] = []
    try:
        await peers.publish("s1")
        subscriber = await peers.subscribe("sub-1", "s1")
        await subscriber.wait_for("audio", 20, 30)
        for _ in range(rounds):
            asked = time.monotonic()
            await engine.set_muted(ROOM, "s1", frozenset({"audio"}))
            await wait_until(lambda: quiet(subscriber, 0.5), 10, "the audio to stop")
            stopped.append(max(0.0, subscriber.packets_of("audio")[-1] - asked))
            count = len(subscriber.packets_of("audio"))
            asked = time.monotonic()
            await engine.set_muted(ROOM, "s1", frozenset())
            await wait_until(
                lambda n=count: len(subscriber.packets_of("audio")) > n,
                10,
                "the audio to come back",
                step=0.002,
            )
            resumed.append(subscriber.packets_of("audio")[count] - asked)
    finally:
        await peers.close()
        await engine.close()
    return {
        "stopped p50": statistics.median(stopped) * 1000,
        "stopped max": max(stopped) * 1000,
        "resumed p50": statistics.median(resumed) * 1000,
        "resumed max": max(resumed) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as data:
        base = Settings(data_dir=Path(data), media_addresses=[LOOPBACK], janus_url=None)
        results["embedded"] = await measure(
            "embedded", embedded.create_engine(base), LOOPBACK, rounds
        )
        janus_settings = base.model_copy(
            update={"media_engine": "janus", "media_addresses": [MEDIA_ADDRESS]}
        )
        if janus.janus_available(janus_config(janus_settings)):
            if not _veth_ready():
                _make_veth()
            results["janus"] = await measure(
                "janus", janus.create_engine(janus_config(janus_settings)), MEDIA_ADDRESS, rounds
            )
    print(f"mute latency over {rounds} rounds, ms (yardstick: Opus packet interval 20 ms)")
    columns = ("stopped p50", "stopped max", "resumed p50", "resumed max")
    print(f"{'engine':10} " + " ".join(f"{c:>12}" for c in columns))
    for name, figures in results.items():
        print(f"{name:10} " + " ".join(f"{figures[k]:12.1f}" for k in figures))


if __name__ == "__main__":
    asyncio.run(main())
