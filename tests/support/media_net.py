"""The media address for Janus: a veth inside the test run's own network namespace.

Janus never gathers ICE candidates on a loopback interface, so whatever runs Janus (the media,
Janus and browser tests) gathers on 127.0.0.2/32, on a veth that ``media_net`` makes inside the
namespace of ``scripts/loopback-only``. All traffic stays in 127.0.0.0/8.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

MEDIA_ADDRESS = "127.0.0.2"
"""Where Janus and its peers gather: on a veth, since Janus refuses loopback interfaces."""
VETH = "v0"
VETH_PEER = "v1"


def _interfaces() -> set[str]:
    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
    return {name for _, name in socket.if_nameindex()}


def _veth_ready() -> bool:
    if VETH not in _interfaces():
        return False
    shown = subprocess.run(
        ["ip", "-4", "addr", "show", "dev", VETH], capture_output=True, text=True, check=False
    )
    return f"{MEDIA_ADDRESS}/32" in shown.stdout


def _make_veth() -> None:
    commands = [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER],
        ["ip", "addr", "add", f"{MEDIA_ADDRESS}/32", "dev", VETH],
        ["ip", "link", "set", VETH, "up"],
        ["ip", "link", "set", VETH_PEER, "up"],
    ]
    for command in commands:
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            pytest.skip(f"cannot set up the veth for Janus (`{' '.join(command)}`): {detail}")


@pytest.fixture(scope="session")
def media_net() -> str:
    """The media address, on a veth inside this test run's private network namespace."""
    if not _veth_ready():
        if os.geteuid() != 0:
            pytest.skip("Janus media tests need root inside `unshare -n` to create a veth")
        if _interfaces() != {"lo"}:
            pytest.skip(
                "Janus media tests run only in a private network namespace "
                "(`scripts/loopback-only pytest ...`): other interfaces exist"
            )
        _make_veth()
    return MEDIA_ADDRESS
