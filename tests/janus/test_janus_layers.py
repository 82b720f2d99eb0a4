"""What confirms a simulcast layer switch: Janus reporting the layer asked for, on every video
line of the subscription (no Janus needed)."""

from __future__ import annotations

import asyncio

from parley.media.janus.rooms import Signals


def report(signals: Signals, mid: str, layer: int) -> None:
    """What the engine does with a VideoRoom event that carries ``substream``."""
    signals.substreams[mid] = layer
    signals.reported.set()


async def test_only_a_report_of_the_layer_asked_for_confirms_the_switch() -> None:
    signals = Signals()
    switch = asyncio.create_task(signals.forwarding(0, ("0",)))
    # On the way down from layer 2, Janus reports layer 1 at the first lower keyframe.
    for layer in (2, 1):
        report(signals, "0", layer)
        await asyncio.sleep(0)  # let the waiter look at the report
        assert not switch.done()
    report(signals, "0", 0)
    await asyncio.wait_for(switch, 1.0)


async def test_every_video_line_must_report_the_layer() -> None:
    signals = Signals()
    switch = asyncio.create_task(signals.forwarding(1, ("0", "2")))
    report(signals, "0", 1)
    await asyncio.sleep(0)
    assert not switch.done()
    report(signals, "2", 1)
    await asyncio.wait_for(switch, 1.0)


async def test_a_subscription_without_video_lines_needs_no_report() -> None:
    await asyncio.wait_for(Signals().forwarding(2, ()), 1.0)
