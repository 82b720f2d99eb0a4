"""A throwaway 3-master Redis Cluster (Debian's ``redis-server`` and ``redis-cli``) on 127.0.0.1
for tests: free ports for clients and for the cluster bus, one password for clients and between
masters, no persistence, stopped by ``stop()``."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.redis_server import answers_ping, redis_binary, redis_command


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
        self.password = secrets.token_hex(16)
        addresses = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        self.url = f"redis+cluster://:{self.password}@{addresses}"
        self.node_urls = [f"redis://:{self.password}@127.0.0.1:{port}/0" for port in self.ports]
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, within: float = 30.0) -> None:
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
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
            self._processes.append(await _quiet(*command))
        async with asyncio.timeout(within):
            for port in self.ports:
                while not await asyncio.to_thread(answers_ping, port, self.password):
                    self._check_running()
                    await asyncio.sleep(0.05)
            create = await _quiet(
                self.cli, "-a", self.password, "--no-auth-warning",
                "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", "0", "--cluster-yes",
            )  # fmt: skip
            if await create.wait() != 0:
                raise RuntimeError("redis-cli --cluster create failed")
            while not all([await self._cluster_ok(port) for port in self.ports]):
                self._check_running()
                await asyncio.sleep(0.05)

    def _check_running(self) -> None:
        for process in self._processes:
            if process.returncode is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")

    async def _cluster_ok(self, port: int) -> bool:
        return "cluster_state:ok" in await self.cli_output(port, "CLUSTER", "INFO")

    async def cli_output(self, port: int, *command: str) -> str:
        """What ``redis-cli`` prints for ``command`` sent to the master on ``port``."""
        process = await asyncio.create_subprocess_exec(
            self.cli, "-p", str(port), "-a", self.password, "--no-auth-warning", *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await process.communicate()
        return out.decode()

    async def stop(self) -> None:
        processes, self._processes = self._processes, []
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _quiet(*command: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
