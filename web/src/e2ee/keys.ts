/**
 * The meeting key of an end-to-end encrypted meeting (docs/protocol.md, "End-to-end
 * encryption"): made by the creating browser, carried in the link's fragment or typed as a
 * passphrase, never sent to the server. Every key derived from it is derived here.
 */

export const KEY_BYTES = 32;
const PBKDF2_ROUNDS = 310_000;
const enc = new TextEncoder();

export function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(KEY_BYTES));
}

/** The key in a link's fragment (`#k=<base64url>`), or null. */
export function keyFromFragment(hash: string): Uint8Array | null {
  const m = /(?:^#|&)k=([A-Za-z0-9_-]+)/.exec(hash);
  const key = m?.[1] ? fromBase64Url(m[1]) : null;
  return key && key.length === KEY_BYTES ? key : null;
}

export function fragmentFor(key: Uint8Array): string {
  return `#k=${toBase64Url(key)}`;
}

/** PBKDF2-SHA256 of the passphrase (NFC), salt = the room id, 310,000 rounds, 256 bits. */
export async function keyFromPassphrase(passphrase: string, roomId: string): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", enc.encode(passphrase.normalize("NFC")), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: enc.encode(roomId), iterations: PBKDF2_ROUNDS },
    base,
    KEY_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** What a person typed into "Meeting key": a whole link, a `#k=` fragment, a bare key, or a
 * passphrase. */
export async function keyFromInput(input: string, roomId: string): Promise<Uint8Array> {
  const text = input.trim();
  const hash = text.includes("#") ? text.slice(text.indexOf("#")) : "";
  const fromLink = hash ? keyFromFragment(hash) : null;
  if (fromLink) return fromLink;
  const bare = /^[A-Za-z0-9_-]{43}$/.test(text) ? fromBase64Url(text) : null;
  if (bare && bare.length === KEY_BYTES) return bare;
  return keyFromPassphrase(input, roomId);
}

/** HKDF-SHA256 of `ikm` (salt `salt`, info `info`) to `bits` bits. */
export async function hkdf(ikm: Uint8Array, info: string, salt: Uint8Array = new Uint8Array(0), bits = 256): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", ikm as BufferSource, "HKDF", false, ["deriveBits"]);
  const out = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: salt as BufferSource, info: enc.encode(info) },
    base,
    bits,
  );
  return new Uint8Array(out);
}

export function aesKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** The key a sender's media is encrypted with: HKDF(K, info "parley media " + userId). */
export async function mediaKey(meetingKey: Uint8Array, userId: string): Promise<CryptoKey> {
  return aesKey(await hkdf(meetingKey, `parley media ${userId}`));
}

/** The next meeting key: HKDF(K, salt R, info "parley rotate"). */
export function rotated(meetingKey: Uint8Array, random: Uint8Array): Promise<Uint8Array> {
  return hkdf(meetingKey, "parley rotate", random);
}

/**
 * The keys of one meeting by key id (0: the link's), the newest being the one to send with.
 * Older keys are kept to read what was sent with them.
 */
export class KeyRing {
  private readonly keys = new Map<number, Uint8Array>();
  private readonly derived = new Map<string, Promise<CryptoKey>>();
  /** The random values of each rotation so far, in order (for newcomers). */
  readonly rotations: { keyId: number; random: Uint8Array }[] = [];
  current = 0;

  constructor(first: Uint8Array) {
    this.keys.set(0, first);
  }

  raw(keyId: number): Uint8Array | undefined {
    return this.keys.get(keyId);
  }

  get currentKey(): Uint8Array {
    return this.keys.get(this.current)!;
  }

  entries(): [number, Uint8Array][] {
    return [...this.keys.entries()];
  }

  /** Moves to key `keyId` made from the current key and `random`; false when it is not the
   * next one (already there, or out of order). */
  async rotate(keyId: number, random: Uint8Array): Promise<boolean> {
    if (keyId !== (this.current + 1) % 256) return false;
    const next = await rotated(this.currentKey, random);
    this.keys.set(keyId, next);
    this.rotations.push({ keyId, random });
    this.current = keyId;
    return true;
  }

  /** The AES-GCM key for `purpose` ("chat", "file") under key `keyId`. */
  purposeKey(purpose: string, keyId = this.current): Promise<CryptoKey> | null {
    const raw = this.keys.get(keyId);
    if (!raw) return null;
    const name = `${keyId}:${purpose}`;
    let key = this.derived.get(name);
    if (!key) {
      key = hkdf(raw, `parley ${purpose}`).then(aesKey);
      this.derived.set(name, key);
    }
    return key;
  }
}
