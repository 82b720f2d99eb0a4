"""The embedded coturn's quotas, against a real coturn: a participant holds at most
``turn_user_quota`` relay allocations whatever credentials it fetched, the server at most
``turn_total_quota``, each allocation is capped at ``turn_max_bps``, and a relay to an address
that is not the SFU's is refused."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from parley.settings import Settings
from parley.tokens import turn_credentials
from parley.turn.config import relay_reaches, total_quota, user_quota
from parley.turn.process import TurnProcess, find_turnserver
from parley.turn.stun import check_relay

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port


@pytest_asyncio.fixture(loop_scope="module")
async def coturn(tmp_path: Path) -> AsyncIterator[TurnProcess]:
    """A coturn of each test's own: coturn frees a quota only some time after a deletion."""
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        media_addresses=[LOOPBACK],
        turn="embedded",
        turn_port=free_port(),
        turn_listen_addresses=[LOOPBACK],
        turn_allow_loopback=True,
        turn_relay_port_min=47000,
        turn_relay_port_max=47999,
        turn_user_quota=2,
        turn_total_quota=3,
        turn_max_bps=50_000,
    )
    if find_turnserver(settings) is None:
        pytest.skip("coturn is not installed (Debian package `coturn`)")
    process = TurnProcess(settings)
    await process.start()
    try:
        yield process
    finally:
        await process.close()


class _Relay(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.gone = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()


class Held:
    """Relay allocations held open by one test, deallocated at its end."""

    def __init__(self, coturn: TurnProcess) -> None:
        self.coturn = coturn
        self.relays: list[tuple[asyncio.DatagramTransport, _Relay]] = []

    async def allocate(self, user: str, expires_in: int = 600) -> None:
        username, password = turn_credentials(
            self.coturn.secret, user, int(time.time()) + expires_in
        )
        relay, protocol = await create_turn_endpoint(
            _Relay, self.coturn.address, username, password, lifetime=60
        )
        self.relays.append((relay, protocol))

    async def close(self) -> None:
        """Delete every allocation and wait until coturn has answered each deletion."""
        for relay, _ in self.relays:
            relay.close()
        async with asyncio.timeout(10):
            for _, protocol in self.relays:
                await protocol.gone.wait()


@pytest_asyncio.fixture(loop_scope="module")
async def held(coturn: TurnProcess) -> AsyncIterator[Held]:
    holder = Held(coturn)
    try:
        yield holder
    finally:
        await holder.close()


async def test_a_participant_past_its_quota_is_refused_even_with_fresh_credentials(
    held: Held,
) -> None:
    await held.allocate("alice", expires_in=600)
    await held.allocate("alice", expires_in=601)  # new credentials, same participant
    with pytest.raises(TransactionFailed, match="486"):
        await held.allocate("alice", expires_in=602)
    await held.allocate("bob")  # another participant is not held back by alice


async def test_the_server_holds_no_more_than_its_total_quota(held: Held) -> None:
    await held.allocate("carol")
    await held.allocate("carol")
    await held.allocate("dave")
    with pytest.raises(TransactionFailed, match="486"):
        await held.allocate("erin")


async def test_a_relay_to_an_address_other_than_the_sfus_is_refused(coturn: TurnProcess) -> None:
    username, password = turn_credentials(coturn.secret, "frank", int(time.time()) + 600)
    result = await check_relay(
        coturn.address, username, password, [LOOPBACK, "127.0.0.3", "127.0.0.53"]
    )
    assert result.reached == {LOOPBACK: True, "127.0.0.3": False, "127.0.0.53": False}


async def test_the_configuration_caps_each_allocations_bandwidth(coturn: TurnProcess) -> None:
    assert coturn.layout is not None
    config = coturn.layout.config.read_text().splitlines()
    assert "max-bps=50000" in config
    assert "user-quota=2" in config and "total-quota=3" in config


async def test_the_default_quotas_follow_the_media_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_streams_per_participant=2,
                        max_subscriptions_per_participant=10, max_peer_connections=100)  # fmt: skip
    assert user_quota(settings) == 36
    assert total_quota(settings) == 300


async def test_doctor_names_udp_services_the_relay_reaches_besides_the_sfu(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        media_addresses=[LOOPBACK],
        turn_allow_loopback=True,
        # Both below the ephemeral ports, where the service below is bound.
        rtp_port_min=31000,
        rtp_port_max=31099,
        turn_relay_port_min=30000,
        turn_relay_port_max=30099,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as service:
        service.bind((LOOPBACK, 0))
        port = service.getsockname()[1]
        assert (LOOPBACK, port) in relay_reaches(settings)
        elsewhere = {("127.0.0.3", port), (LOOPBACK, 31001), (LOOPBACK, 30001), (LOOPBACK, port)}
        assert relay_reaches(settings, elsewhere) == [(LOOPBACK, port)]
