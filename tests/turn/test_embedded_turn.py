"""``PARLEY_TURN=embedded``: Parley runs coturn itself and hands participants expiring
credentials for it; aiortc peers that may only use relay candidates exchange media with both
engines through it, over UDP and over TCP; coturn relays nowhere but the media addresses; a
killed coturn comes back. One coturn (Parley's own, in-process) serves the whole module. It
listens and relays on 127.0.0.2 (``media_net``), where the Janus engine gathers: Janus answers no
connectivity checks from a relay address on 127.0.0.1 (the embedded SFU, on 127.0.0.1, takes
either)."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from parley.media import janus
from parley.media.engine import MediaEngine
from parley.media.select import create_engine, janus_config
from parley.settings import Settings
from parley.tokens import turn_credentials
from parley.turn.process import TurnProcess, find_turnserver
from parley.turn.stun import check_relay, stun_binding
from tests.support.clients import Client
from tests.support.media_net import MEDIA_ADDRESS, media_net
from tests.support.peers import LOOPBACK, TestPublisher, TestSubscriber
from tests.support.ports import free_udp_and_tcp_port
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

__all__ = ["media_net"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media]


class Turn:
    def __init__(self, server: RunningServer, settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.clients: list[Client] = []

    @property
    def process(self) -> TurnProcess:
        assert self.server.parley.turn is not None
        return self.server.parley.turn

    @property
    def address(self) -> tuple[str, int]:
        return MEDIA_ADDRESS, self.settings.turn_port

    async def participant_token(self) -> str:
        client = Client(self.server.url)
        await client.connect()
        self.clients.append(client)
        created = await client.ok("createRoom", {"userName": "Ada", "roomName": "Relay"})
        token: str = created["token"]
        return token

    async def ice_servers(self, token: str | None) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{self.server.url}/get-connection-info", headers=headers)
        servers: list[dict[str, Any]] = answer.json()["iceServers"]
        return servers


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def turn(tmp_path_factory: pytest.TempPathFactory, media_net: str) -> AsyncIterator[Turn]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("turn") / "data",
        media_engine="none",
        media_addresses=[LOOPBACK, media_net],
        turn="embedded",
        turn_port=free_udp_and_tcp_port(),
        # On the veth's address: Janus answers no checks from a relay on 127.0.0.1.
        turn_listen_addresses=[media_net],
        turn_host=media_net,
        turn_allow_loopback=True,
        turn_relay_port_min=45000,
        turn_relay_port_max=45999,
        room_create_burst=100,
    )
    if find_turnserver(settings) is None:
        pytest.skip("coturn is not installed (Debian package `coturn`)")
    async with run_server(settings) as server:
        shared = Turn(server, settings)
        yield shared
        for client in shared.clients:
            await client.close()


async def test_participants_get_expiring_credentials_for_parleys_coturn(turn: Turn) -> None:
    assert await turn.ice_servers(None) == []  # a browser without a participant token: none
    token = await turn.participant_token()
    (server,) = await turn.ice_servers(token)
    port = turn.settings.turn_port
    assert server["urls"] == [
        f"turn:{MEDIA_ADDRESS}:{port}?transport=udp",
        f"turn:{MEDIA_ADDRESS}:{port}?transport=tcp",
    ]
    expires = int(server["username"].split(":", 1)[0])
    assert abs(expires - (time.time() + turn.settings.turn_credential_seconds)) < 60
    accepted = await check_relay(turn.address, server["username"], server["credential"], [])
    assert accepted.allocated, accepted.error


async def test_expired_or_forged_credentials_are_refused(turn: Turn) -> None:
    secret = turn.process.secret
    expired = turn_credentials(secret, "someone", int(time.time()) - 1)
    forged = turn_credentials("not-the-secret" * 3, "someone", int(time.time()) + 600)
    for username, credential in (expired, forged):
        refused = await check_relay(turn.address, username, credential, [])
        assert not refused.allocated
        assert "401" in (refused.error or "")


async def test_coturn_relays_to_the_media_addresses_only(turn: Turn) -> None:
    username, credential = turn_credentials(turn.process.secret, "u", int(time.time()) + 600)
    result = await check_relay(
        turn.address, username, credential, [LOOPBACK, MEDIA_ADDRESS, "127.0.0.3"]
    )
    assert result.reached == {LOOPBACK: True, MEDIA_ADDRESS: True, "127.0.0.3": False}


async def test_the_secret_and_configuration_are_private(turn: Turn) -> None:
    layout = turn.process.layout
    assert layout is not None
    secret_file = turn.settings.data_dir / "turn" / "secret"
    for path in (secret_file, layout.config):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(layout.root.stat().st_mode) == 0o700
    config = layout.config.read_text()
    assert "denied-peer-ip=0.0.0.0-255.255.255.255" in config
    assert "no-cli" in config and "use-auth-secret" in config


def relay_only(server: dict[str, Any], transport: str) -> RTCConfiguration:
    (url,) = [u for u in server["urls"] if u.endswith(f"transport={transport}")]
    return RTCConfiguration(
        iceServers=[RTCIceServer(url, server["username"], server["credential"])],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def nominated_local_type(pc: RTCPeerConnection) -> str:
    (transceiver, *_) = pc.getTransceivers()
    connection = transceiver.sender.transport.transport.iceGatherer._connection
    pair = connection._nominated.get(1)
    assert pair is not None
    kind: str = pair.local_candidate.type
    return kind


@pytest_asyncio.fixture(loop_scope="module", params=["embedded", "janus"])
async def engine(
    request: pytest.FixtureRequest, turn: Turn, tmp_path: Any
) -> AsyncIterator[tuple[MediaEngine, str]]:
    name: str = request.param
    address = MEDIA_ADDRESS if name == "janus" else LOOPBACK
    settings = Settings(
        data_dir=tmp_path / "engine",
        media_engine=name,  # type: ignore[arg-type]
        media_addresses=[address],
        janus_url=None,
    )
    if name == "janus" and not janus.janus_available(janus_config(settings)):
        pytest.skip("janus is not installed (Debian package `janus`)")
    made = create_engine(settings)
    assert made is not None
    await made.start()
    try:
        yield made, address
    finally:
        await made.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_peers_exchange_media_through_coturn(
    turn: Turn, engine: tuple[MediaEngine, str], transport: str
) -> None:
    media, _ = engine
    (server,) = await turn.ice_servers(await turn.participant_token())
    # No address to gather on (""): relay candidates only, as a browser with
    # iceTransportPolicy "relay" behind a UDP-blocking firewall.
    publisher = TestPublisher(address="", configuration=relay_only(server, transport))
    subscriber = TestSubscriber(pc=RTCPeerConnection(relay_only(server, transport)), address="")
    try:
        published = await media.publish("room-relay", "cam", await publisher.offer())
        assert "typ host" not in publisher.pc.localDescription.sdp
        assert "typ relay" in publisher.pc.localDescription.sdp
        await publisher.accept(published.answer_sdp)
        offer = await media.subscribe("room-relay", "cam", "sub")
        await media.accept_answer("room-relay", "sub", await subscriber.answer(offer))
        await subscriber.wait_for("video", 5, timeout=30)
        await subscriber.wait_for("audio", 5, timeout=30)
        assert nominated_local_type(publisher.pc) == "relay"
        assert nominated_local_type(subscriber.pc) == "relay"
    finally:
        await publisher.close()
        await subscriber.close()
        await media.close_room("room-relay")


async def test_a_killed_coturn_is_restarted_with_the_same_secret(turn: Turn) -> None:
    process = turn.process
    old_pid, restarts = process.pid, process.restarts
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    await wait_until(lambda: process.restarts > restarts, 10.0, "coturn restarted")
    assert process.pid != old_pid
    await stun_binding(turn.address, wait=2.0)
    (server,) = await turn.ice_servers(await turn.participant_token())
    again = await check_relay(turn.address, server["username"], server["credential"], [LOOPBACK])
    assert again.allocated and again.reached == {LOOPBACK: True}
