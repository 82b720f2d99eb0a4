"""Pacing a subscriber's video: the leaky bucket on a fake timeline (pure), and the send
queue that uses it, which gives each packet its transport-wide sequence number as it leaves."""

from __future__ import annotations

import asyncio

from parley.media.embedded.bwe import SendHistory
from parley.media.embedded.pacer import MIN_BURST_BYTES, PACE_FACTOR, Pacer
from parley.media.embedded.pump import ForwardingCounters, PacketPump
from parley.media.embedded.rtp_rewrite import write_packet

PACKET = 1200
KEYFRAME = 40  # packets of one keyframe arriving together (48 KB)


def drain(pacer: Pacer[int], start: float, step: float = 0.001) -> list[tuple[float, int]]:
    """Let the pacer send on a timeline of ``step`` ticks; (time, item) as each leaves."""
    sent: list[tuple[float, int]] = []
    now = start
    while len(pacer):
        while (item := pacer.pop(now)) is not None:
            sent.append((now, item))
        now += max(step, pacer.delay(now))
    return sent


def test_a_keyframe_burst_into_a_narrow_estimate_is_spread_over_time() -> None:
    pacer: Pacer[int] = Pacer(limit=256)
    estimate = 300_000
    pacer.set_estimate(estimate, 0.0)
    at_once = [i for i in range(KEYFRAME) if pacer.offer(i, PACKET, 0.0)]
    assert 1 <= len(at_once) <= MIN_BURST_BYTES // PACKET + 1
    sent = drain(pacer, 0.0)
    assert [item for _, item in sent] == list(range(len(at_once), KEYFRAME))
    took = sent[-1][0]
    expected = (KEYFRAME * PACKET - MIN_BURST_BYTES) * 8 / (estimate * PACE_FACTOR)
    assert expected * 0.9 <= took <= expected * 1.2
    # never more than the bucket's depth (plus one packet) inside any 10 ms
    for start, _ in sent:
        window = sum(PACKET for t, _ in sent if start <= t < start + 0.01)
        assert window <= MIN_BURST_BYTES + 2 * PACKET


def test_a_wide_estimate_lets_a_keyframe_through_in_a_short_time() -> None:
    pacer: Pacer[int] = Pacer(limit=256)
    pacer.set_estimate(2_500_000, 0.0)
    for i in range(KEYFRAME):
        pacer.offer(i, PACKET, 0.0)
    sent = drain(pacer, 0.0)
    assert sent[-1][0] < 0.1


def test_without_an_estimate_nothing_waits() -> None:
    pacer: Pacer[int] = Pacer(limit=4)
    assert all(pacer.offer(i, PACKET, 0.0) for i in range(100))
    assert len(pacer) == 0 and pacer.rate_bps == 0


def test_packets_within_the_pace_leave_at_once() -> None:
    pacer: Pacer[int] = Pacer(limit=256)
    pacer.set_estimate(1_000_000, 0.0)
    # 30 packets a second of 1200 bytes (288 kbit/s) under a 1 Mbit/s estimate
    assert all(pacer.offer(i, PACKET, i / 30) for i in range(300))


def test_a_full_queue_drops_its_oldest_packets_and_counts_them() -> None:
    pacer: Pacer[int] = Pacer(limit=8)
    pacer.set_estimate(100_000, 0.0)
    at_once = [i for i in range(50) if pacer.offer(i, PACKET, 0.0)]
    assert len(pacer) == 8
    assert pacer.dropped == 50 - len(at_once) - 8
    assert [item for _, item in drain(pacer, 0.0)] == list(range(42, 50))


def test_a_lower_estimate_slows_what_waits_and_none_resumes_at_once() -> None:
    pacer: Pacer[int] = Pacer(limit=256)
    pacer.set_estimate(1_000_000, 0.0)
    waiting = [i for i in range(20) if not pacer.offer(i, PACKET, 0.0)]
    pacer.set_estimate(100_000, 0.0)
    assert pacer.pop(0.0) is None
    assert pacer.delay(0.0) > 0.01
    pacer.set_estimate(None, 0.0)
    assert pacer.delay(0.0) == 0.0
    assert [pacer.pop(0.0) for _ in waiting] == waiting


def _rtp(seq: int, transport_cc_id: int) -> bytes:
    return write_packet(
        marker=False,
        payload_type=96,
        sequence_number=seq,
        timestamp=0,
        ssrc=1,
        payload=bytes(PACKET - 20),
        extensions=[(transport_cc_id, bytes(2))],
    )


async def test_video_is_paced_audio_is_not_and_transport_seqs_are_given_as_packets_leave() -> None:
    counters = ForwardingCounters()
    history = SendHistory()
    video_out: list[bytes] = []
    audio_out: list[bytes] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def send_video(data: bytes) -> bool:
        video_out.append(data)
        if len(video_out) == KEYFRAME:
            done.set()
        return True

    def send_audio(data: bytes) -> bool:
        audio_out.append(data)
        return True

    async def never(data: bytes) -> None:
        raise AssertionError("the immediate path sends")

    pacer: Pacer[tuple[bytes, int, int]] = Pacer(256)
    video = PacketPump("video", 256, counters, pacer, loop.time)
    audio = PacketPump("audio", 256, counters, None, loop.time)
    video.send_history = audio.send_history = history
    video.start(never, send_video)
    audio.start(never, send_audio)
    pacer.set_estimate(300_000, loop.time())
    started = loop.time()
    for i in range(KEYFRAME):
        video.push(_rtp(i, 3), 1, 17)  # offset of the extension's value: 12 + 4 + 1
    audio.push(_rtp(0, 3), 1, 17)
    assert len(audio_out) == 1  # audio went at once, behind a queue of video
    assert 0 < len(video_out) < KEYFRAME and counters.paced == KEYFRAME - len(video_out)
    async with asyncio.timeout(10):
        await done.wait()
    await video.close()
    await audio.close()
    # sequence numbers in the order packets left, each recorded at its own send time
    sent_seqs = [int.from_bytes(data[17:19], "big") for data in video_out]
    media_seqs = [int.from_bytes(data[2:4], "big") for data in video_out]
    assert media_seqs == list(range(KEYFRAME))
    audio_seq = int.from_bytes(audio_out[0][17:19], "big")
    assert sorted([*sent_seqs, audio_seq]) == list(range(KEYFRAME + 1))
    times = [record[0] for seq in sent_seqs if (record := history.get(seq)) is not None]
    assert times == sorted(times) and len(times) == KEYFRAME
    spread = (times[-1] - times[0]) / 1e6
    assert spread >= 0.8 * (KEYFRAME * PACKET - MIN_BURST_BYTES) * 8 / (300_000 * PACE_FACTOR)
    assert times[0] >= int(started * 1e6)
    assert counters.forwarded == KEYFRAME + 1
