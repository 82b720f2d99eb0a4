"""Participant tokens: signed, bound to one room lifetime and one user."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from parley.settings import MIN_SECRET_BYTES


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


class WeakSecret(ValueError):
    """A signing key too short to keep tokens unforgeable; the server refuses to start."""


def check_secret(secret: str, origin: str) -> str:
    """``secret`` when it is long enough; ``WeakSecret`` naming ``origin`` otherwise."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"{origin} holds a signing key of {len(secret.encode())} bytes; at least "
            f"{MIN_SECRET_BYTES} are needed. Delete the file to have Parley make a new one "
            "(current participants will have to rejoin), or set PARLEY_SECRET_KEY."
        )
    return secret


def load_or_create_secret(path: Path) -> str:
    """The signing key kept in ``path``, made on first use: written to a private temporary
    file, fsynced, then hard-linked into place (never over another key), so a crash never
    leaves a short or empty key. A key under ``MIN_SECRET_BYTES`` is refused (``WeakSecret``)."""
    if path.exists():
        return check_secret(path.read_text().strip(), str(path))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        # A hard link never replaces: when another process made the key meanwhile, use its.
        os.link(temporary, path)
    except FileExistsError:
        return check_secret(path.read_text().strip(), str(path))
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return secret


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), expected_hash)


def turn_credentials(secret: str, user_id: str, expires: int) -> tuple[str, str]:
    """TURN credentials in the TURN REST API scheme (coturn's ``use-auth-secret``): the
    username ``<expiry unix time>:<userId>``, the password base64(HMAC-SHA1(secret,
    username)). The TURN server checks them with the same secret and refuses them after
    ``expires``."""
    username = f"{expires}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
