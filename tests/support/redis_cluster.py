"""A throwaway 3-master Redis Cluster (Debian's ``redis-server`` and ``redis-cli``) on 127.0.0.1
for tests: free ports for clients and for the cluster bus, one password for clients and between
masters, no persistence. ``start()`` returns once every master says ``cluster_state:ok``;
``stop()`` ends them. Both block: from async code, run them in a thread."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import end_process
from tests.support.redis_server import answers_ping, redis_binary, redis_command
from tests.support.waiting import wait_until_sync


class RedisClusterServer:
    """``masters`` Redis masters on 127.0.0.1 that share the 16384 slots, no replicas."""

    def __init__(self, folder: Path, masters: int = 3) -> None:
        self.binary = redis_binary()
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.skip("redis-cli is not installed (Debian's redis-tools)")
        self.cli = cli
        self.folder = folder
        self.ports = [free_port() for _ in range(masters)]
        self.bus_ports = [free_port() for _ in range(masters)]
        self.password = secrets.token_hex(16)  # requirepass and masterauth
        addresses = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        self.url = f"redis+cluster://:{self.password}@{addresses}"
        """The URL Parley is given (``PARLEY_REDIS_URL``)."""
        self.node_urls = [f"redis://:{self.password}@127.0.0.1:{port}/0" for port in self.ports]
        """Each master as one Redis (to empty it, or read its ``INFO``)."""
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self, within: float = 30.0) -> None:
        try:
            for port, bus in zip(self.ports, self.bus_ports, strict=True):
                self._processes.append(self._spawn(port, bus))
            for port in self.ports:
                wait_until_sync(lambda p=port: self._answers(p), within, "redis to answer", 0.05)
            create = [
                "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", "0", "--cluster-yes",
            ]  # fmt: skip
            subprocess.run(self._cli(self.ports[0], *create), check=True, capture_output=True)
            wait_until_sync(self._all_ok, within, "the cluster to be ok", 0.05)
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        """The masters' process ids, in the order of ``node_urls``."""
        return [process.pid for process in self._processes]

    def _spawn(self, port: int, bus: int) -> subprocess.Popen[bytes]:
        folder = self.folder / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        command = redis_command(
            self.binary, port, folder, append_only=False, password=self.password
        )
        command += [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(folder / "nodes.conf"),
            "--cluster-port", str(bus),
            "--cluster-node-timeout", "2000",
            "--masterauth", self.password,
        ]  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _answers(self, port: int) -> bool:
        for process in self._processes:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
        return answers_ping(port, self.password)

    def _all_ok(self) -> bool:
        return all("cluster_state:ok" in self.ask(port, "CLUSTER", "INFO") for port in self.ports)

    def _cli(self, port: int, *command: str) -> list[str]:
        return [self.cli, "-p", str(port), "-a", self.password, "--no-auth-warning", *command]

    def ask(self, port: int, *command: str) -> str:
        """What ``redis-cli`` prints for ``command`` sent to the master on ``port``."""
        done = subprocess.run(self._cli(port, *command), capture_output=True, timeout=10)
        return done.stdout.decode()

    def stop(self) -> None:
        processes, self._processes = self._processes, []
        for process in processes:
            end_process(process, within=10)
