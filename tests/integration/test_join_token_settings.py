"""Join-token settings that cannot work stop the start and name the setting; ``parley doctor``
names each of them; a PEM public key given on one line with literal ``\\n`` works."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from parley.app import Parley
from parley.errors import Unauthorized
from parley.jwt_keys import UnusableSetting, problems
from parley.rooms.grants import JoinGrants
from parley.settings import Settings
from tests.support.identity_provider import SigningKey

ED = SigningKey.new("ed", "EdDSA")


def named(settings: Settings) -> list[str]:
    return [what for what, _fix in problems(settings)]


@pytest.mark.parametrize(
    ("given", "setting"),
    [
        ({"jwt_secret": "short"}, "PARLEY_JWT_SECRET is 5 bytes long"),
        ({"jwt_public_key": "not a key"}, "PARLEY_JWT_PUBLIC_KEY is not a PEM public key"),
        (
            {"jwt_secret": "s" * 40, "jwt_public_key": ED.public_pem()},
            "PARLEY_JWT_SECRET and PARLEY_JWT_PUBLIC_KEY are both set",
        ),
        ({"jwt_jwks_url": "http://idp.example.org/jwks"}, "is not an https:// URL"),
        ({"jwt_jwks_url": "ftp://127.0.0.1/jwks"}, "is not an https:// URL"),
    ],
)
def test_a_setting_that_cannot_work_stops_the_start_naming_it(
    tmp_path: Path, given: dict[str, Any], setting: str
) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", **given)
    assert any(setting in what for what in named(settings)), named(settings)
    with pytest.raises(UnusableSetting, match=setting.split(" ")[0]):
        Parley(settings, engine=None)


@pytest.mark.parametrize(
    "given",
    [
        {"jwt_secret": "s" * 32},
        {"jwt_public_key": ED.public_pem().replace("\n", "\\n")},
        {"jwt_jwks_url": "https://idp.example.org/jwks", "jwt_secret": "s" * 32},
        {"jwt_jwks_url": "http://127.0.0.1:9/jwks"},
        {"jwt_jwks_url": "http://localhost:9/jwks"},
    ],
    ids=["secret", "one-line PEM", "key set and secret", "loopback", "localhost"],
)
def test_settings_that_work_are_accepted(tmp_path: Path, given: dict[str, Any]) -> None:
    assert named(Settings(data_dir=tmp_path, **given)) == []


async def test_a_one_line_pem_verifies_eddsa_tokens() -> None:
    grants = JoinGrants(None, ED.public_pem().replace("\n", "\\n"), 0)
    now = int(time.time())
    token = ED.sign({"room": "r1", "name": "Kim", "role": "host", "exp": now + 60})
    grant = await grants.verify(token, "r1")
    assert grant.role == "host"
    hs = jwt.encode({"room": "r1", "name": "Kim", "role": "host", "exp": now + 60}, "x" * 40)
    with pytest.raises(Unauthorized, match="not accepted"):
        await grants.verify(hs, "r1")  # no algorithm the key is not for


def test_doctor_names_each_join_token_setting_that_cannot_work(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": ":".join(sys.path),
        "PARLEY_MEDIA_ENGINE": "none",
        "PARLEY_JWT_SECRET": "short",
        "PARLEY_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----",
        "PARLEY_JWT_JWKS_URL": "http://idp.example.org/jwks",
    }
    result = subprocess.run(
        [sys.executable, "-m", "parley", "doctor", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    for setting in (
        "problem: PARLEY_JWT_SECRET is 5 bytes long",
        "problem: PARLEY_JWT_PUBLIC_KEY is not a PEM public key",
        "problem: PARLEY_JWT_SECRET and PARLEY_JWT_PUBLIC_KEY are both set",
        "problem: PARLEY_JWT_JWKS_URL 'http://idp.example.org/jwks' is not an https:// URL",
        "problem: PARLEY_JWT_JWKS_URL and PARLEY_JWT_PUBLIC_KEY are both set",
    ):
        assert setting in result.stdout, result.stdout
