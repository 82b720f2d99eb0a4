"""Join tokens written by an identity provider: keys from its JSON Web Key Set served over real
HTTPS (a private CA trusted through ``jwt_jwks_ca_file``), chosen by ``kid``, rotated without
downtime, fetched no more often than ``jwt_jwks_refresh_seconds`` whatever tokens arrive; ``aud``
and ``iss`` checked."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.fakes import FakeClock
from tests.support.identity_provider import (
    IdentityProvider,
    SigningKey,
    join_claims,
    serve_identity_provider,
)
from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUDIENCE = "parley"
ISSUER = "https://idp.example.org/"
REFRESH_SECONDS = 30.0
RSA = SigningKey.new("rsa-1", "RS256")
EC = SigningKey.new("ec-1", "ES256")
ED = SigningKey.new("ed-1", "EdDSA")
NEXT = SigningKey.new("ed-2", "EdDSA")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[IdentityProvider]:
    folder = tmp_path_factory.mktemp("idp")
    async with serve_identity_provider([RSA, EC, ED], folder) as running:
        yield running


CLOCK = FakeClock()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    provider: IdentityProvider, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("jwks"),
        media_engine="none",
        jwt_jwks_url=provider.url,
        jwt_jwks_ca_file=provider.ca_file,
        jwt_jwks_refresh_seconds=REFRESH_SECONDS,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    async with run_server(settings, clock=CLOCK) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def room(server: RunningServer) -> AsyncIterator[str]:
    host = await Client(server.url).connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Identity"})
    yield created["roomId"]
    await host.close()


def claims(room: str, **more: Any) -> dict[str, Any]:
    return join_claims(room, aud=AUDIENCE, iss=ISSUER) | more


async def joined(server: RunningServer, token: str, room: str) -> dict[str, Any]:
    client = await Client(server.url).connect()
    try:
        answer: dict[str, Any] = await client.call("joinRoom", {"roomId": room, "jwt": token})
        return answer
    finally:
        await client.close()


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=lambda key: key.algorithm)
async def test_tokens_signed_with_the_providers_keys_admit(
    server: RunningServer, room: str, key: SigningKey
) -> None:
    answer = await joined(server, key.sign(claims(room)), room)
    assert answer["ok"], answer


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": "https://evil.example.org/"},
        {"iss": None},
    ],
    ids=["other audience", "no audience", "other issuer", "no issuer"],
)
async def test_a_token_for_another_audience_or_issuer_is_refused(
    server: RunningServer, room: str, change: dict[str, Any]
) -> None:
    body = {k: v for k, v in (claims(room) | change).items() if v is not None}
    answer = await joined(server, RSA.sign(body), room)
    assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED", answer


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
    server: RunningServer, room: str
) -> None:
    impostor = SigningKey.new(RSA.kid, "RS256")
    answer = await joined(server, impostor.sign(claims(room)), room)
    assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED"


async def test_unknown_kids_cannot_make_parley_hammer_the_provider(
    server: RunningServer, provider: IdentityProvider, room: str
) -> None:
    await joined(server, RSA.sign(claims(room)), room)  # the set is held
    before = provider.fetches
    for _ in range(20):
        answer = await joined(server, RSA.sign(claims(room), kid=secrets.token_hex(8)), room)
        assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED"
    assert provider.fetches - before <= 1


async def test_keys_rotate_without_downtime(
    server: RunningServer, provider: IdentityProvider, room: str
) -> None:
    provider.keys = [ED, NEXT]  # the provider publishes its next key beside the current one
    CLOCK.advance(REFRESH_SECONDS)
    answer = await joined(server, NEXT.sign(claims(room)), room)  # unknown kid: fetched
    assert answer["ok"], answer
    answer = await joined(server, ED.sign(claims(room)), room)  # the old key still works
    assert answer["ok"], answer
    provider.keys = [NEXT]  # and is retired
    CLOCK.advance(REFRESH_SECONDS)
    answer = await joined(server, NEXT.sign(claims(room), kid="ed-3"), room)  # fetches again
    assert answer["ok"] is False
    answer = await joined(server, ED.sign(claims(room)), room)
    assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED"
    answer = await joined(server, NEXT.sign(claims(room)), room)
    assert answer["ok"], answer


async def test_the_key_set_is_fetched_again_once_its_cache_has_aged(
    server: RunningServer, provider: IdentityProvider, room: str
) -> None:
    key = provider.keys[0]
    assert (await joined(server, key.sign(claims(room)), room))["ok"]
    before = provider.fetches
    assert (await joined(server, key.sign(claims(room)), room))["ok"]
    assert provider.fetches == before  # held keys: no fetch
    CLOCK.advance(server.parley.settings.jwt_jwks_cache_seconds)
    assert (await joined(server, key.sign(claims(room)), room))["ok"]
    assert provider.fetches == before + 1
