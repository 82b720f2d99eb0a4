"""Hostile SDP and candidates against each engine: a seeded mutator bends a real offer, a real
answer and real candidates the way an attacker would, and every request must end in ``ok`` or
``MediaError`` (MEDIA_ERROR on the wire, never INTERNAL). After the participant's streams and
subscriptions are gone, the engine holds nothing and the process's open files are back to
where they were.

The inputs that once crashed aiortc (see ``parley/media/embedded/aiortc_internals.py``) are
named cases beside the random ones.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import Awaitable, Callable

import psutil
import pytest

from parley.errors import MediaError
from parley.media.engine import IceCandidate, MediaEngine
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from tests.media.conftest import holds_no_peers
from tests.support.peers import ROOM, Peers
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media]

OFFERS = 400
"""Mutated offers tried per engine (each a ``publish``)."""
ANSWERS = 100
"""Mutated answers tried per engine (each a ``subscribe`` then a ``subscribeAnswer``)."""
CANDIDATES = 200
"""Mutated trickled candidates tried per engine."""
SEED = 13
ANSWER_WITHIN = 5.0
"""Seconds within which every request must be answered (a hostile SDP must not stall it)."""

NUMBERS = ["-1", "0", "65536", "4294967296", "99999999999999999999", "1e9", "", "٣"]
CODEC_NAMES = ["AV1", "xyz", "", "VP8/", "opus/0", "H264/90000/2"]
GARBAGE = [
    "x",
    "a=",
    "a=:",
    "a=fmtp:127 apt=96",
    "a=rtcp-fb:126 nack",
    "a=rtpmap:96 VP8",
    "a=rtpmap:300 VP8/90000",
    "a=group:BUNDLE nosuchmid 0",
    "a=group:BUNDLE",
    "a=mid:",
    "a=setup:holdconn",
    "a=fingerprint:sha-1 00:11",
    "a=fingerprint:md5 AB",
    "a=ice-ufrag:",
    "a=ice-pwd:\u00e9\u00e9",
    "a=ssrc:-1 cname:x",
    "a=ssrc-group:FID x y",
    "a=extmap:999 urn:x",
    "a=extmap:1/sendonly/x urn:x extra",
    "a=rtcp:-5 IN IP4 1.2.3.4",
    "a=sctp-port:x",
    "a=max-message-size:-1",
    "c=IN IP4 not.an.address",
    "c=IN IP7 1.2.3.4",
    "m=video 99999 UDP/TLS/RTP/SAVPF 96",
    "m=audio 9 UDP/TLS/RTP/SAVPF",
    "m=video 9 UDP/TLS/RTP/SAVPF 72 300 -1",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=text 9 RTP/AVP 0",
    "a=candidate:1 1 udp 1 1.2.3.4 99999 typ host",
    "a=candidate:1 1 udp 99999999999 ::1 9 typ relay raddr x rport y",
    "a=candidate:x",
    "a=end-of-candidates",
    "a=inactive",
    "a=recvonly",
    "a=simulcast:send h;m;l",
    "a=rid:h send",
    "a=rtcp-mux",
    "\u0000",
]
CANDIDATE_LINE = re.compile(r"^a=candidate:")


class Mutator:
    """Seeded attacker's edits of an SDP: lines dropped, duplicated, swapped or truncated,
    numbers made huge or negative, codecs renamed, garbage lines, floods of candidates."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def __call__(self, sdp: str) -> str:
        lines = sdp.rstrip("\r\n").split("\r\n")
        for _ in range(self.random.randint(1, 3)):
            lines = self.random.choice(self.edits)(self, lines)
        text = "\r\n".join(lines) + "\r\n"
        if self.random.random() < 0.1:
            text = text[: self.random.randrange(len(text) + 1)]
        return text

    def _index(self, lines: list[str]) -> int:
        return self.random.randrange(len(lines)) if lines else 0

    def drop(self, lines: list[str]) -> list[str]:
        i = self._index(lines)
        return lines[:i] + lines[i + 1 :]

    def drop_kind(self, lines: list[str]) -> list[str]:
        prefix = self.random.choice(
            ["a=rtpmap", "a=fingerprint", "a=setup", "a=ice-", "a=mid", "a=rtcp-mux", "m="]
        )
        return [line for line in lines if not line.startswith(prefix)]

    def duplicate(self, lines: list[str]) -> list[str]:
        i = self._index(lines)
        return lines[: i + 1] + lines[i:]

    def swap(self, lines: list[str]) -> list[str]:
        i, j = self._index(lines), self._index(lines)
        if lines:
            lines = list(lines)
            lines[i], lines[j] = lines[j], lines[i]
        return lines

    def number(self, lines: list[str]) -> list[str]:
        i = self._index(lines)
        if not lines:
            return lines
        spots = list(re.finditer(r"\d+", lines[i]))
        if not spots:
            return lines
        spot = self.random.choice(spots)
        line = lines[i][: spot.start()] + self.random.choice(NUMBERS) + lines[i][spot.end() :]
        return [*lines[:i], line, *lines[i + 1 :]]

    def rename_codec(self, lines: list[str]) -> list[str]:
        name = self.random.choice(CODEC_NAMES)
        return [
            re.sub(r"(?<=a=rtpmap:)(\d+) [^/]+", rf"\1 {name}", line)
            if self.random.random() < 0.5
            else line
            for line in lines
        ]

    def garbage(self, lines: list[str]) -> list[str]:
        i = self._index(lines)
        return [*lines[:i], self.random.choice(GARBAGE), *lines[i:]]

    def flood(self, lines: list[str]) -> list[str]:
        count = self.random.choice([65, 300])
        flood = [
            f"a=candidate:{n} 1 udp {2130706431 - n} 127.0.0.1 {1024 + n} typ host"
            for n in range(count)
        ]
        return lines + flood

    edits: tuple[Callable[[Mutator, list[str]], list[str]], ...] = (
        drop,
        drop,
        drop_kind,
        duplicate,
        swap,
        number,
        number,
        rename_codec,
        garbage,
        garbage,
        garbage,
        flood,
    )


def unmapped_fmtp(sdp: str) -> str:
    """aiortc 1.16.0: StopIteration from find_codec (an a=fmtp whose payload type is unmapped)."""
    return re.sub(r"(m=video [^\r\n]*)", r"\1 127", sdp, count=1).replace(
        "a=rtcp-mux\r\n", "a=rtcp-mux\r\na=fmtp:127 apt=96\r\n", 1
    )


def bundle_of_nothing(sdp: str) -> str:
    """aiortc 1.16.0: a BUNDLE naming a missing mid leaves transceivers with no transport."""
    return re.sub(r"a=group:BUNDLE ", "a=group:BUNDLE nosuchmid ", sdp, count=1)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Tally:
    """What the engine answered: counts per outcome, and any answer outside the contract."""

    def __init__(self) -> None:
        self.ok = 0
        self.media_error = 0
        self.wrong: list[tuple[str, str]] = []

    async def run(self, what: str, request: Callable[[], Awaitable[None]]) -> bool:
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                await request()
        except MediaError as error:
            assert error.message, what
            self.media_error += 1
            return False
        except Exception as exc:  # anything else would answer INTERNAL
            self.wrong.append((what, f"{type(exc).__name__}: {exc}"))
            return False
        self.ok += 1
        return True


async def test_hostile_offers_answers_and_candidates_get_ok_or_media_error_and_leave_nothing(
    engine: MediaEngine, peers: Peers, engine_name: str
) -> None:
    fds_before = open_fds()
    started = time.monotonic()
    mutate = Mutator(SEED)
    tally = Tally()

    template = peers.publisher()
    offer = await template.offer()
    await peers.publish("good")
    watcher = peers.subscriber()
    first_offer = await engine.subscribe(ROOM, "good", "watch")
    answer = await watcher.answer(first_offer)
    await engine.accept_answer(ROOM, "watch", answer)
    candidates = [line[2:] for line in offer.split("\r\n") if CANDIDATE_LINE.match(line)]
    # Janus opens a few files of its own on its first peer connections: its baseline is taken
    # with the two real peers up (and at the end they are gone too)
    janus_fds_before = _janus_fds(engine)

    streams: list[str] = []
    offers = [unmapped_fmtp(offer), bundle_of_nothing(offer)]
    offers += [mutate(offer) for _ in range(OFFERS)]
    for n, sdp in enumerate(offers):
        stream_id = f"hostile-{n}"

        async def publish(stream_id: str = stream_id, sdp: str = sdp) -> None:
            await engine.publish(ROOM, stream_id, sdp)

        if await tally.run(f"offer {n}:\n{sdp}", publish):
            streams.append(stream_id)

    subscriptions: list[str] = []
    answers = [unmapped_fmtp(answer), bundle_of_nothing(answer)]
    answers += [mutate(answer) for _ in range(ANSWERS)]
    for n, sdp in enumerate(answers):
        subscription_id = f"hostile-sub-{n}"
        await engine.subscribe(ROOM, "good", subscription_id)

        async def accept(subscription_id: str = subscription_id, sdp: str = sdp) -> None:
            await engine.accept_answer(ROOM, subscription_id, sdp)

        if await tally.run(f"answer {n}:\n{sdp}", accept):
            subscriptions.append(subscription_id)
        elif engine.stats()["subscriptions"] != 1 + len(subscriptions):
            tally.wrong.append((f"answer {n}:\n{sdp}", "a refused answer left its subscription"))

    for n in range(CANDIDATES):
        line = mutate(f"a={candidates[n % len(candidates)]}\r\n").split("\r\n")[0]
        candidate = IceCandidate(line, mutate.random.choice(["0", None, "x" * 100]), n % 10 - 1)

        async def trickle(candidate: IceCandidate = candidate) -> None:
            await engine.add_candidate(ROOM, "good", candidate)

        await tally.run(f"candidate {n}: {candidate}", trickle)

    assert tally.wrong == [], "\n\n".join(f"{what}\n-> {error}" for what, error in tally.wrong)
    assert tally.media_error > tally.ok  # the mutations mostly hit something

    # the participant leaves: their streams and subscriptions end
    for subscription_id in ["watch", *subscriptions]:
        await engine.unsubscribe(ROOM, subscription_id)
    for stream_id in ["good", *streams]:
        await engine.unpublish(ROOM, stream_id)
    stats = engine.stats()
    assert (stats["streams"], stats["subscriptions"], stats["peer_connections"]) == (0, 0, 0)
    await wait_until(lambda: holds_no_peers(engine), 10, "the media server to hold no peers")
    await peers.close()
    await wait_until(lambda: open_fds() <= fds_before, 10, f"open files back to {fds_before}")
    if janus_fds_before is not None:
        await wait_until(
            lambda: (_janus_fds(engine) or 0) <= janus_fds_before, 10, "Janus's open files"
        )
    print(
        f"{engine_name}: {len(offers)} offers, {len(answers)} answers, {CANDIDATES} candidates:"
        f" {tally.ok} ok, {tally.media_error} MEDIA_ERROR in {time.monotonic() - started:.1f} s"
    )


def _janus_fds(engine: MediaEngine) -> int | None:
    if isinstance(engine, JanusEngine) and isinstance(engine.provider, JanusProcess):
        pid = engine.provider.pid
        if pid is not None:
            return int(psutil.Process(pid).num_fds())
    return None
