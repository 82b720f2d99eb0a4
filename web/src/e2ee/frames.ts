/**
 * Encrypting and decrypting encoded media frames (docs/protocol.md, "End-to-end encryption"):
 * `clear ‖ ciphertext+tag ‖ IV(12) ‖ keyId(1)`, AES-GCM with the sender's key, the clear bytes
 * authenticated. VP8 keeps 10 bytes of a keyframe and 3 of a delta frame in clear (the SFU reads
 * them), Opus its TOC byte. Runs in the transform worker, or on the page where only
 * `createEncodedStreams` exists.
 */
import { mediaKey } from "./keys";

export type FrameKind = "audio" | "video";

/** What both kinds of encoded frame have in common. */
export interface EncodedFrame {
  data: ArrayBuffer;
  type?: string;
}

const IV_BYTES = 12;
const TRAILER = IV_BYTES + 1;
const TAG_BYTES = 16;

export function clearBytes(kind: FrameKind, frame: EncodedFrame): number {
  if (kind === "audio") return 1;
  return frame.type === "key" ? 10 : 3;
}

export class FrameCrypto {
  private readonly raw = new Map<number, Uint8Array>();
  private readonly keys = new Map<string, Promise<CryptoKey>>();
  private current = 0;

  /** The meeting keys by id and the one to send with. */
  setKeys(keys: [number, Uint8Array][], current: number): void {
    for (const [id, key] of keys) {
      const had = this.raw.get(id);
      if (had && had.length === key.length && had.every((b, i) => b === key[i])) continue;
      this.raw.set(id, key);
      for (const name of [...this.keys.keys()]) if (name.startsWith(`${id}:`)) this.keys.delete(name);
    }
    this.current = current;
  }

  private key(keyId: number, userId: string): Promise<CryptoKey> | null {
    const raw = this.raw.get(keyId);
    if (!raw) return null;
    const name = `${keyId}:${userId}`;
    let key = this.keys.get(name);
    if (!key) {
      key = mediaKey(raw, userId);
      this.keys.set(name, key);
    }
    return key;
  }

  /** A transform that encrypts one sender's frames (its own IV salt and counter). */
  encrypter(kind: FrameKind, userId: string): (frame: EncodedFrame) => Promise<EncodedFrame | null> {
    const salt = crypto.getRandomValues(new Uint8Array(4));
    let counter = 0;
    return async (frame) => {
      if (frame.data.byteLength === 0) return frame;
      const keyId = this.current;
      const key = this.key(keyId, userId);
      if (!key) return null;
      const data = new Uint8Array(frame.data);
      const clear = Math.min(clearBytes(kind, frame), data.length);
      const iv = new Uint8Array(IV_BYTES);
      iv.set(salt, 0);
      new DataView(iv.buffer).setBigUint64(4, BigInt(counter++));
      const sealed = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: data.subarray(0, clear) },
          await key,
          data.subarray(clear),
        ),
      );
      const out = new Uint8Array(clear + sealed.length + TRAILER);
      out.set(data.subarray(0, clear), 0);
      out.set(sealed, clear);
      out.set(iv, clear + sealed.length);
      out[out.length - 1] = keyId;
      frame.data = out.buffer;
      return frame;
    };
  }

  /** A transform that decrypts the frames of `userId`'s sender; null for a frame that does not
   * decrypt. */
  decrypter(kind: FrameKind, userId: string): (frame: EncodedFrame) => Promise<EncodedFrame | null> {
    return async (frame) => {
      if (frame.data.byteLength === 0) return frame;
      const data = new Uint8Array(frame.data);
      const clear = clearBytes(kind, frame);
      if (data.length < clear + TAG_BYTES + TRAILER) return null;
      const key = this.key(data[data.length - 1]!, userId);
      if (!key) return null;
      const iv = data.subarray(data.length - TRAILER, data.length - 1);
      try {
        const plain = new Uint8Array(
          await crypto.subtle.decrypt(
            { name: "AES-GCM", iv, additionalData: data.subarray(0, clear) },
            await key,
            data.subarray(clear, data.length - TRAILER),
          ),
        );
        const out = new Uint8Array(clear + plain.length);
        out.set(data.subarray(0, clear), 0);
        out.set(plain, clear);
        frame.data = out.buffer;
        return frame;
      } catch {
        return null;
      }
    };
  }
}

/** Options given to each transform (also through `RTCRtpScriptTransform`). */
export interface TransformOptions {
  operation: "encrypt" | "decrypt";
  kind: FrameKind;
  userId: string;
  /** Names the receiver in status reports. */
  id: string;
}

/** Whether a receiver's frames decrypt, reported when it changes. */
export interface FrameStatus {
  type: "status";
  id: string;
  ok: boolean;
}

/** Pipes `readable` to `writable` through `crypto`, reporting each receiver's status. */
export function pipe(
  fc: FrameCrypto,
  options: TransformOptions,
  readable: ReadableStream<EncodedFrame>,
  writable: WritableStream<EncodedFrame>,
  report: (status: FrameStatus) => void,
): void {
  const step = options.operation === "encrypt"
    ? fc.encrypter(options.kind, options.userId)
    : fc.decrypter(options.kind, options.userId);
  let last: boolean | null = null;
  const stream = new TransformStream<EncodedFrame, EncodedFrame>({
    async transform(frame, controller) {
      const out = await step(frame);
      if (options.operation === "decrypt" && frame.data.byteLength > 0) {
        const ok = out !== null;
        if (ok !== last) {
          last = ok;
          report({ type: "status", id: options.id, ok });
        }
      }
      if (out) controller.enqueue(out);
    },
  });
  void readable.pipeThrough(stream).pipeTo(writable).catch(() => undefined);
}
