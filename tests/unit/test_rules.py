"""Small rules that need no server: text cleaning, rate buckets, tokens, headers."""

from __future__ import annotations

import pytest

from parley.errors import NotFound, RoomNotFound
from parley.http.manners import retry_after
from parley.http.routes import content_disposition
from parley.ratelimit import KeyedLimiter, TokenBucket
from parley.text import clean_text
from parley.tokens import TokenSigner, hash_secret, secret_matches


def test_text_is_trimmed_and_nfc_normalised() -> None:
    assert clean_text("  e\u0301te\u0301  ") == "\u00e9t\u00e9"


@pytest.mark.parametrize("bad", ["a\x00", "\x1b[31m", "a\u202eb", "\u2066x", "\x7f"])
def test_control_and_bidi_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        clean_text(bad)


def test_messages_keep_newlines_and_tabs_but_names_do_not() -> None:
    assert clean_text("a\n\tb", multiline=True) == "a\n\tb"
    with pytest.raises(ValueError):
        clean_text("a\nb")


def test_emoji_and_joiners_are_fine() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_text(family) == family


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False
    assert bucket.take(0.5) is True
    assert bucket.take(10.0) and bucket.take(10.0) and bucket.take(10.0)
    assert bucket.take(10.0) is False


def test_a_bucket_says_how_long_until_it_lets_one_more_through() -> None:
    bucket = TokenBucket(rate=0.2, burst=1)
    assert bucket.wait(0.0) == 0.0
    assert bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.wait(0.0) == pytest.approx(5.0)
    assert bucket.wait(2.0) == pytest.approx(3.0)
    assert bucket.wait(5.0) == 0.0 and bucket.take(5.0)
    bucket.tokens = -1.0  # what a shared bucket other nodes spent looks like
    assert bucket.wait(5.0) == pytest.approx(10.0)


def test_a_keyed_limiter_says_the_wait_of_its_key() -> None:
    limiter = KeyedLimiter("test.limit", rate=4.0, burst=1)
    assert limiter.wait("a", 0.0) == 0.0
    assert limiter.allow("a", 0.0) and not limiter.allow("a", 0.1)
    assert limiter.wait("a", 0.1) == pytest.approx(0.15)
    assert limiter.wait("b", 0.1) == 0.0


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "1"), (0.15, "1"), (1.0, "1"), (4.2, "5")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    seconds: float, header: str
) -> None:
    assert retry_after(seconds) == header


def test_a_keyed_limiter_keeps_keys_apart() -> None:
    limiter = KeyedLimiter("test.limit", rate=1.0, burst=1)
    assert limiter.allow("a", 0.0) and limiter.allow("b", 0.0)
    assert not limiter.allow("a", 0.0)


def test_a_keyed_limiter_forgets_full_buckets_when_it_has_too_many() -> None:
    limiter = KeyedLimiter("test.limit", rate=1.0, burst=1, max_keys=2)
    limiter.allow("a", 0.0)
    limiter.allow("b", 0.0)
    assert limiter.allow("c", 10.0)
    assert limiter.allow("a", 10.0)


def test_tokens_round_trip_and_reject_tampering() -> None:
    signer = TokenSigner("k" * 32, max_age_seconds=60)
    token = signer.issue("room-key", "user-1")
    claims = signer.verify(token)
    assert claims is not None and (claims.room_key, claims.user_id) == ("room-key", "user-1")
    assert signer.verify(token[:-2] + "xx") is None
    assert TokenSigner("other" * 8, 60).verify(token) is None
    assert signer.verify("") is None and signer.verify("x" * 600) is None


def test_host_keys_are_compared_by_hash() -> None:
    assert secret_matches("abc", hash_secret("abc"))
    assert not secret_matches("abd", hash_secret("abc"))


def test_content_disposition_carries_the_exact_name_and_a_safe_fallback() -> None:
    header = content_disposition('réport "final".pdf')
    assert header.startswith('attachment; filename="r_port _final_.pdf"')
    assert header.endswith("filename*=UTF-8''r%C3%A9port%20%22final%22.pdf")


def test_an_error_kind_is_never_raised_without_its_own_code() -> None:
    with pytest.raises(TypeError):
        NotFound("a kind, not an error")
    error = RoomNotFound("gone")
    assert (error.code, error.http_status) == ("ROOM_NOT_FOUND", 404)
    assert isinstance(error, NotFound)
