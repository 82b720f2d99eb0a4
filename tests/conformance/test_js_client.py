"""The real JavaScript Socket.IO client walks the whole seed API against a running Parley.

``walk.mjs`` (socket.io-client from ``package-lock.json``; install with
``npm ci --prefix tests/conformance``) prints one line per step and exits 0 only when every
step checked out.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.support.server import RunningServer

HERE = Path(__file__).resolve().parent
WALK_TIMEOUT_S = 120


async def test_javascript_client_walks_the_seed_api_end_to_end(server: RunningServer) -> None:
    node = shutil.which("node")
    assert node is not None, "node is not installed (Node.js 18 or later is needed)"
    assert (HERE / "node_modules" / "socket.io-client").is_dir(), (
        "socket.io-client is not installed: run `npm ci --prefix tests/conformance`"
    )
    walk = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "walk.mjs"),
        server.url,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(walk.communicate(), WALK_TIMEOUT_S)
    finally:
        if walk.returncode is None:
            walk.kill()
            await walk.wait()
    report = output.decode(errors="replace")
    print(report)
    assert walk.returncode == 0, f"walk.mjs exited with {walk.returncode}:\n{report}"
