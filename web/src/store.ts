/** What the browser remembers: the name and device choices (local), and per-tab sessions. */

const NAME_KEY = "parley.userName";
const PREFS_KEY = "parley.devices";
const SESSION_PREFIX = "parley.session.";

export interface DevicePrefs {
  audioDeviceId?: string;
  videoDeviceId?: string;
  micOn: boolean;
  camOn: boolean;
}

/** Kept in sessionStorage so a reload of this tab rejoins with the same identity. */
export interface RoomSession {
  roomId: string;
  userName: string;
  userId?: string;
  token?: string;
  hostKey?: string;
  /** True while this tab is in the meeting: a reload goes straight back in. */
  inMeeting: boolean;
}

function read<T>(storage: Storage, key: string): T | null {
  try {
    const raw = storage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

function write(storage: Storage, key: string, value: unknown): void {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: remembering is a convenience only.
  }
}

export function savedName(): string {
  return read<string>(localStorage, NAME_KEY) ?? "";
}

export function saveName(name: string): void {
  write(localStorage, NAME_KEY, name);
}

export function devicePrefs(): DevicePrefs {
  return { micOn: true, camOn: true, ...(read<DevicePrefs>(localStorage, PREFS_KEY) ?? {}) };
}

export function saveDevicePrefs(prefs: DevicePrefs): void {
  write(localStorage, PREFS_KEY, prefs);
}

export function roomSession(roomId: string): RoomSession | null {
  return read<RoomSession>(sessionStorage, SESSION_PREFIX + roomId);
}

export function saveRoomSession(session: RoomSession): void {
  write(sessionStorage, SESSION_PREFIX + session.roomId, session);
}

export function dropRoomSession(roomId: string): void {
  try {
    sessionStorage.removeItem(SESSION_PREFIX + roomId);
  } catch {
    // ignore
  }
}

const JWT_PREFIX = "parley.jwt.";

/** The join token this tab was given for a meeting (`/r/{roomId}?jwt=…`), kept for the tab
 * only so a reload or a rejoin still has it after the address bar lost it. */
export function joinToken(roomId: string): string | null {
  return read<string>(sessionStorage, JWT_PREFIX + roomId);
}

export function saveJoinToken(roomId: string, jwt: string): void {
  write(sessionStorage, JWT_PREFIX + roomId, jwt);
}
