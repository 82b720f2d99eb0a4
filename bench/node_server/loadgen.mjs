// Load generator for the chat benchmark, used unchanged against Parley and the reference server.
//
//   node loadgen.mjs '<json options>'
//
// Options: url, rooms, clientsPerRoom, mode ("saturate" | "rate"), window (messages in flight
// per client when saturating), rate (target deliveries/s when mode is "rate"), warmupSeconds,
// durationSeconds, roomPrefix, messageBytes, waitForGo (wait for a line "go" on stdin after
// joining, so that several generator processes chat over the same window).
//
// It connects rooms x clientsPerRoom WebSocket clients, creates each room with its first client
// and joins the others (rooms in parallel, joins within a room one after another), then chats:
// every message carries its send time, every receiver measures the delivery latency. Progress
// goes to stderr; stdout gets {"phase":"joined"} after the joins and one JSON result at the end,
// latencies as histograms { "<ms, 3 significant figures>": count }.

import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const opts = {
  url: "http://127.0.0.1:8080",
  rooms: 20,
  clientsPerRoom: 10,
  mode: "saturate",
  window: 2,
  rate: 1000,
  warmupSeconds: 2,
  durationSeconds: 10,
  roomPrefix: "bench",
  messageBytes: 64,
  ackTimeoutMs: 10000,
  waitForGo: false,
  ...JSON.parse(process.argv[2] || "{}"),
};

const log = (text) => process.stderr.write(`loadgen: ${text}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Latencies are kept as a histogram with three significant figures (0.5% resolution), so that
// the results of several generator processes can be merged exactly.
class Histogram {
  constructor() {
    this.counts = new Map();
    this.count = 0;
  }

  add(ms) {
    const key = ms <= 0 ? 0 : Number(ms.toPrecision(3));
    this.counts.set(key, (this.counts.get(key) || 0) + 1);
    this.count += 1;
  }

  toJSON() {
    return Object.fromEntries(this.counts);
  }
}

async function connect(url) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 20000 });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

// Waits for a line "go" on stdin: the benchmark starts every generator process at once.
function waitForGo() {
  return new Promise((resolve) => {
    let buffered = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => {
      buffered += chunk;
      if (buffered.includes("go\n")) {
        process.stdin.pause();
        resolve();
      }
    });
  });
}

async function request(socket, event, payload) {
  const ack = await socket.timeout(opts.ackTimeoutMs).emitWithAck(event, payload);
  if (!ack || ack.ok !== true) throw new Error(`${event} failed: ${JSON.stringify(ack)}`);
  return ack.data;
}

// --- measurement state ---------------------------------------------------------------------

let measureFrom = Infinity; // perf time when the measured window opens
let measureTo = Infinity; // and closes
let deliveredInWindow = 0;
let deliveredTotal = 0;
let sentInWindow = 0;
let sentTotal = 0;
let ackedTotal = 0;
let ackErrors = 0;
let stopping = false;
const deliveryLatency = new Histogram(); // ms, for messages sent inside the window
const ackLatency = new Histogram();
const padding = "x".repeat(Math.max(0, opts.messageBytes - 24));

function onMessage(msg) {
  const now = performance.now();
  deliveredTotal += 1;
  if (now >= measureFrom && now < measureTo) deliveredInWindow += 1;
  const text = msg && msg.message;
  if (typeof text !== "string" || !text.startsWith("t=")) return;
  const sentAt = Number(text.slice(2, text.indexOf(" ")));
  if (sentAt >= measureFrom && sentAt < measureTo) deliveryLatency.add(now - sentAt);
}

function sendOne(client) {
  const sentAt = performance.now();
  sentTotal += 1;
  if (sentAt >= measureFrom && sentAt < measureTo) sentInWindow += 1;
  client.inFlight += 1;
  client.socket
    .timeout(opts.ackTimeoutMs)
    .emitWithAck("message", { roomId: client.roomId, message: `t=${sentAt.toFixed(3)} ${padding}` })
    .then(
      (ack) => {
        if (ack && ack.ok === true) {
          ackedTotal += 1;
          if (sentAt >= measureFrom && sentAt < measureTo) ackLatency.add(performance.now() - sentAt);
        } else {
          ackErrors += 1;
        }
      },
      () => {
        ackErrors += 1;
      },
    )
    .finally(() => {
      client.inFlight -= 1;
      if (opts.mode === "saturate" && !stopping) sendOne(client);
    });
}

// --- the run -------------------------------------------------------------------------------

async function main() {
  const total = opts.rooms * opts.clientsPerRoom;
  log(`connecting ${total} clients to ${opts.url}`);
  const clients = [];
  for (let r = 0; r < opts.rooms; r += 1) {
    for (let c = 0; c < opts.clientsPerRoom; c += 1) {
      clients.push({ room: r, index: c, roomId: `${opts.roomPrefix}-${r}`, inFlight: 0, socket: null });
    }
  }
  const connectStarted = performance.now();
  for (let i = 0; i < clients.length; i += 50) {
    await Promise.all(clients.slice(i, i + 50).map(async (client) => {
      client.socket = await connect(opts.url);
      client.socket.on("message", onMessage);
    }));
  }
  const connectSeconds = (performance.now() - connectStarted) / 1000;

  log("creating rooms and joining");
  const createLatency = new Histogram();
  const joinLatency = new Histogram();
  await Promise.all(Array.from({ length: opts.rooms }, async (_, r) => {
    const members = clients.filter((c) => c.room === r);
    let started = performance.now();
    await request(members[0].socket, "createRoom", {
      userName: "host", roomName: `Bench room ${r}`, customRoomId: members[0].roomId,
    });
    createLatency.add(performance.now() - started);
    for (const member of members.slice(1)) {
      started = performance.now();
      await request(member.socket, "joinRoom", { roomId: member.roomId, userName: `user ${member.index}` });
      joinLatency.add(performance.now() - started);
    }
  }));
  process.stdout.write(`${JSON.stringify({ phase: "joined" })}\n`);
  if (opts.waitForGo) await waitForGo();

  const cpuStart = process.cpuUsage();
  const start = performance.now();
  measureFrom = start + opts.warmupSeconds * 1000;
  measureTo = measureFrom + opts.durationSeconds * 1000;
  log(`chatting (${opts.mode}) for ${opts.warmupSeconds}+${opts.durationSeconds} s`);

  if (opts.mode === "saturate") {
    for (const client of clients) for (let w = 0; w < opts.window; w += 1) sendOne(client);
    await sleep(measureTo - performance.now());
  } else {
    // Open loop: messages/s = deliveries/s / fan-out, spread round-robin over the clients.
    const messagesPerMs = opts.rate / opts.clientsPerRoom / 1000;
    let due = 0;
    let next = 0;
    let last = performance.now();
    while (performance.now() < measureTo) {
      const now = performance.now();
      due += (now - last) * messagesPerMs;
      last = now;
      while (due >= 1) {
        sendOne(clients[next]);
        next = (next + 1) % clients.length;
        due -= 1;
      }
      await sleep(2);
    }
  }
  stopping = true;
  const cpu = process.cpuUsage(cpuStart);
  const wall = (performance.now() - start) / 1000;

  // Let in-flight messages land.
  const drainUntil = performance.now() + opts.ackTimeoutMs;
  while (clients.some((c) => c.inFlight > 0) && performance.now() < drainUntil) await sleep(20);
  await sleep(200);

  const expectedDeliveries = sentInWindow * opts.clientsPerRoom;
  const result = {
    phase: "done",
    mode: opts.mode,
    clients: total,
    rooms: opts.rooms,
    clientsPerRoom: opts.clientsPerRoom,
    connectSeconds,
    measuredSeconds: opts.durationSeconds,
    sentInWindow,
    sentTotal,
    ackedTotal,
    ackErrors,
    deliveredTotal,
    deliveredPerSecond: deliveredInWindow / opts.durationSeconds,
    messagesPerSecond: sentInWindow / opts.durationSeconds,
    missingDeliveries: Math.max(0, expectedDeliveries - deliveryLatency.count),
    deliveryLatencyMs: deliveryLatency,
    ackLatencyMs: ackLatency,
    createLatencyMs: createLatency,
    joinLatencyMs: joinLatency,
    loadgenCpuPercent: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
  };
  for (const client of clients) client.socket.disconnect();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
