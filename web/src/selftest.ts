/**
 * The pre-join connectivity self-test: does this browser reach the media server directly over
 * UDP, only through the TURN relay, or not at all?
 *
 * Before joining there is no participant token, so no TURN credentials. The test uses what the
 * server gives anyone (docs/security.md, "Pre-join connectivity check"):
 * 1. Direct: a short probe peer connection to the server (`POST /connectivity-probe`, an offer
 *    with no track; the server's side gathers where the SFU does, carries nothing and closes
 *    itself after 10 s) with the STUN servers of `/get-connection-info`. ICE connecting means
 *    a direct path. Skipped when relay is forced (`?relay=1`).
 * 2. Relay: the TURN URLs of `GET /connectivity-probe` (no credentials) asked for an
 *    allocation with placeholder credentials. The TURN server answering (401 Unauthorized) means
 *    it is reachable; the meeting gets real credentials once we join.
 */
import { forceRelay } from "./connectivity";
import { getConnectionInfo } from "./protocol";

export type Reach = "direct" | "relay" | "none" | "unknown";

export interface SelfTestResult {
  reach: Reach;
  /** The result in plain words. */
  summary: string;
  detail: string;
}

interface ProbeInfo {
  probe: boolean;
  turnUrls: string[];
}

const GATHER_MS = 3000;
const CONNECT_MS = 8000;
const TURN_MS = 6000;

export async function selfTest(base = ""): Promise<SelfTestResult> {
  let info: ProbeInfo;
  try {
    const response = await fetch(`${base}/connectivity-probe`, { cache: "no-store" });
    if (!response.ok) throw new Error(String(response.status));
    info = (await response.json()) as ProbeInfo;
  } catch {
    return {
      reach: "unknown",
      summary: "Could not check the connection",
      detail: "The server did not answer the check. You can still join.",
    };
  }
  const relayForced = forceRelay();
  if (!relayForced && info.probe) {
    let stun: RTCIceServer[] = [];
    try {
      stun = (await getConnectionInfo(base)).iceServers ?? [];
    } catch {
      // Host candidates alone still tell a LAN path.
    }
    const direct = await probeDirect(base, stun);
    if (direct === "busy") {
      return {
        reach: "unknown",
        summary: "Not checked",
        detail: "The server is answering too many checks right now. You can still join.",
      };
    }
    if (direct === "yes") {
      return {
        reach: "direct",
        summary: "Direct connection",
        detail: "This browser reaches the media server directly over UDP.",
      };
    }
  }
  const relay = info.turnUrls.length > 0 && (await turnAnswers(info.turnUrls));
  if (relay) {
    return {
      reach: "relay",
      summary: "Relay only",
      detail: relayForced
        ? "Relay is forced for this browser: audio and video will go through the TURN relay, which answers."
        : "No direct UDP path to the media server, but the TURN relay answers: audio and video will go through it once you join.",
    };
  }
  if (relayForced) {
    return {
      reach: "none",
      summary: "No connection",
      detail: info.turnUrls.length
        ? "Relay is forced for this browser, but the TURN relay does not answer: audio and video will not connect."
        : "Relay is forced for this browser, but this server has no TURN relay: audio and video will not connect.",
    };
  }
  if (!info.probe) {
    return {
      reach: "unknown",
      summary: "Not checked",
      detail: "This server cannot check the media path before you join.",
    };
  }
  return {
    reach: "none",
    summary: "No connection",
    detail: info.turnUrls.length
      ? "This browser reaches the media server neither directly nor through the TURN relay: audio and video may not work on this network."
      : "No direct UDP path to the media server, and this server has no TURN relay: audio and video may not work on this network.",
  };
}

/** Whether a probe peer connection to the server connects (ICE) without a relay. */
async function probeDirect(base: string, iceServers: RTCIceServer[]): Promise<"yes" | "no" | "busy"> {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "all", bundlePolicy: "max-bundle" });
  try {
    pc.addTransceiver("audio", { direction: "sendonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    const response = await fetch(`${base}/connectivity-probe`, {
      method: "POST",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription?.sdp ?? "" }),
    });
    // 429 (this address checked often) or 503 (the server's cap): no verdict either way.
    if (response.status === 429 || response.status === 503) return "busy";
    if (!response.ok) return "no";
    const { sdp } = (await response.json()) as { sdp: string };
    const connected = iceConnected(pc, CONNECT_MS);
    await pc.setRemoteDescription({ type: "answer", sdp });
    return (await connected) ? "yes" : "no";
  } catch {
    return "no";
  } finally {
    pc.close();
  }
}

function gathered(pc: RTCPeerConnection, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const timer = window.setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        window.clearTimeout(timer);
        resolve();
      }
    });
  });
}

function iceConnected(pc: RTCPeerConnection, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(() => resolve(false), ms);
    const check = (): void => {
      const state = pc.iceConnectionState;
      if (state === "connected" || state === "completed") {
        window.clearTimeout(timer);
        resolve(true);
      } else if (state === "failed" || state === "closed") {
        window.clearTimeout(timer);
        resolve(false);
      }
    };
    pc.addEventListener("iceconnectionstatechange", check);
    check();
  });
}

/**
 * Whether a TURN server of `urls` answers this browser: an allocation asked with placeholder
 * credentials is refused (a STUN error such as 401), which proves the server is reachable and
 * allocates nothing. Unreachable servers give 701 (or nothing at all).
 */
async function turnAnswers(urls: string[]): Promise<boolean> {
  let pc: RTCPeerConnection;
  try {
    pc = new RTCPeerConnection({
      iceServers: [{ urls, username: "parley-probe", credential: "parley-probe" }],
      iceTransportPolicy: "relay",
    });
  } catch {
    return false;
  }
  try {
    const answered = new Promise<boolean>((resolve) => {
      const timer = window.setTimeout(() => resolve(false), TURN_MS);
      const done = (value: boolean): void => {
        window.clearTimeout(timer);
        resolve(value);
      };
      pc.addEventListener("icecandidateerror", (ev) => {
        const code = (ev as RTCPeerConnectionIceErrorEvent).errorCode;
        if (code >= 300 && code < 700) done(true);
      });
      pc.addEventListener("icecandidate", (ev) => {
        if (ev.candidate?.type === "relay") done(true);
      });
      pc.addEventListener("icegatheringstatechange", () => {
        // Let a late error event arrive before saying no.
        if (pc.iceGatheringState === "complete") window.setTimeout(() => done(false), 500);
      });
    });
    pc.addTransceiver("audio", { direction: "sendonly" });
    await pc.setLocalDescription(await pc.createOffer());
    return await answered;
  } catch {
    return false;
  } finally {
    pc.close();
  }
}
