"""The names Janus's VideoRoom gives its recordings, read back into stream and kind."""

from __future__ import annotations

from parley.media.janus.recording import RAW_NAME


def test_a_recording_name_gives_its_stream_and_kind() -> None:
    named = RAW_NAME.match("videoroom-3f9a-c0de-user-a1b2c3d4e5f60718-1765123456789012-video-0.mjr")
    assert named is not None
    assert (named["stream"], named["kind"], named["mindex"]) == ("a1b2c3d4e5f60718", "video", "0")
    audio = RAW_NAME.match("videoroom-r-user-s1-1765123456789012-audio-1.mjr")
    assert audio is not None and (audio["stream"], audio["kind"]) == ("s1", "audio")


def test_other_files_are_not_recordings() -> None:
    for name in ("tracks.json", "videoroom-r-user-s1-1-data-2.mjr", "x-video-0.webm"):
        assert RAW_NAME.match(name) is None
