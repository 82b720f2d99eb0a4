"""Running a Parley cluster for tests, on 127.0.0.1: one Redis, Parley nodes as child
processes (``python -m parley serve``) sharing a PostgreSQL database and a files folder, and
HAProxy with the shipped ``deploy/haproxy.cfg``."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if callable(condition) and condition():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """``redis-server`` on 127.0.0.1 with an append-only file, so a restart keeps its data (as
    docs/operating.md asks of a production Redis)."""

    def __init__(self, base: Path, *, password: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (Debian's redis-server)")
        self.binary = binary
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # With a password (requirepass), as docs/operating.md asks; it travels in the URL.
        self.password = secrets.token_hex(16) if password else ""
        credentials = f":{self.password}@" if password else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "no",
                "--loglevel", "warning",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self.ping, 20, "redis to answer")

    def ping(self) -> bool:
        with contextlib.suppress(OSError):
            import socket

            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                sock.sendall(auth + b"PING\r\n")
                answer = b""
                while b"+PONG" not in answer and len(answer) < 64:  # +OK, then +PONG
                    answer += sock.recv(64) or b"-"
                return b"+PONG" in answer
        return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@dataclass
class Cluster:
    base: Path
    redis: RedisServer
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    lb_port: int = 0

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def node_env(self, node: Node) -> dict[str, str]:
        return {
            **os.environ,
            # The nodes run this checkout's Parley, whatever the interpreter has installed.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
            ),
            "PARLEY_REDIS_URL": self.redis.url,
            "PARLEY_DATABASE_URL": self.database_url,
            "PARLEY_SECRET_KEY": "cluster-test-secret-" + "k" * 32,
            "PARLEY_FILES_DIR": str(self.base / "files"),
            "PARLEY_NODE_NAME": node.name,
            "PARLEY_MEDIA_ENGINE": "none",
            "PARLEY_NODE_LEASE_SECONDS": "2",
            "PARLEY_CHAT_ADDRESS_RATE": "10000",
            "PARLEY_CHAT_ADDRESS_BURST": "10000",
            "PARLEY_ROOM_CREATE_RATE": "1000",
            "PARLEY_ROOM_CREATE_BURST": "1000",
            "PARLEY_JOIN_RATE": "1000",
            "PARLEY_JOIN_BURST": "1000",
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "1000",
            "PARLEY_READ_RATE": "1000",
            "PARLEY_READ_BURST": "1000",
            **self.env,
        }

    def add_node(self, name: str) -> Node:
        self.base.mkdir(parents=True, exist_ok=True)
        node = Node(name, free_port(), self.base / name, self.base / f"{name}.log")
        self.nodes[name] = node
        return node

    def start_node(self, name: str, extra_env: dict[str, str] | None = None) -> Node:
        return self.start_nodes([name], extra_env)[0]

    def start_nodes(self, names: list[str], extra_env: dict[str, str] | None = None) -> list[Node]:
        """Start these nodes all at once; return when each listens."""
        nodes = [self._spawn(name, extra_env) for name in names]
        for node in nodes:
            self._listening(node)
        return nodes

    def _spawn(self, name: str, extra_env: dict[str, str] | None) -> Node:
        node = self.nodes.get(name) or self.add_node(name)
        log = node.log.open("a")
        node.process = subprocess.Popen(
            [
                sys.executable, "-m", "parley", "serve",
                "--host", "127.0.0.1",
                "--port", str(node.port),
                "--data-dir", str(node.data_dir),
                "--log-level", "info",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**self.node_env(node), **(extra_env or {})},
        )  # fmt: skip
        return node

    def _listening(self, node: Node) -> None:
        assert node.process is not None and node.process.stdout is not None
        line = node.process.stdout.readline()
        if not line.startswith("Parley listening on "):
            node.process.kill()
            raise RuntimeError(f"node {node.name} did not start: {line!r}\n{node.log.read_text()}")

    def start_haproxy(self) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            pytest.skip("haproxy is not installed (Debian's haproxy)")
        self.lb_port = free_port()
        node1, node2 = list(self.nodes.values())[:2]
        env = {
            **os.environ,
            "PARLEY_LB_BIND": f"127.0.0.1:{self.lb_port}",
            "PARLEY_NODE1": f"127.0.0.1:{node1.port}",
            "PARLEY_NODE2": f"127.0.0.1:{node2.port}",
        }
        self.haproxy = subprocess.Popen(
            [binary, "-db", "-f", str(HAPROXY_CFG)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "haproxy.log").open("a"),
        )

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.lb_url}/health", timeout=1).status_code == 200
            return False

        _wait(up, 20, "haproxy to serve /health")

    def health(self, name: str) -> dict[str, object]:
        reply = httpx.get(f"{self.nodes[name].url}/health", timeout=5)
        return dict(reply.json())

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        for node in self.nodes.values():
            node.stop()
        self.redis.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.name}\n{n.log.read_text()[-4000:]}"
            for n in self.nodes.values()
            if n.log.exists()
        )


def new_secret() -> str:
    return secrets.token_urlsafe(32)
