"""HTTPS in the box: ``PARLEY_TLS=self-signed`` serves TLS with a certificate made once and kept
across restarts, a given certificate/key pair is served as given, and ``parley doctor`` names a
missing certificate and an unreachable TURN server as the problems they are."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from parley import tls
from parley.settings import Settings
from tests.support.ports import free_udp_and_tcp_port
from tests.support.server import spawned


def served_certificate(url: str) -> bytes:
    """The DER certificate the server at ``url`` presents."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return der


def pem_to_der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_self_signed_https_is_served_and_kept_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cert = data / "tls" / "cert.pem"
    with spawned(data, {"PARLEY_TLS": "self-signed"}) as first:
        assert first.url.startswith("https://127.0.0.1:")
        answer = httpx.get(f"{first.url}/health", verify=ssl.create_default_context(cafile=cert))
        assert answer.status_code == 200
        served = served_certificate(first.url)
    assert served == pem_to_der(cert)
    assert stat.S_IMODE((data / "tls" / "key.pem").stat().st_mode) == 0o600
    names = tls.describe(cert).names
    assert {"localhost", "127.0.0.1", socket.gethostname().lower()} <= set(names)
    with spawned(data, {"PARLEY_TLS": "self-signed"}) as again:
        assert served_certificate(again.url) == served  # the same certificate, unchanged


def test_a_given_certificate_is_served_as_given(tmp_path: Path) -> None:
    made = Settings(data_dir=tmp_path / "elsewhere", tls="self-signed", host="127.0.0.1")
    files = tls.self_signed(made)
    data = tmp_path / "data"
    env = {"PARLEY_TLS_CERT": str(files.cert), "PARLEY_TLS_KEY": str(files.key)}
    with spawned(data, env) as server:
        assert served_certificate(server.url) == pem_to_der(files.cert)
    assert not (data / "tls").exists()  # nothing self-signed was made


def test_which_certificate_is_served() -> None:
    assert tls.resolve(Settings(host="127.0.0.1")) is None  # loopback: plain HTTP
    assert tls.resolve(Settings(host="0.0.0.0", tls="off")) is None
    with pytest.raises(tls.TlsError):
        tls.resolve(Settings(tls_cert=Path("/nonexistent/cert.pem"), tls_key=Path("/x")))


def test_listening_beyond_loopback_without_a_certificate_uses_the_self_signed_one(
    tmp_path: Path,
) -> None:
    files = tls.resolve(Settings(host="0.0.0.0", data_dir=tmp_path))
    assert files is not None and files.self_signed
    assert files.cert == tmp_path / "tls" / "cert.pem"


def doctor(env: dict[str, str], data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parley", "doctor", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **{k: v for k, v in env.items()}},
        timeout=60,
        check=False,
    )


def test_doctor_names_a_missing_certificate_and_an_unreachable_turn_server(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        silent = probe.getsockname()[1]  # nobody answers here once closed
    env = {
        "PYTHONPATH": ":".join(sys.path),
        "PARLEY_TLS_CERT": str(tmp_path / "missing.pem"),
        "PARLEY_TLS_KEY": str(tmp_path / "missing.key"),
        "PARLEY_MEDIA_ADDRESSES": "127.0.0.1",
        "PARLEY_TURN_SECRET": "s" * 40,
        "PARLEY_TURN_URLS": f"turn:127.0.0.1:{silent}?transport=udp",
    }
    result = doctor(env, tmp_path / "data")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"problem: the TLS certificate {tmp_path / 'missing.pem'} does not exist" in out
    assert f"problem: TURN 127.0.0.1:{silent} over UDP does not answer" in out
    assert "RTP port range" in out or "RTP ports" in out
    assert "the SFU announces 127.0.0.1" in out


def test_doctor_is_content_with_a_working_embedded_turn(tmp_path: Path) -> None:
    if shutil.which("turnserver") is None:
        pytest.skip("coturn is not installed (Debian package `coturn`)")
    data = tmp_path / "data"
    env = {
        "PARLEY_TURN": "embedded",
        "PARLEY_TURN_LISTEN_ADDRESSES": "127.0.0.1",
        "PARLEY_TURN_PORT": str(free_udp_and_tcp_port()),
        "PARLEY_TURN_ALLOW_LOOPBACK": "true",
        "PARLEY_MEDIA_ADDRESSES": "127.0.0.1",
        "PARLEY_RTP_PORT_MIN": "40000",
        "PARLEY_RTP_PORT_MAX": "40099",
    }
    with spawned(data, env):
        result = doctor({"PYTHONPATH": ":".join(sys.path), **env}, data)
    assert result.returncode == 0, result.stdout + result.stderr
    port = env["PARLEY_TURN_PORT"]
    for transport in ("UDP", "TCP"):
        assert (
            f"ok: TURN 127.0.0.1:{port} over {transport}: its relay reaches the SFU's address "
            "127.0.0.1" in result.stdout
        )
