/** This tab's meeting keys, by room, so a reload keeps them (never sent anywhere). */
import { fromBase64Url, KEY_BYTES, toBase64Url } from "./keys";

const PREFIX = "parley.e2ee.";

export function saveMeetingKey(roomId: string, key: Uint8Array): void {
  try {
    sessionStorage.setItem(PREFIX + roomId, toBase64Url(key));
  } catch {
    // Storage refused (private mode): the key lasts as long as the page.
  }
}

export function meetingKey(roomId: string): Uint8Array | null {
  try {
    const text = sessionStorage.getItem(PREFIX + roomId);
    const key = text ? fromBase64Url(text) : null;
    return key && key.length === KEY_BYTES ? key : null;
  } catch {
    return null;
  }
}
