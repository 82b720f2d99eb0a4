// Walks Parley's wire contract end to end with the JavaScript Socket.IO client.
//
//   node walk.mjs http://127.0.0.1:8080
//
// Every event and endpoint of the original API table is exercised by two or three real
// clients (one on the default polling-then-websocket transport, one on WebSocket only, one on
// long-polling only). One line is printed per step; the exit status is 0 only when every step
// checked out, 1 with the failing step otherwise, 2 on a usage error.

import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { io } from "socket.io-client";

const WAIT_MS = 5000;
const QUIET_MS = 300;

const baseUrl = (process.argv[2] || "").replace(/\/+$/, "");
if (!/^https?:\/\/[^/]+$/.test(baseUrl)) {
  console.error("usage: node walk.mjs <server url, e.g. http://127.0.0.1:8080>");
  process.exit(2);
}

class StepFailure extends Error {}

function check(condition, what) {
  if (!condition) throw new StepFailure(what);
}

function show(value) {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isMillis(value) {
  return Number.isInteger(value) && value > 1_500_000_000_000 && value < 4_000_000_000_000;
}

// --- a client that records every event it receives --------------------------------------

class Client {
  constructor(label, transports) {
    this.label = label;
    this.received = []; // [{ event, args, seen }]
    this.waiters = new Set();
    const options = { forceNew: true, reconnection: false, timeout: WAIT_MS };
    if (transports) options.transports = transports;
    this.socket = io(baseUrl, options);
    this.socket.onAny((event, ...args) => {
      const entry = { event, args, seen: false };
      this.received.push(entry);
      for (const waiter of [...this.waiters]) waiter(entry);
    });
  }

  connected() {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      const timer = setTimeout(() => reject(new StepFailure(`${this.label}: no connection`)), WAIT_MS);
      this.socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(new StepFailure(`${this.label}: connect_error ${err.message}`));
      });
    });
  }

  // Emits an event and resolves with the acknowledgement.
  async request(event, payload) {
    try {
      const args = payload === undefined ? [] : [payload];
      return await this.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
    } catch (err) {
      throw new StepFailure(`${this.label}: no ack for ${event} within ${WAIT_MS} ms (${err.message})`);
    }
  }

  // Emits an event without asking for an acknowledgement (as the seed clients do).
  ask(event, payload) {
    if (payload === undefined) this.socket.emit(event);
    else this.socket.emit(event, payload);
  }

  // Resolves with the first argument of the next unseen `event` for which `match` holds.
  waitFor(event, match = () => true, what = event) {
    return new Promise((resolve, reject) => {
      const take = (entry) => {
        if (entry.seen || entry.event !== event || !match(entry.args[0])) return false;
        entry.seen = true;
        resolve(entry.args[0]);
        return true;
      };
      for (const entry of this.received) if (take(entry)) return;
      const waiter = (entry) => {
        if (take(entry)) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new StepFailure(`${this.label}: no ${what} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      this.waiters.add(waiter);
    });
  }

  // Fails if an unseen `event` matching `match` arrives within QUIET_MS.
  async expectNone(event, match = () => true, what = event) {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const hit = this.received.find((e) => !e.seen && e.event === event && match(e.args[0]));
    check(!hit, `${this.label} received ${what} it should not: ${show(hit && hit.args)}`);
  }

  close() {
    this.socket.disconnect();
  }
}

function expectOk(ack, what) {
  check(isObject(ack), `${what}: ack is not an object: ${show(ack)}`);
  check(ack.ok === true, `${what}: ack is not ok: ${show(ack)}`);
  check("data" in ack, `${what}: ack has no data: ${show(ack)}`);
  return ack.data;
}

function expectError(ack, code, what) {
  check(isObject(ack) && ack.ok === false, `${what}: expected a failed ack, got ${show(ack)}`);
  check(isObject(ack.error), `${what}: ack.error is not an object: ${show(ack)}`);
  check(ack.error.code === code, `${what}: expected ${code}, got ${show(ack.error)}`);
  check(typeof ack.error.message === "string" && ack.error.message.length > 0,
    `${what}: error without a message: ${show(ack.error)}`);
}

function checkRoom(room) {
  check(isObject(room), `Room is not an object: ${show(room)}`);
  check(typeof room.roomId === "string" && typeof room.roomName === "string", `Room ids: ${show(room)}`);
  check(Number.isInteger(room.participants), `Room.participants is not a count: ${show(room)}`);
  check(isMillis(room.createdAt), `Room.createdAt is not epoch ms: ${show(room)}`);
}

function checkUser(user) {
  check(isObject(user), `User is not an object: ${show(user)}`);
  check(typeof user.userId === "string" && typeof user.userName === "string", `User ids: ${show(user)}`);
  for (const flag of ["isHost", "isStreaming", "isScreenSharing"]) {
    check(typeof user[flag] === "boolean", `User.${flag} is not a boolean: ${show(user)}`);
  }
  check(isMillis(user.joinedAt), `User.joinedAt is not epoch ms: ${show(user)}`);
}

function checkMessage(msg, expected) {
  check(isObject(msg), `Message is not an object: ${show(msg)}`);
  check(typeof msg.id === "string" || Number.isInteger(msg.id), `Message.id: ${show(msg)}`);
  check(isMillis(msg.timestamp), `Message.timestamp is not epoch ms: ${show(msg)}`);
  for (const [key, value] of Object.entries(expected)) {
    check(msg[key] === value, `Message.${key}: expected ${show(value)}, got ${show(msg)}`);
  }
}

async function http(method, path, init = {}) {
  try {
    return await fetch(`${baseUrl}${path}`, { method, signal: AbortSignal.timeout(WAIT_MS), ...init });
  } catch (err) {
    throw new StepFailure(`${method} ${path}: ${err.message}`);
  }
}

async function jsonBody(response, what) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new StepFailure(`${what}: body is not JSON: ${show(text)}`);
  }
}

// --- the walk ------------------------------------------------------------------------------

const state = {};
const clients = [];
const roomId = `conf-${randomBytes(6).toString("hex")}`;
const roomName = "Conformance walk";
const fileBytes = Buffer.concat([Buffer.from("Parley conformance \u00e9\u00e8\n", "utf8"), randomBytes(70_000)]);
const fileName = "notes 2024 \u00e9t\u00e9.bin";

const steps = [
  ["GET /health", async () => {
    const response = await http("GET", "/health");
    check(response.status === 200, `status ${response.status}`);
    const body = await jsonBody(response, "health");
    check(body.status === "ok", `status field: ${show(body)}`);
  }],

  ["GET /get-connection-info", async () => {
    const response = await http("GET", "/get-connection-info");
    check(response.status === 200, `status ${response.status}`);
    const body = await jsonBody(response, "connection info");
    check(Array.isArray(body.iceServers), `iceServers is not a list: ${show(body)}`);
    check(isObject(body.media) && typeof body.media.engine === "string", `media.engine: ${show(body)}`);
    check(isObject(body.limits) && Number.isInteger(body.limits.maxUploadBytes),
      `limits.maxUploadBytes: ${show(body)}`);
  }],

  ["connect three clients (polling+upgrade, websocket, polling)", async () => {
    state.alice = new Client("alice", undefined);
    state.bob = new Client("bob", ["websocket"]);
    state.carol = new Client("carol", ["polling"]);
    clients.push(state.alice, state.bob, state.carol);
    await Promise.all(clients.map((c) => c.connected()));
  }],

  ["createRoom -> ack + roomCreated", async () => {
    const ack = await state.alice.request("createRoom", { userName: "Alice", roomName, customRoomId: roomId });
    const data = expectOk(ack, "createRoom");
    check(data.roomId === roomId && data.roomName === roomName, `ack data: ${show(data)}`);
    for (const key of ["hostKey", "userId", "token"]) {
      check(typeof data[key] === "string" && data[key].length > 0, `ack data.${key}: ${show(data)}`);
    }
    const event = await state.alice.waitFor("roomCreated", undefined, "roomCreated");
    check(event.roomId === roomId && event.roomName === roomName, `roomCreated: ${show(event)}`);
    check(event.hostKey === data.hostKey, `roomCreated.hostKey differs from the ack's`);
    state.aliceId = data.userId;
  }],

  ["getRoomsList -> ack alone; without an ack -> roomsList", async () => {
    const ack = await state.bob.request("getRoomsList");
    const data = expectOk(ack, "getRoomsList");
    check(Array.isArray(data), `ack data is not a list: ${show(data)}`);
    await state.bob.expectNone("roomsList", undefined, "roomsList after an ack");
    state.bob.ask("getRoomsList");
    const rooms = await state.bob.waitFor("roomsList", Array.isArray, "roomsList");
    const room = rooms.find((r) => r && r.roomId === roomId);
    check(room, `room ${roomId} not listed: ${show(rooms)}`);
    checkRoom(room);
    check(room.roomName === roomName && room.participants === 1, `listed room: ${show(room)}`);
  }],

  ["joinRoom (bob) -> ack, userJoined to alice", async () => {
    const ack = await state.bob.request("joinRoom", { roomId, userName: "Bob" });
    const data = expectOk(ack, "joinRoom");
    check(data.roomId === roomId && data.roomName === roomName, `ack data: ${show(data)}`);
    check(typeof data.userId === "string" && typeof data.token === "string", `ack ids: ${show(data)}`);
    check(data.isHost === false, `bob should not be host: ${show(data)}`);
    check(Array.isArray(data.users) && Array.isArray(data.streams), `users/streams: ${show(data)}`);
    data.users.forEach(checkUser);
    check(data.users.some((u) => u.userId === state.aliceId), `alice missing from users: ${show(data.users)}`);
    state.bobId = data.userId;
    state.bobToken = data.token;
    const joined = await state.alice.waitFor("userJoined", (e) => e && e.userId === data.userId, "userJoined(bob)");
    check(joined.userName === "Bob", `userJoined: ${show(joined)}`);
    await state.bob.expectNone("userJoined", (e) => e && e.userId === data.userId, "its own userJoined");
  }],

  ["joinRoom (carol) -> userJoined to alice and bob", async () => {
    const data = expectOk(await state.carol.request("joinRoom", { roomId, userName: "Carol" }), "joinRoom");
    state.carolId = data.userId;
    for (const c of [state.alice, state.bob]) {
      const joined = await c.waitFor("userJoined", (e) => e && e.userId === data.userId, "userJoined(carol)");
      check(joined.userName === "Carol", `userJoined: ${show(joined)}`);
    }
  }],

  ["getUsers -> ack alone; without an ack -> getUsers event", async () => {
    const data = expectOk(await state.alice.request("getUsers", { roomId }), "getUsers");
    check(Array.isArray(data) && data.length === 3, `ack data: ${show(data)}`);
    await state.alice.expectNone("getUsers", undefined, "getUsers event after an ack");
    state.alice.ask("getUsers", { roomId });
    const users = await state.alice.waitFor("getUsers", Array.isArray, "getUsers event");
    check(users.length === 3, `expected 3 users, got ${show(users)}`);
    users.forEach(checkUser);
    const byId = Object.fromEntries(users.map((u) => [u.userId, u]));
    check(byId[state.aliceId] && byId[state.aliceId].userName === "Alice" && byId[state.aliceId].isHost,
      `alice (host): ${show(users)}`);
    check(byId[state.bobId] && byId[state.bobId].userName === "Bob" && !byId[state.bobId].isHost,
      `bob: ${show(users)}`);
    check(byId[state.carolId] && byId[state.carolId].userName === "Carol", `carol: ${show(users)}`);
  }],

  ["POST /upload-file (multipart file + roomId, bearer token)", async () => {
    const form = new FormData();
    form.append("roomId", roomId);
    form.append("file", new Blob([fileBytes], { type: "application/octet-stream" }), fileName);
    const response = await http("POST", "/upload-file", {
      body: form,
      headers: { Authorization: `Bearer ${state.bobToken}` },
    });
    const body = await jsonBody(response, "upload");
    check(response.status === 201, `status ${response.status}: ${show(body)}`);
    check(typeof body.filename === "string" && body.filename.length > 0, `filename: ${show(body)}`);
    check(body.originalName === fileName, `originalName: ${show(body)}`);
    check(body.size === fileBytes.length, `size: ${show(body)}`);
    check(typeof body.mimeType === "string" && typeof body.url === "string", `mimeType/url: ${show(body)}`);
    state.upload = body;
  }],

  ["message with file attachment -> ack, broadcast to all three", async () => {
    const sentAt = Date.now();
    const ack = await state.bob.request("message", {
      roomId, message: "here are the notes", timestamp: sentAt, file: { filename: state.upload.filename },
    });
    const data = expectOk(ack, "message");
    check(isObject(data) && data.id !== undefined && isMillis(data.timestamp), `ack data: ${show(data)}`);
    for (const c of clients) {
      const msg = await c.waitFor("message", (m) => m && m.id === data.id, "message(file)");
      checkMessage(msg, { roomId, userId: state.bobId, userName: "Bob", message: "here are the notes" });
      check(isObject(msg.file), `message.file missing: ${show(msg)}`);
      check(msg.file.filename === state.upload.filename && msg.file.originalName === fileName
        && msg.file.size === fileBytes.length && typeof msg.file.url === "string", `message.file: ${show(msg)}`);
    }
    state.fileMessageId = data.id;
  }],

  ["message broadcast (sender included)", async () => {
    const data = expectOk(await state.alice.request("message", {
      roomId, message: "welcome, everyone", timestamp: Date.now(),
    }), "message");
    for (const c of clients) {
      const msg = await c.waitFor("message", (m) => m && m.id === data.id, "message(text)");
      checkMessage(msg, { roomId, userId: state.aliceId, userName: "Alice", message: "welcome, everyone" });
      check(msg.file === undefined || msg.file === null, `unexpected file: ${show(msg)}`);
    }
    state.textMessageId = data.id;
  }],

  ["getChatHistory -> ack alone; without an ack -> chatHistory, oldest first", async () => {
    const data = expectOk(await state.carol.request("getChatHistory", { roomId }), "getChatHistory");
    check(Array.isArray(data), `ack data is not a list: ${show(data)}`);
    await state.carol.expectNone("chatHistory", undefined, "chatHistory after an ack");
    state.carol.ask("getChatHistory", { roomId });
    const history = await state.carol.waitFor("chatHistory", Array.isArray, "chatHistory");
    const ids = history.map((m) => m && m.id);
    check(ids.length === 2 && ids[0] === state.fileMessageId && ids[1] === state.textMessageId,
      `expected [${state.fileMessageId}, ${state.textMessageId}], got ${show(ids)}`);
    checkMessage(history[0], { userName: "Bob", message: "here are the notes" });
    check(history[0].file && history[0].file.filename === state.upload.filename, `history file: ${show(history[0])}`);
    checkMessage(history[1], { userName: "Alice", message: "welcome, everyone" });
  }],

  ["GET /download-file/:filename (the signed url given, bytes identical)", async () => {
    check(state.upload.url.startsWith(`/download-file/${state.upload.filename}?`), `url: ${show(state.upload.url)}`);
    const response = await http("GET", state.upload.url);
    check(response.status === 200, `status ${response.status}`);
    const body = Buffer.from(await response.arrayBuffer());
    check(body.equals(fileBytes), `bytes differ (${body.length} received, ${fileBytes.length} sent)`);
    const disposition = response.headers.get("content-disposition") || "";
    check(/^attachment/i.test(disposition), `Content-Disposition: ${show(disposition)}`);
    check((response.headers.get("x-content-type-options") || "").toLowerCase() === "nosniff",
      "X-Content-Type-Options is not nosniff");
    const bare = await http("GET", `/download-file/${encodeURIComponent(state.upload.filename)}`);
    check(bare.status === 401, `the bare filename answered ${bare.status}`);
  }],

  ["startStream / stopStream -> streamStarted / streamStopped to the others", async () => {
    expectOk(await state.bob.request("startStream", { roomId }), "startStream");
    for (const c of [state.alice, state.carol]) {
      await c.waitFor("streamStarted", (e) => e && e.userId === state.bobId, "streamStarted(bob)");
    }
    const users = expectOk(await state.alice.request("getUsers", { roomId }), "getUsers");
    check(users.find((u) => u.userId === state.bobId)?.isStreaming === true, `isStreaming: ${show(users)}`);
    expectOk(await state.bob.request("stopStream", { roomId }), "stopStream");
    for (const c of [state.alice, state.carol]) {
      await c.waitFor("streamStopped", (e) => e && e.userId === state.bobId, "streamStopped(bob)");
    }
    await state.bob.expectNone("streamStarted", () => true, "its own streamStarted");
  }],

  ["startScreen / stopScreen -> screenStarted to the others, screenStopped to all", async () => {
    expectOk(await state.carol.request("startScreen", { roomId }), "startScreen");
    for (const c of [state.alice, state.bob]) {
      await c.waitFor("screenStarted", (e) => e && e.userId === state.carolId, "screenStarted(carol)");
    }
    expectOk(await state.carol.request("stopScreen", { roomId }), "stopScreen");
    for (const c of clients) {
      await c.waitFor("screenStopped", (e) => e && e.userId === state.carolId, "screenStopped(carol)");
    }
  }],

  ["roomError on bad requests (ack error + roomError event)", async () => {
    state.dave = new Client("dave", ["websocket"]);
    clients.push(state.dave);
    await state.dave.connected();
    const cases = [
      ["joinRoom", { roomId: `missing-${randomBytes(6).toString("hex")}`, userName: "Dave" }, "ROOM_NOT_FOUND"],
      ["createRoom", { userName: "Dave", roomName: "Copy", customRoomId: roomId }, "ROOM_EXISTS"],
      ["createRoom", { userName: "", roomName: "Nameless" }, "INVALID_PAYLOAD"],
      ["getUsers", { roomId }, "NOT_IN_ROOM"],
    ];
    for (const [event, payload, code] of cases) {
      expectError(await state.dave.request(event, payload), code, event);
      const err = await state.dave.waitFor("roomError", (e) => e && e.event === event, `roomError(${event})`);
      check(err.error === code && typeof err.message === "string", `roomError for ${event}: ${show(err)}`);
    }
    expectError(await state.bob.request("endMeeting", { roomId, userName: "Alice" }), "FORBIDDEN",
      "endMeeting by a guest naming the host");
    const err = await state.bob.waitFor("roomError", (e) => e && e.event === "endMeeting", "roomError(endMeeting)");
    check(err.error === "FORBIDDEN", `roomError: ${show(err)}`);
  }],

  ["leaveRoom -> userLeft to the room", async () => {
    expectOk(await state.carol.request("leaveRoom", { roomId, userName: "Carol" }), "leaveRoom");
    for (const c of [state.alice, state.bob]) {
      const left = await c.waitFor("userLeft", (e) => e && e.userId === state.carolId, "userLeft(carol)");
      check(left.userName === "Carol", `userLeft: ${show(left)}`);
    }
    const users = expectOk(await state.alice.request("getUsers", { roomId }), "getUsers");
    check(users.length === 2 && !users.some((u) => u.userId === state.carolId), `users: ${show(users)}`);
  }],

  ["endMeeting (host) -> meetingEnded to the room", async () => {
    expectOk(await state.alice.request("endMeeting", { roomId, userName: "Alice" }), "endMeeting");
    for (const c of [state.alice, state.bob]) {
      const ended = await c.waitFor("meetingEnded", () => true, "meetingEnded");
      check(isObject(ended) && ended.roomId === roomId && typeof ended.endedBy === "string",
        `meetingEnded: ${show(ended)}`);
    }
    await state.carol.expectNone("meetingEnded", () => true, "meetingEnded after leaving");
  }],

  ["after endMeeting: room gone, its files gone", async () => {
    const rooms = expectOk(await state.dave.request("getRoomsList"), "getRoomsList");
    check(!rooms.some((r) => r && r.roomId === roomId), `ended room still listed: ${show(rooms)}`);
    expectError(await state.dave.request("joinRoom", { roomId, userName: "Dave" }), "ROOM_NOT_FOUND",
      "joinRoom of an ended room");
    const response = await http("GET", state.upload.url);
    check(response.status === 404, `download after endMeeting answered ${response.status}`);
  }],
];

let failed = false;
for (const [name, run] of steps) {
  const started = Date.now();
  try {
    await run();
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    const reason = err instanceof StepFailure ? err.message : (err && err.stack) || String(err);
    console.log(`FAIL  ${name}: ${reason}`);
    failed = true;
    break;
  }
}
for (const c of clients) c.close();
await new Promise((resolve) => setTimeout(resolve, 200)); // let the close packets go out
console.log(failed ? "conformance walk failed" : `conformance walk passed: ${steps.length} steps`);
process.exit(failed ? 1 : 0);
