"""Join grants: JSON Web Tokens another application mints to admit its people, with their name,
role and (optionally) a stable identity. Verified with PyJWT: HS256 with a shared secret,
RS256/ES256/EdDSA with the issuer's public key or with the key its ``kid`` names in an identity
provider's key set (``parley.jwt_keys``); ``aud`` and ``iss`` checked when configured."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from parley.errors import Forbidden, Unauthorized
from parley.jwt_keys import ASYMMETRIC, JwksKeys, PublicKey, load_public_key
from parley.text import clean_text

Role = Literal["host", "participant"]
MAX_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class Grant:
    room_id: str
    name: str
    role: Role
    subject: str | None

    @property
    def user_id(self) -> str | None:
        """The same userId on every join of the same ``sub`` (hashed into the id alphabet)."""
        if self.subject is None:
            return None
        return "sub-" + hashlib.sha256(self.subject.encode()).hexdigest()[:24]


class JoinGrants:
    """PyJWT checks ``exp`` and ``nbf`` against the system clock (it takes no other)."""

    def __init__(
        self,
        secret: str | None,
        public_key: str | None,
        leeway_seconds: float,
        audience: str | None = None,
        issuer: str | None = None,
        jwks: JwksKeys | None = None,
    ) -> None:
        self._secret = secret
        self._public_key = load_public_key(public_key) if public_key is not None else None
        self._leeway = min(leeway_seconds, MAX_LEEWAY_SECONDS)
        self._audience, self._issuer, self._jwks = audience, issuer, jwks
        self._required = ["exp", "room", "name", "role"]
        self._required += ["aud"] * (audience is not None) + ["iss"] * (issuer is not None)

    @property
    def enabled(self) -> bool:
        return self._secret is not None or self._public_key is not None or self._jwks is not None

    async def verify(self, token: str, room_id: str) -> Grant:
        """The grant ``token`` carries for ``room_id``; UNAUTHORIZED for a bad signature, an
        expired or not yet valid token, another room, a missing ``exp`` or missing claims, an
        ``aud`` or ``iss`` other than the configured ones."""
        key, algorithms = await self._verifying_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                leeway=self._leeway,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": self._required},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"The join token is not valid: {error}"[:200]) from None
        name, role, sub = claims["name"], claims["role"], claims.get("sub")
        if claims["room"] != room_id:
            raise Unauthorized("The join token is for another meeting.")
        if not isinstance(name, str):
            raise Unauthorized("The join token's name must be a string.")
        try:
            name = clean_text(name)  # the rules of a userName: trimmed, NFC, no controls
        except ValueError as error:
            raise Unauthorized(f"The join token's name: {error}.") from None
        if not 1 <= len(name) <= 64:
            raise Unauthorized("The join token's name must be 1 to 64 characters.")
        if role not in ("host", "participant"):
            raise Unauthorized('The join token\'s role must be "host" or "participant".')
        if sub is not None and not isinstance(sub, str):
            raise Unauthorized("The join token's sub must be a string.")
        return Grant(room_id, name, role, sub)

    async def _verifying_key(self, token: str) -> tuple[str | PublicKey, list[str]]:
        """The key and algorithm a token is checked with, chosen by its header's ``alg`` (and
        ``kid``, with a key set): never an algorithm the key is not for."""
        if not self.enabled:
            raise Unauthorized("This server does not accept join tokens.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"The join token is not valid: {error}"[:200]) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm == "HS256" and self._secret is not None:
            return self._secret, ["HS256"]
        if algorithm in ASYMMETRIC and self._jwks is not None and isinstance(kid, str):
            found = await self._jwks.key(kid[:256])
            if found is None:
                raise Unauthorized("The join token's key (kid) is not in the key set.")
            return found.key, [found.algorithm_name]
        if algorithm in ASYMMETRIC and self._public_key is not None:
            return self._public_key
        raise Unauthorized(f"The join token's algorithm {str(algorithm)[:16]!r} is not accepted.")

    def mint(
        self, room_id: str, name: str, role: Role, ttl_seconds: int, subject: str | None = None
    ) -> str:
        """A join token signed with the shared secret (the REST API's ``POST /tokens``)."""
        if self._secret is None:
            raise Forbidden("Minting join tokens needs PARLEY_JWT_SECRET.")
        now = int(time.time())
        claims: dict[str, object] = {
            "room": room_id,
            "name": name,
            "role": role,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if subject is not None:
            claims["sub"] = subject
        return jwt.encode(claims, self._secret, algorithm="HS256")
