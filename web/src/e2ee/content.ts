/**
 * Chat text and file contents of an end-to-end encrypted meeting: AES-GCM under keys derived
 * from the meeting key, encrypted before they leave the browser (docs/protocol.md).
 *
 * A message's text goes out as `e2ee1.` + base64url(keyId ‖ IV(12) ‖ ciphertext+tag); a file
 * as keyId ‖ IV(12) ‖ ciphertext+tag.
 */
import { fromBase64Url, toBase64Url, type KeyRing } from "./keys";

export const TEXT_PREFIX = "e2ee1.";
export const CANNOT_DECRYPT = "cannot decrypt: wrong meeting key";
const IV_BYTES = 12;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

async function seal(ring: KeyRing, purpose: string, plain: Uint8Array): Promise<Uint8Array> {
  const keyId = ring.current;
  const key = await ring.purposeKey(purpose, keyId)!;
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain as BufferSource));
  const out = new Uint8Array(1 + IV_BYTES + sealed.length);
  out[0] = keyId;
  out.set(iv, 1);
  out.set(sealed, 1 + IV_BYTES);
  return out;
}

async function open(ring: KeyRing, purpose: string, data: Uint8Array): Promise<Uint8Array | null> {
  if (data.length < 1 + IV_BYTES + 16) return null;
  const key = ring.purposeKey(purpose, data[0]!);
  if (!key) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: data.subarray(1, 1 + IV_BYTES) as BufferSource },
      await key,
      data.subarray(1 + IV_BYTES) as BufferSource,
    );
    return new Uint8Array(plain);
  } catch {
    return null;
  }
}

export async function encryptText(ring: KeyRing, text: string): Promise<string> {
  return TEXT_PREFIX + toBase64Url(await seal(ring, "chat", enc.encode(text)));
}

/** The plain text, or null when it does not decrypt (wrong key, or not encrypted at all). */
export async function decryptText(ring: KeyRing | null, text: string): Promise<string | null> {
  if (!ring || !text.startsWith(TEXT_PREFIX)) return null;
  const data = fromBase64Url(text.slice(TEXT_PREFIX.length));
  const plain = data ? await open(ring, "chat", data) : null;
  if (!plain) return null;
  try {
    return dec.decode(plain);
  } catch {
    return null;
  }
}

/** How long the encoded form of `text` is (what the server counts against its limit). */
export function encodedLength(text: string): number {
  const bytes = 1 + IV_BYTES + enc.encode(text).length + 16;
  return TEXT_PREFIX.length + Math.ceil((bytes * 4) / 3);
}

export const FILE_SUFFIX = ".e2ee";

export async function encryptFile(ring: KeyRing, file: File): Promise<File> {
  const sealed = await seal(ring, "file", new Uint8Array(await file.arrayBuffer()));
  return new File([sealed as BlobPart], file.name + FILE_SUFFIX, { type: "application/octet-stream" });
}

/** The plain contents of a downloaded encrypted file, or null. */
export async function decryptFile(ring: KeyRing | null, data: ArrayBuffer): Promise<Uint8Array | null> {
  return ring ? open(ring, "file", new Uint8Array(data)) : null;
}

/** The name to save a decrypted file under. */
export function plainName(name: string): string {
  return name.endsWith(FILE_SUFFIX) ? name.slice(0, -FILE_SUFFIX.length) : name;
}
