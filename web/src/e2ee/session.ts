/**
 * One meeting's end-to-end encryption in the browser: the key ring, the frame transforms of
 * every sender and receiver, chat and file encryption, and key rotation when someone leaves
 * (docs/protocol.md, "End-to-end encryption"). The server only relays what this sends.
 */
import type { Events, ParleyClient } from "../protocol";
import { CANNOT_DECRYPT, decryptFile, decryptText, encryptFile, encryptText, plainName } from "./content";
import { FrameCrypto, pipe, type EncodedFrame, type FrameKind, type FrameStatus, type TransformOptions } from "./frames";
import { fromBase64Url, hkdf, KeyRing, toBase64Url } from "./keys";
import { saveMeetingKey } from "./store";

export interface E2eeHooks {
  selfId(): string;
  /** Everyone in the room now (ourselves too). */
  people(): { userId: string; isHost: boolean }[];
  /** A receiver's frames started or stopped decrypting. */
  changed(): void;
}

type Encoded = { readable: ReadableStream<EncodedFrame>; writable: WritableStream<EncodedFrame> };
type WithStreams = { createEncodedStreams?: () => Encoded; transform?: unknown };

declare const RTCRtpScriptTransform: {
  new (worker: Worker, options: TransformOptions): unknown;
} | undefined;

const IV_BYTES = 12;

export class E2eeSession {
  ring: KeyRing | null = null;
  private worker: Worker | null = null;
  /** Where only `createEncodedStreams` exists: the frames are transformed on the page. */
  private readonly local = new FrameCrypto();
  private readonly failing = new Map<string, { userId: string; ok: boolean }>();
  private readonly publicKeys = new Map<string, CryptoKey>();
  private readonly publicRaw = new Map<string, string>();
  private readonly pending = new Map<string, Events["e2eeKey"][]>();
  private pair: Promise<CryptoKeyPair> | null = null;
  private rotationDue = false;
  /** Who left since we last heard their public key: no new key goes to them. */
  private readonly gone = new Set<string>();
  private nextId = 0;
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly client: ParleyClient,
    private readonly roomId: string,
    private readonly hooks: E2eeHooks,
  ) {}

  /** Whether encoded transforms exist in this browser. */
  static get supported(): boolean {
    return typeof RTCRtpScriptTransform !== "undefined" ||
      (typeof RTCRtpSender !== "undefined" && "createEncodedStreams" in RTCRtpSender.prototype);
  }

  /** Uses `key` as the meeting key (id 0) from now on: typed again, everything starts over. */
  setKey(key: Uint8Array): void {
    saveMeetingKey(this.roomId, key);
    this.ring = new KeyRing(key);
    // A new key pair: the others answer it as a newcomer's, and the rotating host sends every
    // rotation so far again, now under this key.
    this.pair = null;
    this.failing.clear();
    this.pushKeys();
    this.hooks.changed();
  }

  private pushKeys(): void {
    if (!this.ring) return;
    const keys = this.ring.entries();
    this.local.setKeys(keys, this.ring.current);
    this.worker?.postMessage({ type: "keys", keys, current: this.ring.current });
  }

  // --- media ----------------------------------------------------------------------------------

  /** Whether peer connections need `encodedInsertableStreams` (the fallback). */
  get insertableStreams(): boolean {
    return typeof RTCRtpScriptTransform === "undefined";
  }

  private transformWorker(): Worker {
    if (!this.worker) {
      this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "parley-e2ee" });
      this.worker.onmessage = (ev: MessageEvent<FrameStatus>) => this.status(ev.data);
      this.pushKeys();
    }
    return this.worker;
  }

  private attach(target: WithStreams, options: TransformOptions): void {
    if (typeof RTCRtpScriptTransform !== "undefined") {
      target.transform = new RTCRtpScriptTransform(this.transformWorker(), options);
    } else if (target.createEncodedStreams) {
      const { readable, writable } = target.createEncodedStreams();
      pipe(this.local, options, readable, writable, (s) => this.status(s));
    }
  }

  protectSender(sender: RTCRtpSender, kind: FrameKind): void {
    this.attach(sender as unknown as WithStreams, { operation: "encrypt", kind, userId: this.hooks.selfId(), id: "" });
  }

  protectReceiver(receiver: RTCRtpReceiver, kind: FrameKind, userId: string): void {
    const id = `r${this.nextId++}`;
    this.failing.set(id, { userId, ok: true });
    this.attach(receiver as unknown as WithStreams, { operation: "decrypt", kind, userId, id });
  }

  private status(s: FrameStatus): void {
    const known = this.failing.get(s.id);
    if (!known || known.ok === s.ok) return;
    known.ok = s.ok;
    this.hooks.changed();
  }

  /** Whether what `userId` sends us does not decrypt. */
  cannotDecrypt(userId: string): boolean {
    return [...this.failing.values()].some((f) => f.userId === userId && !f.ok);
  }

  /** Marks each tile (`figure.tile[data-user-id]`) whose media does not decrypt. */
  decorate(root: HTMLElement): void {
    for (const tile of root.querySelectorAll<HTMLElement>("figure.tile[data-user-id]")) {
      const fail = this.cannotDecrypt(tile.dataset.userId ?? "");
      let note = tile.querySelector<HTMLElement>(".e2ee-fail");
      if (fail && !note) {
        note = document.createElement("p");
        note.className = "e2ee-fail";
        note.setAttribute("role", "status");
        note.textContent = CANNOT_DECRYPT;
        tile.appendChild(note);
      } else if (!fail && note) {
        note.remove();
      }
      tile.dataset.e2ee = fail ? "cannot-decrypt" : "ok";
    }
  }

  // --- chat and files -------------------------------------------------------------------------

  async encryptText(text: string): Promise<string> {
    return encryptText(this.ring!, text);
  }

  /** The message's plain text, or the "cannot decrypt" words. */
  async revealText(text: string): Promise<{ text: string; ok: boolean }> {
    const plain = await decryptText(this.ring, text);
    return plain === null ? { text: CANNOT_DECRYPT, ok: false } : { text: plain, ok: true };
  }

  encryptFile(file: File): Promise<File> {
    return encryptFile(this.ring!, file);
  }

  /** Downloads `url`, decrypts it here and saves it as `name`; false when it does not
   * decrypt. */
  async download(url: string, name: string): Promise<boolean> {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`download failed: ${response.status}`);
    const plain = await decryptFile(this.ring, await response.arrayBuffer());
    if (!plain) return false;
    const href = URL.createObjectURL(new Blob([plain as BlobPart]));
    const a = document.createElement("a");
    a.href = href;
    a.download = plainName(name);
    a.click();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    return true;
  }

  // --- key rotation ---------------------------------------------------------------------------

  /** Listens for public keys and key messages and tells the room our public key. */
  listen(): void {
    const on = <K extends keyof Events>(event: K, handler: (p: Events[K]) => void): void => {
      this.disposers.push(this.client.on(event, handler));
    };
    on("e2eePublicKey", (p) => void this.publicKey(p));
    on("e2eeKey", (p) => void this.keyMessage(p));
    on("userLeft", (u) => {
      this.gone.add(u.userId);
      this.rotationDue = true;
      void this.maybeRotate();
    });
    on("hostChanged", () => void this.maybeRotate());
  }

  /** Sends our public key to everyone else (after joining, or resuming). */
  async announce(): Promise<void> {
    this.pair ??= crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]) as Promise<CryptoKeyPair>;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", (await this.pair).publicKey));
    await this.client.request("e2eePublicKey", { roomId: this.roomId, publicKey: toBase64Url(raw) }).catch(() => undefined);
  }

  close(): void {
    for (const d of this.disposers.splice(0)) d();
    this.worker?.terminate();
    this.worker = null;
  }

  private async publicKey(p: Events["e2eePublicKey"]): Promise<void> {
    if (p.roomId !== this.roomId || !this.pair) return;
    const raw = fromBase64Url(p.publicKey);
    if (!raw) return;
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("raw", raw as BufferSource, { name: "ECDH", namedCurve: "P-256" }, false, []);
    } catch {
      return;
    }
    const isNew = this.publicRaw.get(p.userId) !== p.publicKey;
    this.gone.delete(p.userId);
    this.publicKeys.set(p.userId, key);
    this.publicRaw.set(p.userId, p.publicKey);
    if (isNew) {
      // A newcomer (or one we did not know): it learns ours, and, from the rotating host, every
      // rotation so far.
      const mine = new Uint8Array(await crypto.subtle.exportKey("raw", (await this.pair).publicKey));
      await this.client.request("e2eePublicKey", { roomId: this.roomId, publicKey: toBase64Url(mine), to: p.userId }).catch(() => undefined);
      if (this.rotator() === this.hooks.selfId()) await this.sendChain(p.userId);
    }
    for (const m of this.pending.get(p.userId)?.splice(0) ?? []) await this.keyMessage(m);
  }

  /** The present host whose id sorts first: the one who rotates. */
  private rotator(): string | undefined {
    return this.hooks.people().filter((u) => u.isHost).map((u) => u.userId).sort()[0];
  }

  private async wrappingKey(peer: string, keyId: number, under: Uint8Array): Promise<CryptoKey | null> {
    const theirs = this.publicKeys.get(peer);
    if (!theirs || !this.pair) return null;
    const shared = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "ECDH", public: theirs }, (await this.pair).privateKey, 256),
    );
    const ikm = new Uint8Array(shared.length + under.length);
    ikm.set(shared, 0);
    ikm.set(under, shared.length);
    const raw = await hkdf(ikm, `parley key ${keyId}`);
    return crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, ["encrypt", "decrypt"]);
  }

  private async sendStep(to: string, keyId: number, random: Uint8Array, under: Uint8Array): Promise<void> {
    const key = await this.wrappingKey(to, keyId, under);
    if (!key) return;
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, random as BufferSource));
    const payload = new Uint8Array(IV_BYTES + sealed.length);
    payload.set(iv, 0);
    payload.set(sealed, IV_BYTES);
    await this.client.request("e2eeKey", { roomId: this.roomId, to, keyId, payload: toBase64Url(payload) }).catch(() => undefined);
  }

  /** Every rotation so far, in order, for someone who may have only the first key. */
  private async sendChain(to: string): Promise<void> {
    const ring = this.ring;
    if (!ring) return;
    for (const step of ring.rotations) {
      const before = ring.raw((step.keyId + 255) % 256);
      if (before) await this.sendStep(to, step.keyId, step.random, before);
    }
  }

  private async maybeRotate(): Promise<void> {
    const ring = this.ring;
    if (!this.rotationDue || !ring || this.rotator() !== this.hooks.selfId()) return;
    this.rotationDue = false;
    const random = crypto.getRandomValues(new Uint8Array(32));
    const keyId = (ring.current + 1) % 256;
    const under = ring.currentKey;
    const self = this.hooks.selfId();
    for (const person of this.hooks.people()) {
      if (person.userId !== self && !this.gone.has(person.userId)) await this.sendStep(person.userId, keyId, random, under);
    }
    if (await ring.rotate(keyId, random)) this.pushKeys();
  }

  private async keyMessage(m: Events["e2eeKey"]): Promise<void> {
    const ring = this.ring;
    if (m.roomId !== this.roomId || !ring) return;
    if (!this.publicKeys.has(m.from)) {
      const list = this.pending.get(m.from) ?? [];
      if (list.length < 256) list.push(m);
      this.pending.set(m.from, list);
      return;
    }
    if (m.keyId !== (ring.current + 1) % 256) return; // one we have, or out of order
    const key = await this.wrappingKey(m.from, m.keyId, ring.currentKey);
    const data = fromBase64Url(m.payload);
    if (!key || !data || data.length <= IV_BYTES) return;
    let random: Uint8Array;
    try {
      random = new Uint8Array(
        await crypto.subtle.decrypt({ name: "AES-GCM", iv: data.subarray(0, IV_BYTES) as BufferSource }, key, data.subarray(IV_BYTES) as BufferSource),
      );
    } catch {
      return; // not for our key: a wrong meeting key, or not from someone who has it
    }
    this.rotationDue = false;
    if (await ring.rotate(m.keyId, random)) this.pushKeys();
  }
}
