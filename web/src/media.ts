/**
 * The meeting's peer connections: our camera (with microphone) and screen publications, and one
 * subscription per remote stream. Knows nothing of the page; tells its owner when to redraw.
 */
import { toast } from "./dom";
import { humanError } from "./errors";
import {
  type ConnectionInfo,
  type ParleyClient,
  type Publication,
  type SimulcastLayer,
  type Stream,
  type Subscription,
} from "./protocol";

export interface MediaOwner {
  selfId(): string;
  /** What the camera publication sends now (null: nothing, e.g. muted or camera off). */
  outgoing(): { audio: MediaStreamTrack | null; video: MediaStreamTrack | null };
  screenTrack(): MediaStreamTrack | null;
  /** The screen publication failed: stop sharing locally. */
  screenFailed(): void;
  changed(): void;
}

export interface RemoteAudio {
  packets: number;
  level: number;
}

export class MeetingMedia {
  /** Remote streams we know of (never our own), by stream id. */
  readonly streams = new Map<string, Stream>();
  private readonly subs = new Map<string, Subscription>();
  private readonly pending = new Set<string>();
  private camPub: Publication | null = null;
  /** The epoch whose camera publication is being negotiated or retried (so that a second is
   * not started meanwhile), or -1. */
  private camPublishing = -1;
  private screenPub: Publication | null = null;
  /** Bumped whenever everything is torn down; late results of an older epoch are discarded. */
  private epoch = 0;
  private closed = false;

  constructor(
    private readonly client: ParleyClient,
    private readonly roomId: string,
    private readonly info: ConnectionInfo,
    private readonly owner: MediaOwner,
  ) {}

  get enabled(): boolean {
    return this.info.media?.engine !== "none" && typeof RTCPeerConnection !== "undefined";
  }

  /** The engine takes the camera in three layers and lets each subscriber choose one. */
  get simulcast(): boolean {
    return this.enabled && this.info.media?.simulcast === true;
  }

  /** ICE servers given to us as a participant (with TURN credentials), once known. */
  private participantIce: RTCIceServer[] | null = null;

  private get iceServers(): RTCIceServer[] {
    return this.participantIce ?? this.info.iceServers ?? [];
  }

  /**
   * The ICE servers `/get-connection-info` gives us as a participant (TURN credentials are
   * given only with our token); used by every peer connection made from now on.
   */
  setIceServers(servers: RTCIceServer[]): void {
    this.participantIce = servers;
  }

  /** Publishes our media and subscribes to `streams` (from the join answer). */
  start(streams: Stream[]): void {
    if (!this.enabled || this.closed) return;
    const self = this.owner.selfId();
    for (const s of streams) {
      if (s.userId !== self) {
        this.streams.set(s.streamId, s);
      } else {
        // Left over from before a reload: this page publishes afresh.
        void this.client.request("unpublish", { roomId: this.roomId, streamId: s.streamId })
          .catch(() => undefined);
      }
    }
    const epoch = this.epoch;
    // a device turned on while joining may have started the publication already
    if (this.hasTracks() && !this.camPub && this.camPublishing !== epoch) {
      void this.publishCamera(epoch);
    }
    if (this.owner.screenTrack()) void this.publishScreen();
    for (const s of this.streams.values()) void this.subscribe(s, epoch);
  }

  /** Throws away every peer connection and negotiates again (after a reconnect or a reset). */
  restart(streams: Stream[], notify: boolean): void {
    this.teardown(notify);
    this.owner.changed();
    this.start(streams);
  }

  private teardown(notify: boolean): void {
    this.epoch += 1;
    for (const s of this.subs.values()) void s.close(notify);
    this.subs.clear();
    this.pending.clear();
    this.streams.clear();
    void this.camPub?.close(notify);
    void this.screenPub?.close(notify);
    this.camPub = this.screenPub = null;
  }

  /** Stops everything; safe to call twice. */
  close(notify: boolean): void {
    if (this.closed) return;
    this.teardown(notify);
    this.closed = true;
  }

  added(stream: Stream): void {
    if (stream.userId === this.owner.selfId()) return;
    this.streams.set(stream.streamId, stream);
    void this.subscribe(stream, this.epoch);
  }

  removed(streamId: string): void {
    this.streams.delete(streamId);
    const sub = this.subs.get(streamId);
    this.subs.delete(streamId);
    void sub?.close(false);
  }

  userLeft(userId: string): void {
    for (const [id, s] of this.streams) if (s.userId === userId) this.removed(id);
  }

  /** The newest subscription of a kind: a stream republished after a reconnect wins. */
  camera(userId: string): Subscription | undefined {
    return [...this.subs.values()]
      .reverse()
      .find((s) => s.stream.userId === userId && s.stream.source === "camera");
  }

  screen(): Subscription | undefined {
    return [...this.subs.values()].reverse().find((s) => s.stream.source === "screen");
  }

  /** Whether we have a microphone or camera to send: with neither (someone who only watches)
   * there is no camera publication, so that nobody subscribes to an empty stream. */
  private hasTracks(): boolean {
    const { audio, video } = this.owner.outgoing();
    return audio !== null || video !== null;
  }

  /** Puts the owner's current tracks on the camera publication (no renegotiation); publishes
   * it when the first track comes. */
  async syncSenders(): Promise<void> {
    const pub = this.camPub;
    if (!pub) {
      // publishCamera gives up by itself once closed; whether media can be published at all
      // (enabled) only start() checks, and the device toggles come here without it
      if (this.enabled && this.camPublishing !== this.epoch && this.hasTracks()) {
        await this.publishCamera(this.epoch);
      }
      return;
    }
    const { audio, video } = this.owner.outgoing();
    await pub.setTrack("audio", audio).catch(() => undefined);
    await pub.setTrack("video", video).catch(() => undefined);
  }

  private async publishCamera(epoch: number, attempt = 0): Promise<void> {
    if (epoch !== this.epoch || this.closed) return;
    let pub: Publication;
    this.camPublishing = epoch;
    try {
      pub = await this.client.publish(this.roomId, "camera", this.owner.outgoing(), this.iceServers, {
        simulcast: this.simulcast,
      });
    } catch (err) {
      if (epoch !== this.epoch) return;
      if (attempt < 2) {
        setTimeout(() => void this.publishCamera(epoch, attempt + 1), 1000 * (attempt + 1));
      } else {
        if (this.camPublishing === epoch) this.camPublishing = -1;
        toast(`Others cannot see or hear you: ${humanError(err)}`, "error");
      }
      return;
    }
    if (this.camPublishing === epoch) this.camPublishing = -1;
    if (epoch !== this.epoch || this.closed) {
      void pub.close(true);
      return;
    }
    this.camPub = pub;
    await this.syncSenders();
    pub.pc.addEventListener("connectionstatechange", () => {
      if (pub.pc.connectionState === "failed" && this.camPub === pub && epoch === this.epoch) {
        this.camPub = null;
        void pub.close(true);
        void this.publishCamera(epoch);
      }
    });
  }

  /** Publishes the owner's screen track; returns false when it could not. */
  async publishScreen(): Promise<boolean> {
    const track = this.owner.screenTrack();
    if (!track || !this.enabled) return true;
    const epoch = this.epoch;
    try {
      const pub = await this.client.publish(
        this.roomId,
        "screen",
        { audio: null, video: track },
        this.iceServers,
      );
      if (epoch !== this.epoch || this.owner.screenTrack() !== track) {
        void pub.close(true);
        return true;
      }
      this.screenPub = pub;
      return true;
    } catch (err) {
      if (epoch !== this.epoch) return true;
      toast(`Your screen could not be shared: ${humanError(err)}`, "error");
      this.owner.screenFailed();
      return false;
    }
  }

  async unpublishScreen(notify: boolean): Promise<void> {
    const pub = this.screenPub;
    this.screenPub = null;
    if (pub) await pub.close(notify);
  }

  get sharing(): boolean {
    return this.screenPub !== null;
  }

  private async subscribe(stream: Stream, epoch: number, attempt = 0): Promise<void> {
    const id = stream.streamId;
    if (this.subs.has(id) || this.pending.has(id) || this.closed) return;
    this.pending.add(id);
    let sub: Subscription;
    try {
      sub = await this.client.subscribe(this.roomId, stream, this.iceServers);
    } catch (err) {
      this.pending.delete(id);
      if (epoch !== this.epoch || !this.streams.has(id)) return;
      if (attempt < 2) {
        setTimeout(() => void this.subscribe(stream, epoch, attempt + 1), 1000 * (attempt + 1));
      } else {
        toast(`Could not receive ${stream.userName}'s ${stream.source}: ${humanError(err)}`, "error");
      }
      return;
    }
    this.pending.delete(id);
    if (epoch !== this.epoch || !this.streams.has(id) || this.closed) {
      void sub.close(true);
      return;
    }
    this.subs.set(id, sub);
    sub.media.addEventListener("addtrack", () => this.owner.changed());
    sub.pc.addEventListener("connectionstatechange", () => {
      if (sub.pc.connectionState !== "failed" || this.subs.get(id) !== sub) return;
      this.subs.delete(id);
      void sub.close(true);
      if (epoch === this.epoch && this.streams.has(id) && attempt < 3) {
        void this.subscribe(stream, epoch, attempt + 1);
      }
    });
    this.owner.changed();
  }

  /** Inbound audio of each remote camera stream, by user: packets so far and current level. */
  async remoteAudio(): Promise<Map<string, RemoteAudio>> {
    const out = new Map<string, RemoteAudio>();
    for (const sub of this.subs.values()) {
      if (sub.stream.source !== "camera") continue;
      const a = { packets: 0, level: 0 };
      try {
        (await sub.pc.getStats()).forEach((r: InboundStats) => {
          if (r.type === "inbound-rtp" && r.kind === "audio") {
            a.packets += r.packetsReceived ?? 0;
            a.level = Math.max(a.level, r.audioLevel ?? 0);
          }
        });
      } catch {
        continue;
      }
      out.set(sub.stream.userId, a);
    }
    return out;
  }

  /** The user whose stream the subscription `subscriptionId` receives, if it is ours. */
  userOf(subscriptionId: string): string | null {
    for (const sub of this.subs.values()) {
      if (sub.subscriptionId === subscriptionId) return sub.stream.userId;
    }
    return null;
  }

  /** What each subscription receives, for diagnostics and the browser tests. */
  async describe(): Promise<SubscriptionReport[]> {
    const out: SubscriptionReport[] = [];
    for (const sub of this.subs.values()) {
      let framesDecoded = 0;
      let audioPackets = 0;
      let frameWidth = 0;
      let frameHeight = 0;
      const link = { freezeSeconds: 0, videoBytes: 0, concealedSamples: 0, totalSamples: 0 };
      const repair = { keyFramesDecoded: 0, videoPacketsLost: 0, nacksSent: 0, pliSent: 0 };
      const stats = await sub.pc.getStats();
      stats.forEach((r: InboundStats) => {
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "video") {
          framesDecoded += r.framesDecoded ?? 0;
          frameWidth = r.frameWidth ?? frameWidth;
          frameHeight = r.frameHeight ?? frameHeight;
          link.freezeSeconds += r.totalFreezesDuration ?? 0;
          link.videoBytes += r.bytesReceived ?? 0;
          repair.keyFramesDecoded += r.keyFramesDecoded ?? 0;
          repair.videoPacketsLost += r.packetsLost ?? 0;
          repair.nacksSent += r.nackCount ?? 0;
          repair.pliSent += r.pliCount ?? 0;
        }
        if (r.kind === "audio") {
          audioPackets += r.packetsReceived ?? 0;
          link.concealedSamples += r.concealedSamples ?? 0;
          link.totalSamples += r.totalSamplesReceived ?? 0;
        }
      });
      out.push({
        streamId: sub.stream.streamId,
        userId: sub.stream.userId,
        userName: sub.stream.userName,
        source: sub.stream.source,
        state: sub.pc.connectionState,
        subscriptionId: sub.subscriptionId,
        framesDecoded,
        frameWidth,
        frameHeight,
        audioPackets,
        ...link,
        ...repair,
        layer: sub.layer,
        layerRequests: sub.layerRequests,
        shown: sub.shown,
        path: selectedPath(stats),
      });
    }
    return out;
  }

  /** The camera publication's video encodings as they go out, for diagnostics and the tests. */
  async sending(): Promise<EncodingReport[]> {
    const pub = this.camPub;
    if (!pub) return [];
    const out: EncodingReport[] = [];
    (await pub.pc.getStats()).forEach((r: OutboundStats) => {
      if (r.type !== "outbound-rtp" || r.kind !== "video") return;
      out.push({
        rid: r.rid ?? null,
        frameWidth: r.frameWidth ?? 0,
        frameHeight: r.frameHeight ?? 0,
        framesEncoded: r.framesEncoded ?? 0,
        active: r.active ?? true,
      });
    });
    return out;
  }
}

interface InboundStats {
  type: string;
  kind?: string;
  packetsReceived?: number;
  audioLevel?: number;
  framesDecoded?: number;
  frameWidth?: number;
  frameHeight?: number;
  totalFreezesDuration?: number;
  bytesReceived?: number;
  concealedSamples?: number;
  totalSamplesReceived?: number;
  keyFramesDecoded?: number;
  packetsLost?: number;
  nackCount?: number;
  pliCount?: number;
}

interface OutboundStats {
  type: string;
  kind?: string;
  rid?: string;
  frameWidth?: number;
  frameHeight?: number;
  framesEncoded?: number;
  active?: boolean;
}

export interface EncodingReport {
  rid: string | null;
  frameWidth: number;
  frameHeight: number;
  framesEncoded: number;
  active: boolean;
}

export interface SubscriptionReport {
  streamId: string;
  userId: string;
  userName: string;
  source: string;
  subscriptionId: string;
  state: RTCPeerConnectionState;
  framesDecoded: number;
  /** Size of the video frames received now (0 before the first). */
  frameWidth: number;
  frameHeight: number;
  audioPackets: number;
  /** Seconds of video frozen so far (Chromium's freeze detection), and video bytes received. */
  freezeSeconds: number;
  videoBytes: number;
  /** Audio samples concealed (lost or late) and received in all. */
  concealedSamples: number;
  totalSamples: number;
  /** Video keyframes decoded, packets lost, and the NACKs and PLIs the page sent for them. */
  keyFramesDecoded: number;
  videoPacketsLost: number;
  nacksSent: number;
  pliSent: number;
  /** The simulcast layer asked for (null: none; the engine sends its highest). */
  layer: SimulcastLayer | null;
  layerRequests: number;
  /** Whether the page asks for the video (it shows it somewhere). */
  shown: boolean;
  /** The type of our end of the connection's selected ICE pair: "host" or "srflx" (direct),
   * "relay" (through TURN), or "" before one is chosen. */
  path: string;
}

/** The local candidate type of a connection's selected ICE pair (see SubscriptionReport). */
function selectedPath(report: RTCStatsReport): string {
  let pairId = "";
  report.forEach((r: { type: string; selectedCandidatePairId?: string }) => {
    if (r.type === "transport" && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
  });
  const pair = pairId ? (report.get(pairId) as { localCandidateId?: string } | undefined) : undefined;
  const local = pair?.localCandidateId
    ? (report.get(pair.localCandidateId) as { candidateType?: string } | undefined)
    : undefined;
  return local?.candidateType ?? "";
}
