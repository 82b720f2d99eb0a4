"""docs/integration.md's worked examples, run against a real server so they stay true: each
creates a meeting over REST, mints join links that really admit people, and verifies a webhook
signature made the way the contract says."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SECRETS = {
    "PARLEY_API_KEY": "a" * 40,
    "PARLEY_JWT_SECRET": "j" * 40,
    "PARLEY_WEBHOOK_SECRET": "w" * 40,
}


def signed_sample() -> dict[str, str]:
    body = json.dumps({"id": "e1", "event": "room_started"})
    t = str(int(time.time()))
    mac = hmac.new(SECRETS["PARLEY_WEBHOOK_SECRET"].encode(), f"{t}.{body}".encode(), "sha256")
    return {"SAMPLE_WEBHOOK_BODY": body, "SAMPLE_WEBHOOK_SIGNATURE": f"t={t},v1={mac.hexdigest()}"}


async def run_example(command: list[str], url: str) -> list[str]:
    env = {**os.environ, **SECRETS, **signed_sample(), "PARLEY_URL": url}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


async def check_links(server: RunningServer, lines: list[str]) -> None:
    assert any(line.lower() == "webhook verified true" for line in lines)
    room_id = next(line.split()[1] for line in lines if line.startswith("meeting "))
    links = {line.split()[0]: line.split()[-1] for line in lines if " link " in line}
    for role, link in links.items():
        query = parse_qs(urlparse(link).query)
        client = await Client(server.url).connect()
        try:
            joined = await client.ok("joinRoom", {"roomId": room_id, "jwt": query["jwt"][0]})
            assert joined["isHost"] is (role == "host")
        finally:
            await client.close()


@pytest.mark.parametrize("example", ["embed.py", "embed.mjs"])
async def test_the_worked_example_runs(tmp_path: Path, example: str) -> None:
    settings = Settings(
        data_dir=tmp_path,
        media_engine="none",
        api_key=SECRETS["PARLEY_API_KEY"],
        jwt_secret=SECRETS["PARLEY_JWT_SECRET"],
    )
    runner = sys.executable if example.endswith(".py") else shutil.which("node")
    assert runner is not None
    async with run_server(settings) as server:
        lines = await run_example([runner, str(EXAMPLES / example)], server.url)
        await check_links(server, lines)


def test_the_guide_shows_the_examples_as_they_are() -> None:
    guide = (EXAMPLES.parent / "integration.md").read_text()
    for example in ("embed.py", "embed.mjs"):
        assert f"examples/{example}" in guide
