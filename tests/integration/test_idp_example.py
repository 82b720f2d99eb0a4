"""docs/integration.md's identity-provider example, run for real: the key set it prints is served
over HTTPS (a private CA trusted through ``jwt_jwks_ca_file``) and the token it signs, with
``kid``, ``aud`` and ``iss``, admits a host to a meeting."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.identity_provider import SigningKey, serve_identity_provider
from tests.support.server import run_server

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "idp_token.py"


async def run_example(env: dict[str, str]) -> dict[str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return dict(line.split(" ", 1) for line in out.decode().splitlines())


async def test_the_identity_provider_example_admits_its_user(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {
        "IDP_KEY_FILE": str(key_file),
        "IDP_KID": "2026-01",
        "IDP_ISSUER": "https://idp.example.org/",
        "PARLEY_AUDIENCE": "parley",
        "ROOM_ID": "weekly-sync",
    }
    printed = await run_example(env)
    published = json.loads(printed["jwks"])["keys"]
    served = SigningKey("2026-01", "EdDSA", private)
    assert [served.jwk() | {"alg": "EdDSA"}] == published
    async with serve_identity_provider([served], tmp_path) as provider:
        settings = Settings(
            data_dir=tmp_path / "data",
            media_engine="none",
            jwt_jwks_url=provider.url,
            jwt_jwks_ca_file=provider.ca_file,
            jwt_issuer=env["IDP_ISSUER"],
            jwt_audience=env["PARLEY_AUDIENCE"],
        )
        async with run_server(settings) as server:
            owner = await Client(server.url).connect()
            await owner.ok(
                "createRoom",
                {"userName": "Ada", "roomName": "Weekly", "customRoomId": env["ROOM_ID"]},
            )
            guest = await Client(server.url).connect()
            joined = await guest.ok("joinRoom", {"roomId": env["ROOM_ID"], "jwt": printed["token"]})
            assert joined["isHost"] is True
            assert [u["userName"] for u in joined["users"]] == ["Ada", "Grace Hopper"]
            for client in (guest, owner):
                await client.close()


def test_the_guide_shows_the_example() -> None:
    guide = (EXAMPLE.parents[1] / "integration.md").read_text()
    assert "examples/idp_token.py" in guide
