"""The keys that verify join tokens: a shared secret (HS256), a PEM public key (RS256, ES256 or
EdDSA, by the key's type) and an identity provider's JSON Web Key Set.

The key set is fetched over HTTPS, parsed by PyJWT (``PyJWKSet``), cached for
``jwt_jwks_cache_seconds`` and fetched again when a token names a ``kid`` it does not hold, at
most once per ``jwt_jwks_refresh_seconds`` whatever tokens arrive. A failed fetch keeps the keys
held. ``problems`` names every join-token setting that cannot work: the server refuses to start
on any, and ``parley doctor`` lists them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from parley.clock import Clock
from parley.settings import Settings

log = logging.getLogger(__name__)

MIN_JWT_SECRET_BYTES = 32
"""The shortest ``jwt_secret`` accepted (HS256 wants a key as long as its hash)."""
ASYMMETRIC = frozenset({"RS256", "ES256", "EdDSA"})
"""The algorithms a public key (PEM or from the key set) may verify."""

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class UnusableSetting(ValueError):
    """A join-token setting that cannot work; the server refuses to start."""


def unescape_pem(text: str) -> str:
    """A PEM given on one line with literal ``\\n`` (as environment files often hold it)
    turned back into lines."""
    return text.replace("\\n", "\n") if "\n" not in text.strip() else text


def load_public_key(text: str) -> tuple[PublicKey, list[str]]:
    """The PEM public key in ``text`` and the one algorithm it verifies; ``ValueError`` for
    anything else."""
    key = load_pem_public_key(unescape_pem(text).strip().encode())
    if isinstance(key, rsa.RSAPublicKey):
        return key, ["RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, ["ES256"]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key, ["EdDSA"]
    raise ValueError(f"a {type(key).__name__} verifies none of RS256, ES256 (P-256), EdDSA")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def problems(settings: Settings) -> list[tuple[str, str]]:
    """Each join-token setting that cannot work, as (what is wrong, how to fix it)."""
    found: list[tuple[str, str]] = []
    secret, public_key, url = settings.jwt_secret, settings.jwt_public_key, settings.jwt_jwks_url
    if secret is not None and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        found.append(
            (
                f"PARLEY_JWT_SECRET is {len(secret.encode())} bytes long; HS256 needs at "
                f"least {MIN_JWT_SECRET_BYTES}",
                "use a longer random secret (`python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`) in Parley and in the application minting",
            )
        )
    if public_key is not None:
        try:
            load_public_key(public_key)
        except ValueError as error:
            found.append(
                (
                    f"PARLEY_JWT_PUBLIC_KEY is not a PEM public key Parley can use ({error})",
                    "set it to the issuer's public key, `-----BEGIN PUBLIC KEY-----` ... "
                    "(RSA, EC P-256 or Ed25519)",
                )
            )
        if secret is not None:
            found.append(
                (
                    "PARLEY_JWT_SECRET and PARLEY_JWT_PUBLIC_KEY are both set",
                    "keep one: the secret for HS256 tokens, or the public key for "
                    "RS256/ES256/EdDSA tokens",
                )
            )
    if url is not None:
        parts = urlsplit(url)
        plain_loopback = parts.scheme == "http" and _loopback(parts.hostname or "")
        if not (parts.scheme == "https" or plain_loopback) or not parts.hostname:
            found.append(
                (
                    f"PARLEY_JWT_JWKS_URL {url!r} is not an https:// URL",
                    "give the identity provider's key set over https:// (plain http only on "
                    "loopback)",
                )
            )
        if public_key is not None:
            found.append(
                (
                    "PARLEY_JWT_JWKS_URL and PARLEY_JWT_PUBLIC_KEY are both set",
                    "keep one: the key set holds the identity provider's public keys",
                )
            )
    ca_file = settings.jwt_jwks_ca_file
    if ca_file is not None and not ca_file.is_file():
        found.append(
            (
                f"PARLEY_JWT_JWKS_CA_FILE {str(ca_file)!r} does not exist",
                "point it at the PEM file of the CA that signed the key set's certificate",
            )
        )
    return found


def check(settings: Settings) -> None:
    """``UnusableSetting`` naming the first join-token setting that cannot work."""
    for what, fix in problems(settings):
        raise UnusableSetting(f"{what}: {fix}")


@dataclass(frozen=True)
class JwksLimits:
    cache_seconds: float
    refresh_seconds: float
    timeout_seconds: float
    max_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> JwksLimits:
        return cls(
            settings.jwt_jwks_cache_seconds,
            settings.jwt_jwks_refresh_seconds,
            settings.jwt_jwks_timeout_seconds,
            settings.jwt_jwks_max_bytes,
        )


class KeySetTooLarge(ValueError):
    pass


class JwksKeys:
    """An identity provider's keys by ``kid``, fetched on demand and cached."""

    def __init__(
        self, url: str, clock: Clock, limits: JwksLimits, ca_file: Path | None = None
    ) -> None:
        self.url = url
        self._clock = clock
        self._limits = limits
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetches attempted so far (for tests and metrics)."""

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``, fetching the set first when it is stale or lacks it (within
        the refresh limit); None when the identity provider has no such key."""
        fetched = self._fetched_at
        stale = fetched is None or self._clock.monotonic() - fetched >= self._limits.cache_seconds
        if stale or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            if self._tried_at is not None and now - self._tried_at < self._limits.refresh_seconds:
                return  # fetched (or tried) a moment ago: what it gave stands
            self._tried_at = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ssl.SSLError, OSError, ValueError, jwt.PyJWTError) as error:
                log.warning(
                    "jwks %s: fetch failed, keeping %d keys: %s: %s",
                    self.url,
                    len(self._keys),
                    type(error).__name__,
                    error,
                )
                return
            self._keys, self._fetched_at = keys, now
            log.info("jwks %s: %d keys (%s)", self.url, len(keys), ", ".join(sorted(keys)))

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        limit = self._limits.max_bytes
        async with (
            httpx.AsyncClient(
                verify=self._tls,
                timeout=self._limits.timeout_seconds,
                trust_env=False,
                follow_redirects=False,
            ) as client,
            asyncio.timeout(self._limits.timeout_seconds),
            client.stream("GET", self.url, headers={"Accept": "application/json"}) as answer,
        ):
            answer.raise_for_status()
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise KeySetTooLarge(f"the key set is over {limit} bytes")
        document: Any = json.loads(body)
        found = jwt.PyJWKSet.from_dict(document)
        return {
            key.key_id: key
            for key in found.keys
            if key.key_id is not None and key.algorithm_name in ASYMMETRIC
        }


def key_set(settings: Settings, clock: Clock) -> JwksKeys | None:
    """The identity provider's key set of ``settings`` (None without ``jwt_jwks_url``)."""
    if settings.jwt_jwks_url is None:
        return None
    limits = JwksLimits.of(settings)
    return JwksKeys(settings.jwt_jwks_url, clock, limits, settings.jwt_jwks_ca_file)
