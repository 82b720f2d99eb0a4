/**
 * Parley's wire contract as a typed client (see docs/protocol.md).
 *
 * This module knows Socket.IO, the acknowledgement envelope, WebRTC negotiation and the HTTP
 * endpoints (at `ClientOptions.url`); it knows nothing of the page (the words people read are
 * in errors.ts). The UI talks to the server only through `ParleyClient`.
 */
import { rtcConfiguration } from "./connectivity";
import { io, type Socket } from "socket.io-client";

// ---------------------------------------------------------------------------------------------
// Types of the contract

export type ErrorCode =
  | "INVALID_PAYLOAD"
  | "ROOM_NOT_FOUND"
  | "ROOM_EXISTS"
  | "ROOM_FULL"
  | "NOT_IN_ROOM"
  | "FORBIDDEN"
  | "FILE_NOT_FOUND"
  | "FILE_TOO_LARGE"
  | "UNAUTHORIZED"
  | "RATE_LIMITED"
  | "SERVER_FULL"
  | "MEDIA_ERROR"
  | "INTERNAL"
  | "ROOM_LOCKED"
  | "PASSWORD_REQUIRED"
  | "TIMEOUT"
  | "DISCONNECTED"
  | "MEETING_NOT_STARTED"
  | "RECORDING_ACTIVE"
  | "E2EE_ACTIVE";

export type Source = "camera" | "screen";
/** A simulcast layer of a subscribed video: 0 lowest .. 2 highest. */
export type SimulcastLayer = 0 | 1 | 2;
export type MediaKind = "audio" | "video";

/** A meeting's settings, as everyone may see them (the password itself is never sent). */
export interface RoomSettings {
  locked: boolean;
  lobby: boolean;
  hasPassword: boolean;
  /** Whether someone a host muted may unmute themselves. */
  selfUnmute: boolean;
  privateChat: boolean;
  listed: boolean;
  /** End-to-end encrypted (set at creation; docs/protocol.md, "End-to-end encryption"). */
  e2ee?: boolean;
}

export const DEFAULT_SETTINGS: RoomSettings = {
  locked: false,
  lobby: false,
  hasPassword: false,
  selfUnmute: true,
  privateChat: true,
  listed: true,
};

export interface Room {
  roomId: string;
  roomName: string;
  participants: number;
  createdAt: number;
  settings?: RoomSettings;
  /** The running recording, if the meeting is being recorded. */
  recording?: ActiveRecording | null;
}

/** A meeting's running recording, as `joinRoom` and the rooms list tell it. */
export interface ActiveRecording {
  recordingId: string;
  startedAt: number;
}

export interface Recording {
  recordingId: string;
  roomId: string;
  startedAt: number;
  stoppedAt: number | null;
  duration: number;
  size: number;
  status: "recording" | "processing" | "ready" | "failed";
  url?: string;
}

export interface User {
  userId: string;
  userName: string;
  isHost: boolean;
  isStreaming: boolean;
  isScreenSharing: boolean;
  joinedAt: number;
  handRaised?: boolean;
  handRaisedAt?: number | null;
  /** Blocked by the server: no packet of this kind reaches anyone. */
  audioMuted?: boolean;
  videoMuted?: boolean;
}

/** The fixed set of reactions. */
export const REACTIONS = ["👍", "👏", "😂", "😮", "❤️", "🎉"] as const;
export type Reaction = (typeof REACTIONS)[number];

/** Someone knocking at a meeting with a lobby. */
export interface LobbyEntry {
  requestId: string;
  userName: string;
  since?: number;
}

export interface FileInfo {
  filename: string;
  originalName: string;
  size: number;
  mimeType: string;
  url: string;
}

export interface Message {
  id: string;
  roomId: string;
  userId: string;
  userName: string;
  message: string;
  timestamp: number;
  clientTimestamp?: number;
  file?: FileInfo;
  /** A private message's recipient (only sender and recipient receive it). */
  to?: string;
}

export interface Stream {
  streamId: string;
  userId: string;
  userName: string;
  source: Source;
  kinds: MediaKind[];
}

export interface CandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface CreateRoomData {
  roomId: string;
  roomName: string;
  hostKey: string;
  userId: string;
  token: string;
}

export interface JoinRoomData {
  roomId: string;
  roomName: string;
  userId: string;
  isHost: boolean;
  token: string;
  users: User[];
  streams: Stream[];
  settings?: RoomSettings;
  /** Only in a host's answer: who waits in the lobby. */
  lobby?: LobbyEntry[];
  /** The running recording, or null. */
  recording?: ActiveRecording | null;
}

/** The answer to a `joinRoom` that must wait in the lobby. */
export interface WaitingData {
  waiting: true;
  roomId: string;
  requestId: string;
}

export type SettingsChange = Partial<
  Pick<RoomSettings, "locked" | "lobby" | "selfUnmute" | "privateChat" | "listed">
> & { password?: string | null };

export interface ConnectionInfo {
  iceServers: RTCIceServer[];
  media: { engine: string; simulcast?: boolean; [key: string]: unknown };
  limits: { maxUploadBytes: number; [key: string]: unknown };
}

type Empty = Record<string, never>;

/** Every client -> server event: [payload, ack data]. */
export interface Requests {
  createRoom: [
    { userName: string; roomName: string; customRoomId?: string; listed?: boolean; e2ee?: boolean },
    CreateRoomData,
  ];
  joinRoom: [
    {
      roomId: string;
      userName: string;
      hostKey?: string;
      resumeToken?: string;
      password?: string;
      /** A join token from the application that embeds Parley; its name and role win. */
      jwt?: string;
    },
    JoinRoomData | WaitingData,
  ];
  leaveRoom: [{ roomId: string; userName: string }, Empty];
  endMeeting: [{ roomId: string; userName: string }, Empty];
  getRoomsList: [undefined, Room[]];
  getUsers: [{ roomId: string }, User[]];
  message: [
    {
      roomId: string;
      message: string;
      timestamp?: number;
      file?: { filename: string };
      clientMessageId?: string;
      to?: string;
    },
    { id: string; timestamp: number },
  ];
  getChatHistory: [{ roomId: string; before?: string; limit?: number }, Message[]];
  startStream: [{ roomId: string }, Empty];
  stopStream: [{ roomId: string }, Empty];
  startScreen: [{ roomId: string }, Empty];
  stopScreen: [{ roomId: string }, Empty];
  publish: [{ roomId: string; source: Source; sdp: string }, { streamId: string; sdp: string }];
  unpublish: [{ roomId: string; streamId: string }, Empty];
  subscribe: [{ roomId: string; streamId: string }, { subscriptionId: string; sdp: string }];
  subscribeAnswer: [{ roomId: string; subscriptionId: string; sdp: string }, Empty];
  unsubscribe: [{ roomId: string; subscriptionId: string }, Empty];
  selectLayer: [{ roomId: string; subscriptionId: string; layer: SimulcastLayer }, Empty];
  showVideo: [{ roomId: string; subscriptionId: string; shown: boolean }, Empty];
  iceCandidate: [{ roomId: string; id: string; candidate: CandidateInit | null }, Empty];
  updateRoom: [{ roomId: string } & SettingsChange, { settings: RoomSettings }];
  admit: [{ roomId: string; requestId: string }, Empty];
  deny: [{ roomId: string; requestId: string }, Empty];
  kick: [{ roomId: string; userId: string }, Empty];
  setRole: [{ roomId: string; userId: string; role: "host" | "participant" }, Empty];
  mute: [{ roomId: string; userId: string; kind: MediaKind }, Empty];
  unmute: [{ roomId: string; userId: string; kind: MediaKind }, Empty];
  muteAll: [{ roomId: string; kind: MediaKind }, Empty];
  raiseHand: [{ roomId: string; raised: boolean; userId?: string }, Empty];
  react: [{ roomId: string; emoji: Reaction }, Empty];
  startRecording: [{ roomId: string }, { recordingId: string }];
  stopRecording: [{ roomId: string }, { recordingId: string }];
  getRecordings: [{ roomId: string }, Recording[]];
  e2eePublicKey: [{ roomId: string; publicKey: string; to?: string }, Empty];
  e2eeKey: [{ roomId: string; to: string; keyId: number; payload: string }, Empty];
}

/** Every server -> client event and its payload. */
export interface Events {
  roomCreated: { roomId: string; roomName: string; hostKey: string };
  roomError: { error: string; message: string; event?: string };
  roomsList: Room[];
  getUsers: User[];
  userJoined: { userId: string; userName: string };
  userLeft: { userId: string; userName: string; reason?: "left" | "timeout" | "kicked" };
  userUpdated: User;
  roomUpdated: { roomId: string; settings: RoomSettings };
  lobbyRequest: { roomId: string; requestId: string; userName: string };
  lobbyResolved: {
    roomId: string;
    requestId: string;
    outcome: "admitted" | "denied" | "cancelled";
  };
  admitted: JoinRoomData;
  lobbyDenied: { roomId: string };
  kicked: { roomId: string; by: string };
  replaced: { roomId: string };
  muted: { roomId: string; kind: MediaKind; by: string };
  reaction: { userId: string; emoji: string; timestamp: number };
  hostChanged: { userId: string };
  message: Message;
  chatHistory: Message[];
  streamStarted: { userId: string };
  streamStopped: { userId: string };
  screenStarted: { userId: string };
  screenStopped: { userId: string };
  streamPublished: Stream;
  streamUnpublished: { streamId: string; userId: string; source: Source };
  iceCandidate: { id: string; candidate: CandidateInit | null };
  meetingEnded: { roomId: string; endedBy?: string };
  mediaReset: { roomId: string };
  layerChanged: {
    roomId: string;
    subscriptionId: string;
    layer: SimulcastLayer;
    reason: "bandwidth" | "selected" | "publisher";
  };
  videoPaused: { roomId: string; subscriptionId: string; paused: boolean };
  activeSpeaker: { roomId: string; userId: string };
  recordingStarted: { roomId: string; recordingId: string; by: string; startedAt: number };
  recordingStopped: {
    roomId: string;
    recordingId: string;
    reason: "stopped" | "ended" | "quota" | "failed";
  };
  recordingReady: {
    roomId: string;
    recordingId: string;
    duration: number;
    size: number;
    url: string;
  };
  e2eePublicKey: { roomId: string; userId: string; publicKey: string };
  e2eeKey: { roomId: string; from: string; keyId: number; payload: string };
}

type Ack<T> =
  | { ok: true; data: T }
  | { ok: false; error: { code: ErrorCode; message: string } };

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

export type ConnectionState = "connecting" | "connected" | "reconnecting";

// ---------------------------------------------------------------------------------------------
// Signalling

export interface ClientOptions {
  /** Server origin; default: the page's own origin. */
  url?: string;
  /** How long to wait for an acknowledgement. */
  requestTimeoutMs?: number;
}

/** Encrypts what our senders send and decrypts what receivers get (end-to-end encryption). */
export interface FrameProtection {
  /** Peer connections need `encodedInsertableStreams` (only `createEncodedStreams` exists). */
  readonly insertableStreams: boolean;
  protectSender(sender: RTCRtpSender, kind: MediaKind): void;
  protectReceiver(receiver: RTCRtpReceiver, kind: MediaKind, userId: string): void;
}

export class ParleyClient {
  readonly socket: Socket;
  /** Set while in an end-to-end encrypted meeting: every new peer connection is protected. */
  frames: FrameProtection | null = null;
  /** Where HTTP requests go: the server's origin, or "" for the page's own. */
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly peers = new Map<string, RTCPeerConnection>();
  private readonly pendingCandidates = new Map<string, CandidateInit[]>();
  private stateListeners = new Set<(state: ConnectionState) => void>();
  private _state: ConnectionState = "connecting";
  private everConnected = false;

  constructor(options: ClientOptions = {}) {
    this.timeoutMs = options.requestTimeoutMs ?? 15000;
    this.baseUrl = (options.url ?? "").replace(/\/+$/, "");
    const opts = { path: "/socket.io/", transports: ["websocket", "polling"] };
    this.socket = options.url ? io(options.url, opts) : io(opts);
    this.socket.on("connect", () => {
      this.everConnected = true;
      this.setState("connected");
    });
    this.socket.on("disconnect", () => this.setState("reconnecting"));
    this.socket.on("connect_error", () => {
      this.setState(this.everConnected ? "reconnecting" : "connecting");
    });
    this.socket.on("iceCandidate", (payload: Events["iceCandidate"]) => {
      void this.applyRemoteCandidate(payload.id, payload.candidate);
    });
    // The server measures our downlink by how fast these come in: acknowledge each at once.
    this.socket.on("linkProbe", (_payload: unknown, ack?: () => void) => ack?.());
  }

  get state(): ConnectionState {
    return this._state;
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  private setState(state: ConnectionState): void {
    if (state === this._state) return;
    this._state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Called after each successful (re)connection, not only the first. */
  onConnect(listener: () => void): () => void {
    this.socket.on("connect", listener);
    return () => this.socket.off("connect", listener);
  }

  on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): () => void {
    const name: string = event;
    const h = handler as (...args: unknown[]) => void;
    this.socket.on(name, h);
    return () => this.socket.off(name, h);
  }

  /** Sends a request and resolves with the ack's `data`, or rejects with a ProtocolError. */
  async request<K extends keyof Requests>(
    event: K,
    ...payload: Requests[K][0] extends undefined ? [] : [Requests[K][0]]
  ): Promise<Requests[K][1]> {
    if (!this.socket.connected) await this.waitConnected(this.timeoutMs);
    let ack: Ack<Requests[K][1]>;
    try {
      ack = (await this.socket
        .timeout(this.timeoutMs)
        .emitWithAck(event, ...payload)) as Ack<Requests[K][1]>;
    } catch {
      throw new ProtocolError(
        this.socket.connected ? "TIMEOUT" : "DISCONNECTED",
        "The server did not answer.",
      );
    }
    if (!ack || typeof ack !== "object") {
      throw new ProtocolError("INTERNAL", "The server sent an unexpected answer.");
    }
    if (ack.ok) return ack.data;
    throw new ProtocolError(ack.error.code, ack.error.message);
  }

  private waitConnected(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off("connect", done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.socket.off("connect", done);
        reject(new ProtocolError("DISCONNECTED", "Not connected to the server."));
      }, timeoutMs);
      this.socket.on("connect", done);
    });
  }

  /**
   * The server's ICE servers, media engine and limits (`/get-connection-info`); with a
   * participant's `token`, the ICE servers include TURN credentials for that participant.
   */
  getConnectionInfo(token?: string): Promise<ConnectionInfo> {
    return getConnectionInfo(this.baseUrl, token);
  }

  /** Uploads a file to the room (`/upload-file`) with progress (0..1). */
  uploadFile(
    file: File,
    roomId: string,
    token: string,
    onProgress: (fraction: number) => void,
  ): UploadHandle {
    return uploadFile(this.baseUrl, file, roomId, token, onProgress);
  }

  close(): void {
    for (const pc of this.peers.values()) pc.close();
    this.peers.clear();
    this.socket.close();
  }

  // --- media ----------------------------------------------------------------------------------

  /** Registers a peer connection under its stream or subscription id for remote candidates. */
  private register(id: string, pc: RTCPeerConnection): void {
    this.peers.set(id, pc);
    const queued = this.pendingCandidates.get(id);
    this.pendingCandidates.delete(id);
    for (const c of queued ?? []) void pc.addIceCandidate(c).catch(() => undefined);
  }

  private forget(id: string): void {
    this.peers.delete(id);
    this.pendingCandidates.delete(id);
  }

  private async applyRemoteCandidate(id: string, candidate: CandidateInit | null): Promise<void> {
    if (!candidate || !candidate.candidate) return;
    const pc = this.peers.get(id);
    if (!pc || !pc.remoteDescription) {
      const queue = this.pendingCandidates.get(id) ?? [];
      queue.push(candidate);
      if (queue.length <= 50) this.pendingCandidates.set(id, queue);
      return;
    }
    try {
      await pc.addIceCandidate(candidate);
    } catch {
      // A candidate for a closed or replaced connection: nothing to do.
    }
  }

  /**
   * Publishes `tracks` (audio then video; a missing track still gets its m-line, so it can be
   * added later with `replaceTrack` without renegotiating). With `options.simulcast` the video
   * goes out in three layers.
   */
  async publish(
    roomId: string,
    source: Source,
    tracks: { audio: MediaStreamTrack | null; video: MediaStreamTrack | null },
    iceServers: RTCIceServer[],
    options: PublishOptions = {},
  ): Promise<Publication> {
    const frames = this.frames;
    const pc = new RTCPeerConnection(peerConfiguration(iceServers, frames));
    const audio = pc.addTransceiver(tracks.audio ?? "audio", { direction: "sendonly" });
    const video = pc.addTransceiver(tracks.video ?? "video", {
      direction: "sendonly",
      ...(options.simulcast ? { sendEncodings: simulcastEncodings(...cameraSize(tracks.video)) } : {}),
    });
    if (frames) {
      // The SFUs read the clear VP8 header of encrypted frames: VP8 it is.
      const vp8 = RTCRtpReceiver.getCapabilities("video")?.codecs.filter((c) => /vp8|rtx/i.test(c.mimeType));
      try {
        if (vp8?.length) video.setCodecPreferences(vp8);
      } catch {
        // The browser's default order then (VP8 first in Chromium and Firefox).
      }
      frames.protectSender(audio.sender, "audio");
      frames.protectSender(video.sender, "video");
    }
    const trickle = new Trickle(this, roomId, pc);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      const offer = pc.localDescription?.sdp ?? "";
      trickle.markSdpSent();
      const { streamId, sdp } = await this.request("publish", { roomId, source, sdp: offer });
      await pc.setRemoteDescription({ type: "answer", sdp });
      this.register(streamId, pc);
      trickle.start(streamId);
      return new Publication(this, roomId, source, streamId, pc, audio.sender, video.sender);
    } catch (err) {
      pc.close();
      throw err;
    }
  }

  /** Subscribes to a stream; `onTrack` is called with the stream as tracks arrive. */
  async subscribe(
    roomId: string,
    stream: Stream,
    iceServers: RTCIceServer[],
  ): Promise<Subscription> {
    const frames = this.frames;
    const pc = new RTCPeerConnection(peerConfiguration(iceServers, frames));
    const media = new MediaStream();
    pc.addEventListener("track", (ev) => {
      frames?.protectReceiver(ev.receiver, ev.track.kind as MediaKind, stream.userId);
      if (!media.getTracks().includes(ev.track)) media.addTrack(ev.track);
    });
    const trickle = new Trickle(this, roomId, pc);
    try {
      const { subscriptionId, sdp } = await this.request("subscribe", {
        roomId,
        streamId: stream.streamId,
      });
      await pc.setRemoteDescription({ type: "offer", sdp });
      this.register(subscriptionId, pc);
      await pc.setLocalDescription(await pc.createAnswer());
      await waitForIceGathering(pc);
      const answer = pc.localDescription?.sdp ?? "";
      trickle.markSdpSent();
      await this.request("subscribeAnswer", { roomId, subscriptionId, sdp: answer });
      trickle.start(subscriptionId);
      return new Subscription(this, roomId, stream, subscriptionId, pc, media);
    } catch (err) {
      pc.close();
      throw err;
    }
  }

  /** @internal used by Publication and Subscription */
  release(id: string): void {
    this.forget(id);
  }
}

/** `rtcConfiguration`, with encoded insertable streams where frames are protected so. */
function peerConfiguration(iceServers: RTCIceServer[], frames: FrameProtection | null): RTCConfiguration {
  const config = rtcConfiguration(iceServers);
  return frames?.insertableStreams ? { ...config, encodedInsertableStreams: true } as RTCConfiguration : config;
}

/** Bit rates a layer of a given size is capped at (pixels, bits per second), in between
 * interpolated: about what meeting products send at 25 fps. */
const LAYER_RATES: [number, number][] = [
  [0, 120_000],
  [320 * 180, 160_000],
  [640 * 360, 450_000],
  [960 * 540, 1_000_000],
  [1280 * 720, 1_700_000],
  [1920 * 1080, 3_000_000],
];

/** The bit rate a layer of `width`x`height` is capped at. */
export function layerBitrate(width: number, height: number): number {
  const pixels = width * height;
  for (let i = 1; i < LAYER_RATES.length; i++) {
    const [p1, r1] = LAYER_RATES[i];
    if (pixels <= p1) {
      const [p0, r0] = LAYER_RATES[i - 1];
      return Math.max(LAYER_RATES[0][1], Math.round(r0 + ((r1 - r0) * (pixels - p0)) / (p1 - p0)));
    }
  }
  return LAYER_RATES[LAYER_RATES.length - 1][1];
}

/** The size of a camera `track` (1280x720, what a simulcast camera is asked for, without one). */
function cameraSize(track: MediaStreamTrack | null): [number, number] {
  const { width, height } = track?.getSettings() ?? {};
  return width && height ? [width, height] : [1280, 720];
}

/** Re-caps a simulcast sender's layers for the size of the camera it now sends. */
async function fitLayerRates(sender: RTCRtpSender, track: MediaStreamTrack): Promise<void> {
  const params = sender.getParameters();
  if (params.encodings.length < 2) return;
  const wanted = simulcastEncodings(...cameraSize(track));
  params.encodings.forEach((e, i) => {
    e.maxBitrate = wanted[i]?.maxBitrate ?? e.maxBitrate;
  });
  try {
    await sender.setParameters(params);
  } catch {
    // the caps set at publishing stay
  }
}

/**
 * The camera's simulcast encodings, lowest quality first, each half the size of the next
 * (docs/protocol.md, "Simulcast"), each capped at a bit rate for its size (from the camera's
 * `width`x`height`): without a cap Chromium gives a 960x540 top layer 1.7 Mbit/s, more than a
 * 2 Mbit/s link can take beside audio.
 */
export function simulcastEncodings(width: number, height: number): RTCRtpEncodingParameters[] {
  return (["q", "h", "f"] as const).map((rid, i) => {
    const scale = 2 ** (2 - i);
    return { rid, scaleResolutionDownBy: scale, maxBitrate: layerBitrate(width / scale, height / scale) };
  });
}

export interface PublishOptions {
  /** Send the video in three simulcast layers (only when the engine has simulcast). */
  simulcast?: boolean;
}

/**
 * Sends the candidates found after the SDP went out (the SDP carries those gathered before),
 * once the connection's id is known.
 */
class Trickle {
  private id: string | null = null;
  private sdpSent = false;
  private readonly late: CandidateInit[] = [];

  constructor(
    private readonly client: ParleyClient,
    private readonly roomId: string,
    pc: RTCPeerConnection,
  ) {
    pc.addEventListener("icecandidate", (ev) => {
      if (!this.sdpSent || !ev.candidate || !ev.candidate.candidate) return;
      const init = ev.candidate.toJSON() as CandidateInit;
      if (this.id) this.send(init);
      else this.late.push(init);
    });
  }

  /** The local SDP has been read: candidates from now on are not in it. */
  markSdpSent(): void {
    this.sdpSent = true;
  }

  start(id: string): void {
    this.id = id;
    for (const c of this.late.splice(0)) this.send(c);
  }

  private send(candidate: CandidateInit): void {
    if (!this.id) return;
    void this.client
      .request("iceCandidate", { roomId: this.roomId, id: this.id, candidate })
      .catch(() => undefined);
  }
}

/** Resolves when ICE gathering is complete, or after `timeoutMs` (late ones are trickled). */
export function waitForIceGathering(pc: RTCPeerConnection, timeoutMs = 2000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (pc.iceGatheringState === "complete") finish();
    };
    const finish = (): void => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const timer = setTimeout(finish, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** One published stream: our camera (with microphone) or our screen. */
export class Publication {
  private closed = false;

  constructor(
    private readonly client: ParleyClient,
    readonly roomId: string,
    readonly source: Source,
    readonly streamId: string,
    readonly pc: RTCPeerConnection,
    readonly audioSender: RTCRtpSender,
    readonly videoSender: RTCRtpSender,
  ) {}

  /** Swaps the sent track (null sends nothing) without renegotiating. */
  async setTrack(kind: MediaKind, track: MediaStreamTrack | null): Promise<void> {
    const sender = kind === "audio" ? this.audioSender : this.videoSender;
    if (sender.track === track) return;
    await sender.replaceTrack(track);
    if (kind === "video" && track) await fitLayerRates(sender, track);
  }

  /** Stops sending and tells the server; safe to call twice. */
  async close(notify = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.release(this.streamId);
    this.pc.close();
    if (notify) {
      await this.client
        .request("unpublish", { roomId: this.roomId, streamId: this.streamId })
        .catch(() => undefined);
    }
  }
}

/** One received stream. `media` gains its tracks as they arrive. */
export class Subscription {
  private closed = false;
  /** The simulcast layer last asked for; null: none asked, the engine sends the highest. */
  layer: SimulcastLayer | null = null;
  /** How many `selectLayer` requests this subscription has sent. */
  layerRequests = 0;
  /** Whether the video is asked for (`showVideo`): the page shows it somewhere. */
  shown = true;

  constructor(
    private readonly client: ParleyClient,
    readonly roomId: string,
    readonly stream: Stream,
    readonly subscriptionId: string,
    readonly pc: RTCPeerConnection,
    readonly media: MediaStream,
  ) {}

  /**
   * Asks for simulcast layer `layer` of the video (the engine switches at its next keyframe).
   * On failure the previous choice stands and the error is thrown.
   */
  async selectLayer(layer: SimulcastLayer): Promise<void> {
    if (this.closed) return;
    const previous = this.layer;
    this.layer = layer;
    this.layerRequests += 1;
    try {
      await this.client.request("selectLayer", {
        roomId: this.roomId,
        subscriptionId: this.subscriptionId,
        layer,
      });
    } catch (err) {
      if (this.layer === layer) this.layer = previous;
      throw err;
    }
  }

  /**
   * Tells the server whether the page shows this video: while not shown, the video stops
   * (the audio goes on). On failure the previous state stands and the error is thrown.
   */
  async showVideo(shown: boolean): Promise<void> {
    if (this.closed || this.shown === shown) return;
    this.shown = shown;
    try {
      await this.client.request("showVideo", {
        roomId: this.roomId,
        subscriptionId: this.subscriptionId,
        shown,
      });
    } catch (err) {
      if (this.shown === shown) this.shown = !shown;
      throw err;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops receiving; safe to call twice. */
  async close(notify = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.release(this.subscriptionId);
    this.pc.close();
    if (notify) {
      await this.client
        .request("unsubscribe", { roomId: this.roomId, subscriptionId: this.subscriptionId })
        .catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface UploadHandle {
  /** Settles with the upload's outcome; rejects with a ProtocolError when it failed. */
  promise: Promise<UploadResult>;
  /** Cancels the upload: `promise` then resolves with `{ cancelled: true }`. */
  abort: () => void;
}

/** How an upload ended when it did not fail: stored (with the file's details) or cancelled. */
export type UploadResult = { cancelled: false; file: FileInfo } | { cancelled: true };

/**
 * `/get-connection-info` of the server at `base` (an origin, or "" for the page's own); a
 * participant's `token` brings that participant's TURN credentials.
 */
export async function getConnectionInfo(base = "", token?: string): Promise<ConnectionInfo> {
  const response = await fetch(`${base}/get-connection-info`, {
    cache: "no-store",
    ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
  });
  if (!response.ok) throw new ProtocolError("INTERNAL", "Could not reach the server.");
  return (await response.json()) as ConnectionInfo;
}

/**
 * Uploads a file to the room on the server at `base` (an origin, or "" for the page's own) with
 * progress (0..1).
 */
export function uploadFile(
  base: string,
  file: File,
  roomId: string,
  token: string,
  onProgress: (fraction: number) => void,
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<UploadResult>((resolve, reject) => {
    xhr.open("POST", `${base}/upload-file`);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response as { error?: string; message?: string } | FileInfo | null;
      if (xhr.status >= 200 && xhr.status < 300 && body && "filename" in body) {
        resolve({ cancelled: false, file: body });
        return;
      }
      const err = body && "error" in body ? body : null;
      const code = (err?.error as ErrorCode | undefined) ??
        (xhr.status === 413 ? "FILE_TOO_LARGE" : xhr.status === 401 ? "UNAUTHORIZED" : "INTERNAL");
      reject(new ProtocolError(xhr.status === 413 ? "FILE_TOO_LARGE" : code, err?.message ?? ""));
    });
    xhr.addEventListener("error", () => {
      // A 413 sent while the body is still streaming often surfaces as a network error.
      reject(new ProtocolError("DISCONNECTED", "The upload was interrupted."));
    });
    xhr.addEventListener("abort", () => resolve({ cancelled: true }));
    const form = new FormData();
    form.append("roomId", roomId);
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
