/**
 * How this browser reaches the media server: the "force relay" setting (every peer connection
 * through TURN, `iceTransportPolicy: "relay"`, for diagnosis and tests) and the participant's
 * own ICE servers (TURN credentials are handed out only with a participant's token).
 */
import type { ConnectionInfo } from "./protocol";

const RELAY_KEY = "parley.forceRelay";

/** Whether every peer connection must go through TURN: `?relay=1` in the address (kept for
 * this browser) or the stored setting; `?relay=0` turns it off. */
export function forceRelay(): boolean {
  try {
    const wanted = new URLSearchParams(location.search).get("relay");
    if (wanted === "1" || wanted === "0") localStorage.setItem(RELAY_KEY, wanted);
    return localStorage.getItem(RELAY_KEY) === "1";
  } catch {
    return false;
  }
}

export function setForceRelay(on: boolean): void {
  try {
    localStorage.setItem(RELAY_KEY, on ? "1" : "0");
  } catch {
    // Storage refused (private mode): the setting lasts for this page only.
  }
}

/** The configuration of every media peer connection. */
export function rtcConfiguration(iceServers: RTCIceServer[]): RTCConfiguration {
  return {
    iceServers,
    bundlePolicy: "max-bundle",
    iceTransportPolicy: forceRelay() ? "relay" : "all",
  };
}

let cached: { token: string; servers: Promise<RTCIceServer[]> } | null = null;

/** The ICE servers of a participant (its own TURN credentials included), asked once per
 * token; without a token, or when the server cannot be asked, those of `info`. */
export function participantIceServers(
  info: ConnectionInfo,
  token: string | undefined,
  base = "",
): Promise<RTCIceServer[]> {
  const fallback = info.iceServers ?? [];
  if (!token) return Promise.resolve(fallback);
  if (cached?.token !== token) {
    const servers = fetch(`${base}/get-connection-info`, {
      cache: "no-store",
      headers: { Authorization: `Bearer ${token}` },
    })
      .then(async (r) => (r.ok ? ((await r.json()) as ConnectionInfo).iceServers : fallback))
      .catch(() => fallback);
    cached = { token, servers };
  }
  return cached.servers;
}
