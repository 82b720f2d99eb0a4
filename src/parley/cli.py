"""``parley serve``: every option is also a ``PARLEY_*`` environment variable."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import sys
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from pydantic import ValidationError

from parley import __version__, doctor, tls
from parley.app import create_app
from parley.errors import MediaError
from parley.jwt_keys import UnusableSetting
from parley.settings import Settings
from parley.signalling.uvicorn_internals import FrameWebSocketProtocol, header_timeout_protocol
from parley.tokens import WeakSecret
from parley.turn.process import TurnError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Self-hosted video meetings.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve meetings over HTTP and Socket.IO")
    serve.add_argument("--host", help="listen address (PARLEY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any (PARLEY_PORT, default 8080)")
    serve.add_argument("--data-dir", type=Path, help="data folder (PARLEY_DATA_DIR, ./data)")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="PARLEY_LOG_LEVEL, default info",
    )
    serve.add_argument("--database-url", help="PARLEY_DATABASE_URL, default SQLite in data dir")
    serve.add_argument(
        "--media-engine",
        choices=["embedded", "janus", "auto", "none"],
        help="PARLEY_MEDIA_ENGINE, default embedded",
    )
    check = commands.add_parser(
        "doctor",
        help="check a deployment (certificate, addresses, ports, TURN) and say what to fix",
    )
    check.add_argument("--data-dir", type=Path, help="data folder (PARLEY_DATA_DIR, ./data)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        key: value for key, value in vars(args).items() if key != "command" and value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise SystemExit(f"parley: invalid setting: {error}") from None
    if args.command == "doctor":
        report = asyncio.run(doctor.run(settings))
        print(report.render(), flush=True)
        raise SystemExit(1 if report.problems else 0)
    # Everything Parley writes (database, uploads, key, Janus' configuration) is private.
    os.umask(0o077)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    raise_open_files_limit(settings.fd_reserve)
    try:
        uvloop.run(serve(settings))
    except (WeakSecret, UnusableSetting, tls.TlsError, TurnError, MediaError) as error:
        raise SystemExit(f"parley: {error}") from None


def raise_open_files_limit(reserve: int) -> int:
    """Raise this process's soft file-descriptor limit to its hard limit (every connection,
    file and media socket is one); returns the limit now in force. ``reserve``: the
    descriptors connections leave free (``fd_reserve``), for the warning when it is low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, doctor.WANTED_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            logging.getLogger("parley").warning(
                "could not raise the open files limit from %d to %d: %s", soft, wanted, error
            )
    if soft != resource.RLIM_INFINITY and soft < doctor.WANTED_OPEN_FILES:
        logging.getLogger("parley").warning(
            "open files limit is %d (hard limit %d): raise it to %d or more (LimitNOFILE=, "
            "ulimit -Hn); new connections are refused %d before it (PARLEY_FD_RESERVE)",
            soft,
            hard,
            doctor.WANTED_OPEN_FILES,
            reserve,
        )
    return soft


def server_config(
    app: Any, settings: Settings, host: str, port: int, tls_files: tls.TlsFiles | None = None
) -> uvicorn.Config:
    """How uvicorn serves Parley (also used by the tests, so they run what users run); over
    HTTPS with ``tls_files``."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn's own INFO lines are one per request; Parley logs its state changes itself.
        log_level=settings.log_level if settings.log_level != "info" else "warning",
        lifespan="on",
        # Request headers must complete within header_timeout_seconds (uvicorn has no such
        # timeout of its own); idle keep-alive connections close after 5 s.
        http=header_timeout_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=5,
        # websockets-sansio, lending each WebSocket a way to write ready-made frames, so that a
        # broadcast is framed once for all its recipients.
        ws=FrameWebSocketProtocol,
        # Refuse oversized frames while reading them instead of buffering up to 16 MiB.
        ws_max_size=settings.max_socket_message_bytes + 1024,
        # Chat frames are small and fanned out to many: compressing each costs more CPU than
        # it saves bandwidth.
        ws_per_message_deflate=False,
        # A long-polling request can hold shutdown for its whole poll; do not wait for it.
        timeout_graceful_shutdown=3,
        # X-Forwarded-For/-Proto are believed from the listed proxies only (uvicorn's own
        # default believes 127.0.0.1, so anything on the machine could forge addresses).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        # uvicorn's access log would write each download link; Parley logs what matters.
        access_log=False,
        ssl_certfile=str(tls_files.cert) if tls_files else None,
        ssl_keyfile=str(tls_files.key) if tls_files else None,
    )


async def serve(settings: Settings) -> None:
    if settings.tls == "auto" and not tls.is_loopback(settings.host) and not settings.tls_cert:
        logging.getLogger("parley").warning(
            "listening on %s with no certificate configured: serving HTTPS with a self-signed "
            "one (set PARLEY_TLS_CERT/PARLEY_TLS_KEY for a real one, PARLEY_TLS=off behind a "
            "TLS proxy)",
            settings.host,
        )
    tls_files = tls.resolve(settings)
    app = create_app(settings, tls=tls_files)
    config = server_config(app, settings, settings.host, settings.port, tls_files)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.05)
    if server.started:
        for listener in server.servers:
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                scheme = "https" if tls_files else "http"
                shown = f"[{host}]" if ":" in host else host
                print(f"Parley listening on {scheme}://{shown}:{port}", flush=True)
    await task
    if not server.started:
        raise SystemExit(1)
