"""An identity provider for tests: signing keys of every accepted kind, and its JSON Web Key Set
served over real HTTPS on 127.0.0.1 (port 0) with a certificate of a private CA."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.types import Receive, Scope, Send

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
ALGORITHMS: dict[str, Any] = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    @classmethod
    def new(cls, kid: str, algorithm: str) -> SigningKey:
        private: PrivateKey
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        return cls(kid, algorithm, private)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (PyJWT writes it)."""
        found: dict[str, Any] = ALGORITHMS[self.algorithm].to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**found, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        """``claims`` signed, naming this key (or ``kid``) in the header."""
        headers = {"kid": kid or self.kid}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)


def join_claims(room: str, **more: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"room": room, "name": "Kim", "role": "participant", "iat": now, "exp": now + 300} | more


@dataclass(frozen=True)
class Ca:
    cert_pem: bytes
    server_cert: bytes
    server_key: bytes

    @classmethod
    def new(cls) -> Ca:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test identity CA")])
        now = datetime.datetime.now(datetime.UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return cls(
            ca.public_bytes(pem),
            leaf.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        )


@dataclass
class IdentityProvider:
    """Serves ``/jwks`` (the public half of ``keys``); counts the fetches."""

    keys: list[SigningKey]
    url: str = ""
    ca_file: Path = Path()
    fetches: int = 0
    _started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.fetches += 1
        body = json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()
        status = 200 if scope["path"] == "/jwks" else 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serve_identity_provider(
    keys: list[SigningKey], folder: Path
) -> AsyncIterator[IdentityProvider]:
    """The key set at ``provider.url`` over HTTPS, its CA's certificate in ``provider.ca_file``."""
    ca = Ca.new()
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "server.pem").write_bytes(ca.server_cert)
    (folder / "server.key").write_bytes(ca.server_key)
    provider = IdentityProvider(keys, ca_file=folder / "ca.pem")
    config = uvicorn.Config(
        provider,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(folder / "server.pem"),
        ssl_keyfile=str(folder / "server.key"),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        provider.url = f"https://127.0.0.1:{port}/jwks"
        yield provider
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
