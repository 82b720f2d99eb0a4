"""An identity provider's side of Parley's join tokens: publish the public half of a signing key
in a JSON Web Key Set, and sign a join token with its private half (EdDSA here; RS256 and ES256
work the same way). PyJWT and cryptography.

Run: IDP_KEY_FILE=signing-key.pem IDP_KID=2026-01 IDP_ISSUER=https://idp.example.org/ \
     PARLEY_AUDIENCE=parley ROOM_ID=weekly-sync python idp_token.py
It prints the key set to publish (``jwks {...}``) and a join token (``token ...``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jwt  # PyJWT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import OKPAlgorithm

KEY_FILE = Path(os.environ["IDP_KEY_FILE"])
KID = os.environ["IDP_KID"]
ISSUER = os.environ["IDP_ISSUER"]
AUDIENCE = os.environ["PARLEY_AUDIENCE"]
ROOM_ID = os.environ["ROOM_ID"]


def signing_key() -> Ed25519PrivateKey:
    key = load_pem_private_key(KEY_FILE.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey), "this example signs with an Ed25519 key"
    return key


def key_set(key: Ed25519PrivateKey) -> dict[str, object]:
    """What the provider serves at its JWKS URL (PARLEY_JWT_JWKS_URL): every key it may sign
    with, each named by its kid. Publish a new key here before signing with it."""
    public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "EdDSA"}]}


def join_token(key: Ed25519PrivateKey, name: str, user_id: str, host: bool) -> str:
    """A join token for one person: the claims Parley needs, plus aud and iss (checked when
    PARLEY_JWT_AUDIENCE and PARLEY_JWT_ISSUER are set); the kid tells Parley which key."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "room": ROOM_ID,
        "name": name,
        "role": "host" if host else "participant",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": KID})


if __name__ == "__main__":
    key = signing_key()
    print("jwks", json.dumps(key_set(key)))
    print("token", join_token(key, "Grace Hopper", "user-1906", host=True))
