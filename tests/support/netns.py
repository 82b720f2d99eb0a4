"""Network namespaces with shaped links, for tests of media on real networks.

Each ``Namespace`` is a network namespace of its own joined to the host side (the test run's
namespace, itself private: ``scripts/loopback-only``) by a veth pair, addressed in
``10.77.<n>.0/24`` (host side ``.1``, inside ``.2``); nothing reaches beyond. ``shape`` puts
``tc`` on either end (``down``: what flows into the namespace; ``up``: what leaves it) — a
token bucket for the rate, netem for delay and loss — and can be called again mid-test to change
the link. ``Namespaces`` removes every namespace it made when its ``with`` ends, even on failure.

Chromium runs inside a namespace through Playwright's own launch: ``browser_executable`` is a
small script that starts ``/usr/bin/chromium`` under ``ip netns exec``; Playwright talks to it
over a pipe, which crosses namespaces. ``fake_camera`` makes a moving 960x540 y4m file with
ffmpeg for Chromium's fake capture device (``--use-file-for-fake-video-capture``, looped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import pytest

from tests.support.chromium import CHROMIUM

SUBNET = "10.77"
"""Addresses of the namespaces' links (private to the test run)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _tc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tc", *args], capture_output=True, text=True, check=check)


@dataclass(frozen=True)
class Link:
    """How a link is shaped: rate (kbit/s, None: free), one-way delay and loss."""

    kbit: int | None = None
    delay_ms: int = 0
    loss_percent: float = 0.0


@dataclass
class Namespace:
    name: str
    index: int
    host_if: str
    inner_if: str

    @property
    def host_address(self) -> str:
        """The host side's address, as seen from inside the namespace."""
        return f"{SUBNET}.{self.index}.1"

    @property
    def address(self) -> str:
        """The namespace's own address."""
        return f"{SUBNET}.{self.index}.2"

    def command(self, *argv: str) -> list[str]:
        """``argv`` as run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*argv), capture_output=True, text=True, check=check)

    def shape(self, link: Link, direction: Literal["down", "up"] = "down") -> None:
        """Shape the link one way (replacing what was there): ``down`` into the namespace,
        ``up`` out of it."""
        if direction == "down":
            device, tc = self.host_if, _tc
        else:
            device = self.inner_if

            def tc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
                return self.run("tc", *args, check=check)

        tc("qdisc", "del", "dev", device, "root", check=False)
        if link.kbit is None and not link.delay_ms and not link.loss_percent:
            return
        parent = ["root"]
        if link.kbit is not None:
            # a bucket of ~50 ms of the rate (at least two full packets), and at most 200 ms
            # queued: what a home router's buffer holds.
            burst = max(3200, link.kbit * 1000 // 8 // 20)
            tc(
                "qdisc", "add", "dev", device, "root", "handle", "1:", "tbf",
                "rate", f"{link.kbit}kbit", "burst", str(burst), "latency", "200ms",
            )  # fmt: skip
            parent = ["parent", "1:1"]
        if link.delay_ms or link.loss_percent:
            netem = ["delay", f"{link.delay_ms}ms", "loss", f"{link.loss_percent}%"]
            tc("qdisc", "add", "dev", device, *parent, "handle", "10:", "netem", *netem)

    def browser_executable(self, folder: Path) -> Path:
        """A script that runs Chromium inside this namespace (Playwright's
        ``executable_path``)."""
        script = folder / f"chromium-{self.name}"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {CHROMIUM} "$@"\n')
        script.chmod(0o755)
        return script


class Namespaces:
    """Namespaces made on demand, all removed on exit (``with Namespaces() as nets``)."""

    def __init__(self) -> None:
        self._made: list[Namespace] = []
        self._prefix = f"parley{os.getpid()}"

    def __enter__(self) -> Namespaces:
        if shutil.which("tc") is None or os.geteuid() != 0:
            pytest.skip("network namespace tests need root and `tc` (iproute2)")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, link: Link | None = None) -> Namespace:
        """A new namespace joined to the host side, its downlink shaped by ``link``."""
        index = len(self._made) + 1
        name = f"{self._prefix}n{index}"
        ns = Namespace(name, index, host_if=f"pv{os.getpid() % 10000}h{index}", inner_if="eth0")
        _ip("netns", "add", name)
        self._made.append(ns)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", f"{ns.host_if}i")
        _ip("link", "set", f"{ns.host_if}i", "netns", name)
        ns.run("ip", "link", "set", f"{ns.host_if}i", "name", ns.inner_if)
        _ip("addr", "add", f"{ns.host_address}/24", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        ns.run("ip", "addr", "add", f"{ns.address}/24", "dev", ns.inner_if)
        ns.run("ip", "link", "set", ns.inner_if, "up")
        ns.run("ip", "link", "set", "lo", "up")
        ns.run("ip", "route", "add", "default", "via", ns.host_address)
        if link is not None:
            ns.shape(link)
        return ns

    def close(self) -> None:
        """Remove every namespace made (its veth goes with it). Idempotent."""
        while self._made:
            ns = self._made.pop()
            _ip("link", "del", ns.host_if, check=False)
            _ip("netns", "del", ns.name, check=False)


def namespace_exists(name: str) -> bool:
    return name in _ip("netns", "list").stdout.split()


def fake_camera(folder: Path, seconds: int = 4, rate: int = 25) -> Path:
    """A moving 960x540 picture (ffmpeg ``testsrc2``) as a y4m file Chromium loops as its
    camera."""
    path = folder / "camera.y4m"
    if not path.exists():
        subprocess.run(
            [
                "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
                "-i", f"testsrc2=size=960x540:rate={rate}:duration={seconds}",
                "-pix_fmt", "yuv420p", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path
