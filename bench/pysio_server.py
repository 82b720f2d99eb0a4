"""The reference server of ``node_server/server.mjs`` written with python-socketio, to compare
the transports under it without Parley's own work (storage, validation, rooms' rules):

    python bench/pysio_server.py --mode aiohttp|uvicorn|fast --port 0 [--host 127.0.0.1]

- ``aiohttp``: python-socketio's native aiohttp mode (``socketio.AIOHTTPApp``).
- ``uvicorn``: ASGI under uvicorn's websockets-sansio protocol, python-socketio as it comes.
- ``fast``: the same under uvicorn, with Parley's fan-out path (``FanoutManager`` from
  ``parley.signalling.fanout``, the ``serve_websocket`` handler of
  ``parley.signalling.socketio_internals`` and ``FrameWebSocketProtocol`` of
  ``parley.signalling.uvicorn_internals``).

Prints "listening <port>" once ready; GET /health answers 200. Used by ``chat_bench.py``
(``--servers pysio-aiohttp,pysio-uvicorn,pysio-fast``).
"""

from __future__ import annotations

import argparse
import socket
import time
import uuid
from typing import Any

import socketio


def make_sio(mode: str) -> socketio.AsyncServer:
    common: dict[str, Any] = {
        "async_mode": "aiohttp" if mode == "aiohttp" else "asgi",
        "cors_allowed_origins": "*",
        "max_http_buffer_size": 1_000_000,
        "async_handlers": False,
    }
    if mode == "fast":
        from parley.signalling.fanout import FanoutManager
        from parley.signalling.socketio_internals import DecodeGuardServer

        return DecodeGuardServer(client_manager=FanoutManager(), **common)
    return socketio.AsyncServer(**common)


def install(sio: socketio.AsyncServer) -> None:
    rooms: dict[str, dict[str, Any]] = {}
    where: dict[str, dict[str, Any]] = {}

    async def leave(sid: str) -> None:
        data = where.pop(sid, None)
        if not data:
            return
        room_id = data["roomId"]
        await sio.leave_room(sid, room_id)
        room = rooms.get(room_id)
        if room is None:
            return
        room["members"].discard(sid)
        if not room["members"]:
            del rooms[room_id]
        else:
            await sio.emit("userLeft", {"userId": data["userId"]}, room=room_id)

    async def enter(sid: str, room_id: str, user_name: str) -> dict[str, Any]:
        await leave(sid)
        room = rooms[room_id]
        room["members"].add(sid)
        user_id = str(uuid.uuid4())
        where[sid] = {"roomId": room_id, "userId": user_id, "userName": user_name}
        await sio.enter_room(sid, room_id)
        data = {"userId": user_id, "userName": user_name}
        await sio.emit("userJoined", data, room=room_id, skip_sid=sid)
        return room

    @sio.on("createRoom")  # type: ignore[untyped-decorator]
    async def create_room(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        room_id = payload.get("customRoomId") or str(uuid.uuid4())
        if room_id in rooms:
            return {"ok": False, "error": {"code": "ROOM_EXISTS", "message": "room exists"}}
        rooms[room_id] = {"roomName": payload.get("roomName"), "members": set()}
        await enter(sid, room_id, payload.get("userName", ""))
        host_key = str(uuid.uuid4())
        data = {"roomId": room_id, "roomName": payload.get("roomName"), "hostKey": host_key}
        await sio.emit("roomCreated", data, to=sid)
        return {"ok": True, "data": {**data, "userId": where[sid]["userId"], "token": "-"}}

    @sio.on("joinRoom")  # type: ignore[untyped-decorator]
    async def join_room(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        room_id = payload.get("roomId")
        if room_id not in rooms:
            return {"ok": False, "error": {"code": "ROOM_NOT_FOUND", "message": "no room"}}
        room = await enter(sid, room_id, payload.get("userName", ""))
        data = {"roomId": room_id, "roomName": room["roomName"], "isHost": False, "token": "-"}
        return {"ok": True, "data": {**data, "userId": where[sid]["userId"]}}

    @sio.on("leaveRoom")  # type: ignore[untyped-decorator]
    async def leave_room(sid: str, _payload: object = None) -> dict[str, Any]:
        await leave(sid)
        return {"ok": True, "data": {}}

    @sio.on("message")  # type: ignore[untyped-decorator]
    async def message(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        data = where.get(sid)
        if not data or payload.get("roomId") != data["roomId"]:
            return {"ok": False, "error": {"code": "NOT_IN_ROOM", "message": "not in room"}}
        out = {
            "id": uuid.uuid4().hex,
            "roomId": data["roomId"],
            "userId": data["userId"],
            "userName": data["userName"],
            "message": payload.get("message"),
            "timestamp": int(time.time() * 1000),
        }
        await sio.emit("message", out, room=data["roomId"])
        return {"ok": True, "data": {"id": out["id"], "timestamp": out["timestamp"]}}

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, _reason: object = None) -> None:
        await leave(sid)


async def health_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            kind = event["type"].replace("startup", "startup.complete")
            await send({"type": kind.replace("shutdown", "shutdown.complete")})
            if event["type"] == "lifespan.shutdown":
                return
    status = 200 if scope.get("path") == "/health" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def serve(mode: str, host: str, port: int) -> None:
    sio = make_sio(mode)
    install(sio)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    print(f"listening {sock.getsockname()[1]}", flush=True)
    if mode == "aiohttp":
        from aiohttp import web

        app = web.Application()
        sio.attach(app)

        async def health(_request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_get("/health", health)
        import uvloop

        uvloop.install()
        web.run_app(app, sock=sock, print=None, access_log=None)
        return
    import uvicorn

    ws: Any = "websockets-sansio"
    if mode == "fast":
        from parley.signalling.uvicorn_internals import FrameWebSocketProtocol

        ws = FrameWebSocketProtocol
    app = socketio.ASGIApp(sio, other_asgi_app=health_asgi)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws=ws,
        ws_per_message_deflate=False,
        access_log=False,
    )
    import uvloop

    uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["aiohttp", "uvicorn", "fast"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve(args.mode, args.host, args.port)


if __name__ == "__main__":
    main()
