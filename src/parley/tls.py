"""HTTPS in the box: which certificate Parley serves, and the self-signed one it makes.

``resolve`` decides from the settings: a given ``tls_cert``/``tls_key`` pair is used as given;
``tls=self-signed`` (or ``auto`` while listening on a non-loopback address) uses a certificate
made once under ``<data_dir>/tls/`` with the ``cryptography`` library and kept across
restarts; ``tls=off`` (or ``auto`` on loopback) serves plain HTTP.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parley.settings import Settings

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 825
RENEW_BEFORE_DAYS = 30
"""A self-signed certificate this close to its end is replaced at start."""


class TlsError(Exception):
    """The TLS settings cannot be served (a missing file, a key without a certificate...)."""


@dataclass(frozen=True)
class TlsFiles:
    """The certificate and key Parley serves HTTPS with."""

    cert: Path
    key: Path
    self_signed: bool


@dataclass(frozen=True)
class CertificateInfo:
    names: list[str]
    not_after: datetime.datetime
    fingerprint: str
    self_signed: bool


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(settings: Settings) -> TlsFiles | None:
    """The files to serve HTTPS with, or None for plain HTTP."""
    if settings.tls == "off":
        return None
    if settings.tls_cert is not None or settings.tls_key is not None:
        if settings.tls_cert is None or settings.tls_key is None:
            raise TlsError("PARLEY_TLS_CERT and PARLEY_TLS_KEY must be set together")
        for path in (settings.tls_cert, settings.tls_key):
            if not path.is_file():
                raise TlsError(f"{path} does not exist or is not a file")
        try:
            load_certificate(settings.tls_cert)
        except ValueError as error:
            raise TlsError(f"{settings.tls_cert} is not a PEM certificate: {error}") from None
        return TlsFiles(settings.tls_cert, settings.tls_key, self_signed=False)
    if settings.tls == "auto" and is_loopback(settings.host):
        return None
    return self_signed(settings)


def wanted_names(settings: Settings) -> list[str]:
    """The names a self-signed certificate covers: this machine under every name a browser
    may use for it."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    with contextlib.suppress(OSError):
        names.append(socket.getfqdn())
    if settings.host not in ("0.0.0.0", "::", ""):
        names.append(settings.host)
    if settings.announced_address:
        names.append(settings.announced_address)
    if settings.turn_host:
        names.append(settings.turn_host)
    names += settings.media_addresses
    unique: list[str] = []
    for name in names:
        name = name.strip().lower().rstrip(".")
        if name and name not in unique:
            unique.append(name)
    return unique


def self_signed(settings: Settings) -> TlsFiles:
    """The self-signed certificate under ``<data_dir>/tls/``: the one kept there when it still
    covers every wanted name for 30 days or more, else a new one."""
    folder = settings.data_dir / "tls"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    names = wanted_names(settings)
    reason = _unusable(cert_path, key_path, names)
    if reason is not None:
        log.info("tls: making a self-signed certificate (%s)", reason)
        _make(cert_path, key_path, names)
    info = describe(cert_path)
    log.info(
        "tls: serving HTTPS with the self-signed certificate %s (SHA-256 %s); browsers will "
        "ask to trust it once",
        cert_path,
        info.fingerprint,
    )
    return TlsFiles(cert_path, key_path, self_signed=True)


def _unusable(cert_path: Path, key_path: Path, names: list[str]) -> str | None:
    if not cert_path.is_file() or not key_path.is_file():
        return "none kept yet"
    try:
        info = describe(cert_path)
    except ValueError:
        return "the kept one is unreadable"
    missing = [name for name in names if name not in info.names]
    if missing:
        return f"the kept one does not cover {', '.join(missing)}"
    left = info.not_after - datetime.datetime.now(datetime.UTC)
    if left < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return "the kept one expires soon"
    return None


def _make(cert_path: Path, key_path: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (0600) atomically: a private temporary file, then a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file; ``ValueError`` when there is none."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def describe(path: Path) -> CertificateInfo:
    """Names, end of validity and SHA-256 fingerprint of the certificate in ``path``."""
    cert = load_certificate(path)
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(value).lower() for value in alt.get_values_for_type(x509.DNSName)]
        names += [str(value) for value in alt.get_values_for_type(x509.IPAddress)]
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        names=names,
        not_after=cert.not_valid_after_utc,
        fingerprint=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        self_signed=cert.issuer == cert.subject,
    )
