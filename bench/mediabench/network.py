"""Janus's network inside the benchmark's namespace: 127.0.0.2 on a veth."""

from __future__ import annotations

import os
import socket
import subprocess

from mediabench.engine_process import JANUS_ADDRESS
from parley.media.janus import janus_available
from parley.media.select import janus_config
from parley.settings import Settings

# --- Janus's network: 127.0.0.2 on a veth -----------------------------------------------------

VETH, VETH_PEER = "v0", "v1"


def interfaces() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def janus_network_ready() -> bool:
    """Whether 127.0.0.2 is on a non-loopback interface here (creating the veth if this is a
    private namespace with only ``lo``, as under ``scripts/loopback-only`` as root)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    )
    if any(
        f"{JANUS_ADDRESS}/" in line and " lo " not in line for line in shown.stdout.splitlines()
    ):
        return True
    if os.geteuid() != 0 or interfaces() != {"lo"}:
        return False
    for command in (
        ["ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER],
        ["ip", "addr", "add", f"{JANUS_ADDRESS}/32", "dev", VETH],
        ["ip", "link", "set", VETH, "up"],
        ["ip", "link", "set", VETH_PEER, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return True


def usable_engines(wanted: list[str]) -> list[str]:
    engines = []
    for kind in wanted:
        if kind == "janus" and not janus_available(janus_config(Settings(janus_url=None))):
            print("janus is not installed (Debian package `janus`): its runs are skipped")
        elif kind == "janus" and not janus_network_ready():
            print(
                f"no {JANUS_ADDRESS} outside lo and no private namespace to make one "
                "(run under scripts/loopback-only as root): Janus runs are skipped"
            )
        else:
            engines.append(kind)
    return engines
