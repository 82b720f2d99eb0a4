"""The SDP and candidate checks every engine runs before its parser (``parley.media.sdp``)."""

from __future__ import annotations

import pytest

from parley.errors import MediaError
from parley.media.engine import IceCandidate
from parley.media.janus.videoroom import check_offer
from parley.media.sdp import announce, check_candidate, check_description, ignored_networks

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=setup:actpass\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:* ccm fir\r\n"
    "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=ssrc:1234 cname:x\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host generation 0\r\n"
)


def offer_with(old: str, new: str) -> str:
    assert old in OFFER
    return OFFER.replace(old, new)


def test_a_browser_shaped_offer_passes_with_crlf_line_endings() -> None:
    assert check_description(OFFER.replace("\r\n", "\n"), 1024, "offer") == OFFER


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        (None, "must be SDP text"),
        ("hello", "not SDP"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no audio or video"),
        ("v=0\r\n" + "a=x\r\n" * 1000, "The SDP is larger than 4096 bytes."),
        (offer_with("a=rtpmap:97 rtx/90000\r\n", ""), "payload type 97, which no earlier"),
        (offer_with("a=rtcp-fb:96 nack", "a=rtcp-fb:98 nack"), "payload type 98"),
        (offer_with("BUNDLE 0", "BUNDLE x 0"), "names mid 'x'"),
        (offer_with("a=fingerprint:sha-256", "a=fingerprint:sha-1"), "supported hash"),
        (offer_with("a=fingerprint:sha-256 AB", "a=x-not-fingerprint:AB"), "no DTLS fingerprint"),
        (offer_with("a=setup:actpass", "a=setup:holdconn"), "a=setup"),
        (offer_with("a=ice-pwd:abcdefghijklmnopqrstuv\r\n", ""), "no ICE credentials"),
        (offer_with("a=rtcp-mux\r\n", ""), "a=rtcp-mux"),
        (offer_with("m=video 9 ", "m=video 99999 "), "port above 65535"),
        (offer_with("96 97\r\n", "96 97 300\r\n"), "invalid payload type"),
        (offer_with("96 97\r\n", "96 97 74\r\n"), "invalid payload type"),
        (offer_with("a=ssrc:1234", "a=ssrc:-1"), "malformed line"),
        (offer_with("127.0.0.1 5000", "127.0.0.1 99999"), "malformed line"),
        (offer_with("c=IN IP4 0.0.0.0", "c=IN IP4 nowhere"), "malformed line"),
        (OFFER + "m=audio 0 RTP/AVP 0\r\na=mid:0\r\n", "one a=mid for two"),
        (OFFER + "a=candidate:1 1 udp 1 ::1 9 typ host\r\n" * 64, "more than 64 ICE"),
        (OFFER + "m=audio 0 RTP/AVP 0\r\n" * 8, "more than 8 media sections"),
        (offer_with("a=sendonly", "a=sendonly\x00"), "malformed line"),
    ],
)
def test_malformed_descriptions_are_refused_saying_what_is_wrong(sdp: object, message: str) -> None:
    with pytest.raises(MediaError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_description(sdp, 4096, "offer")


def test_an_answer_must_choose_a_dtls_role() -> None:
    answer = offer_with("a=setup:actpass", "a=setup:active")
    assert check_description(answer, 64 * 1024, "answer")
    with pytest.raises(MediaError, match="a=setup"):
        check_description(OFFER, 64 * 1024, "answer")


def test_candidates_are_checked_and_none_or_empty_ends_them() -> None:
    line = "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 5000"
    assert check_candidate(IceCandidate("a=" + line, "0", 0)) == IceCandidate(line, "0", 0)
    mdns = "candidate:1 1 udp 1 0f1e2d3c-aaaa-bbbb.local 5000 typ host"
    assert check_candidate(IceCandidate(mdns)) == IceCandidate(mdns)
    assert check_candidate(None) is None
    assert check_candidate(IceCandidate(" ")) is None
    for bad in [
        "candidate:garbage",
        "1 1 udp 1 127.0.0.1 9 typ host",
        "candidate:1 1 udp 1 127.0.0.1 70000 typ host",
        "candidate:1 1 udp -1 127.0.0.1 9 typ host",
        "candidate:1 1 sctp 1 127.0.0.1 9 typ host",
        "candidate:1 1 udp 1 example.org 9 typ host",
        "candidate:1 1 udp 1 127.0.0.1 9 typ nope",
        "candidate:1 1 udp 1 127.0.0.1 9 typ srflx raddr 10.0.0.1 rport x",
        "candidate:" + "1" * 600,
    ]:
        with pytest.raises(MediaError, match="ICE candidate"):
            check_candidate(IceCandidate(bad))
    with pytest.raises(MediaError, match="sdpMid"):
        check_candidate(IceCandidate(line, "x" * 100))
    with pytest.raises(MediaError, match="sdpMLineIndex"):
        check_candidate(IceCandidate(line, "0", -1))


def test_announced_address_replaces_local_host_candidates() -> None:
    sdp = (
        "v=0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.5\r\n"
        "a=candidate:1 1 udp 2130706431 10.0.0.5 5000 typ host\r\n"
        "a=candidate:2 1 udp 1694498815 198.51.100.1 5000 typ srflx raddr 10.0.0.5 rport 5000\r\n"
    )
    out = announce(sdp, "203.0.113.7", ("10.0.0.5",))
    assert "c=IN IP4 203.0.113.7" in out
    assert "a=candidate:1 1 udp 2130706431 203.0.113.7 5000 typ host" in out
    assert "198.51.100.1 5000 typ srflx" in out
    assert announce(sdp, None, ()) == sdp


def test_a_janus_publish_offer_loses_its_candidates_in_ignored_networks() -> None:
    offer = (
        OFFER
        + "a=candidate:1 1 udp 2130706431 127.0.0.3 4000 typ host\r\n"
        + "a=candidate:2 1 udp 2130706430 127.0.0.1 4001 typ host\r\n"
    )
    checked = check_offer(offer, 64 * 1024, ignored_networks(["127.0.0.3/32"]))
    assert "127.0.0.3" not in checked.sdp
    assert "127.0.0.1 4001" in checked.sdp
