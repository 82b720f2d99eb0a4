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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.processes import end_process
from tests.support.redis_cluster import RedisClusterServer
from tests.support.redis_server import answers_ping, redis_binary, redis_command
from tests.support.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"


class RedisServer:
    """``redis-server`` on 127.0.0.1 with an append-only file, so a restart keeps its data (as
    docs/operating.md asks of a production Redis)."""

    def __init__(self, base: Path, *, password: bool = True) -> None:
        self.binary = redis_binary()
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
            redis_command(
                self.binary, self.port, self.dir, append_only=True, password=self.password
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_sync(self.ping, 20, "redis to answer", 0.05)

    def ping(self) -> bool:
        return answers_ping(self.port, self.password)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        end_process(self.process, sig, within=20)
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
        end_process(self.process, signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


@dataclass
class Cluster:
    base: Path
    redis: RedisServer | RedisClusterServer
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
        with node.log.open("a") as log:  # the node holds its own copy
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
            end_process(node.process, signal.SIGKILL)
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
        with (self.base / "haproxy.log").open("a") as log:  # haproxy holds its own copy
            self.haproxy = subprocess.Popen(
                [binary, "-db", "-f", str(HAPROXY_CFG)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.lb_url}/health", timeout=1).status_code == 200
            return False

        wait_until_sync(up, 20, "haproxy to serve /health", 0.05)

    def health(self, name: str) -> dict[str, object]:
        reply = httpx.get(f"{self.nodes[name].url}/health", timeout=5)
        return dict(reply.json())

    def stop(self) -> None:
        end_process(self.haproxy, within=10)
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
