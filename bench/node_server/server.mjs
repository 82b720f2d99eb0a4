// Reference server for the chat benchmark: the smallest socket.io server that does the same
// room fan-out as Parley (createRoom, joinRoom, leaveRoom, message with an ack and a broadcast
// to the room, sender included). No storage, no validation beyond the shape: it is the yardstick.
//
//   node server.mjs --port 0 [--host 127.0.0.1]
//
// Prints "listening <port>" once ready; GET /health answers 200.

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("host", "127.0.0.1");
const port = Number(option("port", "0"));

const http = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ status: "ok" }));
    return;
  }
  res.writeHead(404).end();
});

const io = new Server(http, { serveClient: false, maxHttpBufferSize: 1_000_000 });
const rooms = new Map(); // roomId -> { roomName, members: Set<socketId> }

function ok(ack, data) {
  if (typeof ack === "function") ack({ ok: true, data });
}

function fail(ack, code, message) {
  if (typeof ack === "function") ack({ ok: false, error: { code, message } });
}

function leave(socket) {
  const { roomId, userId, userName } = socket.data;
  if (!roomId) return;
  socket.leave(roomId);
  socket.data.roomId = undefined;
  const room = rooms.get(roomId);
  if (!room) return;
  room.members.delete(socket.id);
  if (room.members.size === 0) rooms.delete(roomId);
  else io.to(roomId).emit("userLeft", { userId, userName });
}

function enter(socket, roomId, userName) {
  leave(socket);
  const room = rooms.get(roomId);
  room.members.add(socket.id);
  socket.data.roomId = roomId;
  socket.data.userName = userName;
  socket.join(roomId);
  socket.to(roomId).emit("userJoined", { userId: socket.data.userId, userName });
  return room;
}

io.on("connection", (socket) => {
  socket.data.userId = randomUUID();

  socket.on("createRoom", (payload, ack) => {
    const { userName, roomName, customRoomId } = payload || {};
    const roomId = customRoomId || randomUUID();
    if (rooms.has(roomId)) return fail(ack, "ROOM_EXISTS", "room exists");
    rooms.set(roomId, { roomName, members: new Set() });
    enter(socket, roomId, userName);
    const hostKey = randomUUID();
    socket.emit("roomCreated", { roomId, roomName, hostKey });
    ok(ack, { roomId, roomName, hostKey, userId: socket.data.userId, token: "-" });
  });

  socket.on("joinRoom", (payload, ack) => {
    const { roomId, userName } = payload || {};
    if (!rooms.has(roomId)) return fail(ack, "ROOM_NOT_FOUND", "no such room");
    const room = enter(socket, roomId, userName);
    ok(ack, { roomId, roomName: room.roomName, userId: socket.data.userId, isHost: false, token: "-" });
  });

  socket.on("leaveRoom", (_payload, ack) => {
    leave(socket);
    ok(ack, {});
  });

  socket.on("message", (payload, ack) => {
    const { roomId, message } = payload || {};
    if (!roomId || roomId !== socket.data.roomId) return fail(ack, "NOT_IN_ROOM", "not in room");
    const id = randomUUID();
    const timestamp = Date.now();
    io.to(roomId).emit("message", {
      id, roomId, userId: socket.data.userId, userName: socket.data.userName, message, timestamp,
    });
    ok(ack, { id, timestamp });
  });

  socket.on("disconnect", () => leave(socket));
});

http.listen(port, host, () => {
  console.log(`listening ${http.address().port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
