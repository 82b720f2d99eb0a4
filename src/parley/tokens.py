"""Participant tokens: signed, bound to one room lifetime and one user."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer


@dataclass(frozen=True)
class TokenClaims:
    room_key: str
    user_id: str


class TokenSigner:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="parley.participant")
        self._max_age = max_age_seconds

    def issue(self, room_key: str, user_id: str) -> str:
        return self._serializer.dumps({"r": room_key, "u": user_id})

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token; None for anything else."""
        if not isinstance(token, str) or len(token) > 512:
            return None
        try:
            data = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        room_key, user_id = data.get("r"), data.get("u")
        if not isinstance(room_key, str) or not isinstance(user_id, str):
            return None
        return TokenClaims(room_key, user_id)


def load_or_create_secret(path: Path) -> str:
    """The signing key kept in ``path``, made (and kept private) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), expected_hash)
