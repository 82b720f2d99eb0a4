// Embedding Parley from a Node.js back end (Node 18+, no packages): create a meeting over the
// REST API, mint a join token for one of your users, and verify a webhook Parley sent you.
//
// Run: PARLEY_URL=https://meet.example.org PARLEY_API_KEY=... PARLEY_JWT_SECRET=... \
//      PARLEY_WEBHOOK_SECRET=... node embed.mjs
import { createHmac, timingSafeEqual } from "node:crypto";

const { PARLEY_URL, PARLEY_API_KEY, PARLEY_JWT_SECRET, PARLEY_WEBHOOK_SECRET } = process.env;

async function api(method, path, body) {
  const answer = await fetch(PARLEY_URL + path, {
    method,
    headers: { Authorization: `Bearer ${PARLEY_API_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${await answer.text()}`);
  return answer.status === 204 ? {} : answer.json();
}

const base64url = (data) => Buffer.from(data).toString("base64url");

// A join token (HS256 with the shared secret): your user's name, role and a stable id.
function joinLink(roomId, name, userId, host) {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = base64url(
    JSON.stringify({
      room: roomId,
      name,
      role: host ? "host" : "participant",
      sub: userId,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 600,
    }),
  );
  const signature = createHmac("sha256", PARLEY_JWT_SECRET).update(`${header}.${claims}`).digest();
  return `${PARLEY_URL}/r/${roomId}?jwt=${header}.${claims}.${base64url(signature)}`;
}

// Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
function verifyWebhook(signatureHeader, rawBody, toleranceSeconds = 300) {
  const parts = Object.fromEntries(signatureHeader.split(",").map((p) => p.split("=", 2)));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac("sha256", PARLEY_WEBHOOK_SECRET).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1 ?? "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const meeting = await api("POST", "/api/v1/rooms", { roomName: "Quarterly review" });
console.log("meeting", meeting.roomId);
console.log("host link", joinLink(meeting.roomId, "Dana", "emp-7", true));
console.log("guest link", joinLink(meeting.roomId, "Sam", "emp-8", false));
if (process.env.SAMPLE_WEBHOOK_BODY) {
  const ok = verifyWebhook(process.env.SAMPLE_WEBHOOK_SIGNATURE, process.env.SAMPLE_WEBHOOK_BODY);
  console.log("webhook verified", ok);
}
