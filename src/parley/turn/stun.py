"""Talking to a TURN server from Parley's side: is it there (a STUN binding), does it accept
credentials and relay to the SFU (a TURN allocation that sends to a media address)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass

from aioice import stun
from aioice.turn import create_turn_endpoint


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.answer: asyncio.Future[stun.Message] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        with contextlib.suppress(ValueError):
            message = stun.parse_message(data)
            if message.transaction_id == self.transaction_id and not self.answer.done():
                self.answer.set_result(message)


async def stun_binding(server: tuple[str, int], wait: float = 1.0) -> tuple[str, int]:
    """The address the server at ``server`` sees us from (one STUN binding over UDP);
    ``TimeoutError`` when it does not answer."""
    request = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.REQUEST,
        transaction_id=secrets.token_bytes(12),
    )
    request.add_fingerprint()
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Answer(request.transaction_id), remote_addr=server
    )
    try:
        for _ in range(3):
            transport.sendto(bytes(request))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait / 3):
                    answer = await asyncio.shield(protocol.answer)
                    mapped: tuple[str, int] = answer.attributes["XOR-MAPPED-ADDRESS"]
                    return mapped
        raise TimeoutError(f"no STUN answer from {server[0]}:{server[1]}")
    finally:
        transport.close()


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self.got.done():
            self.got.set_result(data)


@dataclass(frozen=True)
class RelayCheck:
    """What one TURN allocation could do."""

    allocated: bool
    relayed_address: tuple[str, int] | None
    reached: dict[str, bool]
    """Per media address: whether a datagram sent through the relay arrived there."""
    error: str | None = None


async def check_relay(
    server: tuple[str, int],
    username: str,
    password: str,
    peers: list[str],
    transport: str = "udp",
    wait: float = 2.0,
) -> RelayCheck:
    """Allocate on the TURN server with these credentials and send one datagram through the
    relay to a socket on each of ``peers`` (the SFU's media addresses)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(wait * 2):
            relay, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol,
                server,
                username,
                password,
                lifetime=60,
                transport=transport,
            )
    except Exception as error:  # aioice raises TransactionFailed/TimeoutError/OSError
        return RelayCheck(False, None, {}, f"{type(error).__name__}: {error}".strip(": "))
    reached: dict[str, bool] = {}
    try:
        relayed = relay.get_extra_info("sockname")
        for peer in peers:
            sink_transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=(peer, 0))
            try:
                target = sink_transport.get_extra_info("sockname")[:2]
                payload = secrets.token_bytes(16)
                ok = False
                for _ in range(3):
                    relay.sendto(payload, target)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait / 3):
                            ok = await asyncio.shield(sink.got) == payload
                            break
                reached[peer] = ok
            finally:
                sink_transport.close()
    finally:
        relay.close()
    return RelayCheck(True, relayed, reached)
