/**
 * How this browser reaches the media server: the "force relay" setting (every peer connection
 * through TURN, `iceTransportPolicy: "relay"`, for diagnosis and tests), and the configuration
 * every media peer connection is made with.
 */
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
