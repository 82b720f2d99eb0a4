"""Transport-cc feedback as the SFU writes it for publishers and reads it from subscribers."""

from __future__ import annotations

import struct

import pytest

from parley.media.embedded.twcc import (
    ArrivalRecorder,
    PacketResult,
    build_feedback,
    parse_feedback,
    split_compound,
)


def test_feedback_round_trips_losses_small_large_and_negative_deltas() -> None:
    results = [
        PacketResult(65534, 1_000_000),
        PacketResult(65535, None),
        PacketResult(0, 1_000_250),
        PacketResult(1, 1_090_000),  # 89.75 ms later: a two-byte delta
        PacketResult(2, 1_085_000),  # arrived before the previous one: negative
        *[PacketResult(n, None) for n in range(3, 30)],  # a run: a run-length chunk
        PacketResult(30, 1_200_000),
    ]
    feedback = parse_feedback(build_feedback(1, 2, 9, results))
    assert feedback.media_ssrc == 2 and feedback.count == 9
    assert [r.sequence for r in feedback.results] == [r.sequence for r in results]
    base = feedback.results[0].arrival_us
    assert base is not None
    for got, sent in zip(feedback.results, results, strict=True):
        if sent.arrival_us is None:
            assert got.arrival_us is None
        else:
            assert got.arrival_us is not None
            assert got.arrival_us - base == sent.arrival_us - 1_000_000


def test_the_recorder_reports_each_sequence_number_once_across_the_wrap() -> None:
    recorder = ArrivalRecorder()
    for n, seq in enumerate([65533, 65535, 0, 1]):  # 65534 lost
        recorder.record(seq, 5_000_000 + 1000 * n)
    [packet] = recorder.feedback(7, 8)
    results = parse_feedback(packet).results
    assert [(r.sequence, r.arrival_us is not None) for r in results] == [
        (65533, True),
        (65534, False),
        (65535, True),
        (0, True),
        (1, True),
    ]
    recorder.record(65534, 5_010_000)  # too late: already reported as lost
    assert recorder.feedback(7, 8) == []
    recorder.record(2, 5_020_000)
    [packet] = recorder.feedback(7, 8)
    assert [r.sequence for r in parse_feedback(packet).results] == [2]
    assert parse_feedback(packet).count == 1


def test_a_long_silence_between_arrivals_splits_the_feedback() -> None:
    recorder = ArrivalRecorder()
    recorder.record(10, 0)
    recorder.record(11, 20_000_000)  # 20 s later: beyond a 16-bit delta
    packets = recorder.feedback(1, 2)
    assert [[r.sequence for r in parse_feedback(p).results] for p in packets] == [[10], [11]]


def test_hostile_feedback_is_refused() -> None:
    good = build_feedback(1, 2, 0, [PacketResult(5, 64_000)])
    with pytest.raises(ValueError):
        parse_feedback(good[:-4] + b"")
    with pytest.raises(ValueError):
        parse_feedback(good[:12])
    count_lies = bytearray(good)
    struct.pack_into("!H", count_lies, 14, 5000)  # more statuses than chunks
    with pytest.raises(ValueError):
        parse_feedback(bytes(count_lies))
    too_many = bytearray(good)
    struct.pack_into("!H", too_many, 14, 60000)
    with pytest.raises(ValueError, match="too many"):
        parse_feedback(bytes(too_many))
    assert split_compound(good + good[:6]) == [good]
