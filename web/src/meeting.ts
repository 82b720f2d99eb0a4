/**
 * The meeting: puts together our place in the room (session.ts), who is there (roster.ts), the
 * media (media.ts, local.ts, layers.ts), who speaks (speaker.ts) and the page (view.ts, chat.ts,
 * controls.ts, panels.ts), and wires the room's events to them.
 */
import { ChatPanel } from "./chat";
import { Controls } from "./controls";
import type { LocalMedia } from "./devices";
import { toast } from "./dom";
import { humanError } from "./errors";
import { LayerChooser } from "./layers";
import { OwnMedia } from "./local";
import { MeetingMedia } from "./media";
import { SidePanels } from "./panels";
import {
  ProtocolError,
  type ConnectionInfo,
  type Events,
  type JoinRoomData,
  type ParleyClient,
  type Stream,
} from "./protocol";
import { Roster } from "./roster";
import { RoomSession, type Entry } from "./session";
import { SpeakerDetector } from "./speaker";
import type { DevicePrefs } from "./store";
import { MeetingView } from "./view";

export type { Entry } from "./session";

export type ExitReason = "left" | "ended";

export interface MeetingOptions {
  client: ParleyClient;
  info: ConnectionInfo;
  roomId: string;
  userName: string;
  entry: Entry;
  media: LocalMedia;
  prefs: DevicePrefs;
  onExit: (reason: ExitReason, message?: string) => void;
}

/** How often inbound audio is read for microphone states and the active speaker. */
const AUDIO_POLL_MS = 500;

export class Meeting {
  readonly el: HTMLElement;
  private readonly client: ParleyClient;
  private readonly opts: MeetingOptions;
  private readonly session: RoomSession;
  private readonly roster: Roster;
  private readonly own: OwnMedia;
  private readonly media: MeetingMedia;
  /** Picks each remote camera's simulcast layer from its tile; null without simulcast. */
  private readonly layers: LayerChooser | null;
  private readonly speakers = new SpeakerDetector();
  private readonly chat: ChatPanel;
  private readonly controls: Controls;
  private readonly view: MeetingView;
  private closed = false;
  /** How many times the room's answer to a join or resume has arrived. */
  private joins = 0;
  private readonly disposers: (() => void)[] = [];
  private statsTimer = 0;

  constructor(opts: MeetingOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.session = new RoomSession(opts.client, opts.roomId, opts.userName);
    this.own = new OwnMedia(opts.media, opts.prefs);
    this.roster = new Roster({
      changed: () => this.render(),
      becameHost: (userId) => {
        if (userId !== this.session.userId || this.session.isHost) return;
        this.session.isHost = true;
        this.controls.update({ isHost: true });
        toast("You are now the host.");
      },
    });

    this.media = new MeetingMedia(this.client, opts.roomId, opts.info, {
      selfId: () => this.session.userId,
      token: () => this.session.token,
      outgoing: () => this.own.outgoing(),
      screenTrack: () => this.own.screen,
      screenFailed: () => void this.stopScreen(true),
      changed: () => this.render(),
    });
    this.layers = this.media.simulcast ? new LayerChooser() : null;
    this.chat = new ChatPanel({
      send: (outgoing) =>
        this.client.request("message", {
          roomId: opts.roomId,
          message: outgoing.message,
          timestamp: Date.now(),
          ...(outgoing.file ? { file: outgoing.file } : {}),
          clientMessageId: outgoing.clientMessageId,
        }),
      upload: (file, onProgress) =>
        this.session.token
          ? this.client.uploadFile(file, opts.roomId, this.session.token, onProgress)
          : null,
      maxUploadBytes: () => opts.info.limits?.maxUploadBytes ?? 50 * 1024 * 1024,
      selfId: () => this.session.userId,
      onUnread: (n) => this.controls.setUnread(n),
      draftKey: `parley.draft.${opts.roomId}`,
    });
    this.controls = new Controls({
      microphone: () => void this.toggleMic(),
      camera: () => void this.toggleCam(),
      screen: () => void this.toggleScreen(),
      chat: (open) => panels.chatToggled(open),
      participants: (open) => panels.participantsToggled(open),
      leave: () => void this.leave(),
      end: () => void this.endForAll(),
    });
    this.view = new MeetingView(
      opts.roomId,
      {
        selfId: () => this.session.userId,
        roomName: () => this.session.roomName,
        people: () => this.roster.all(),
        micOn: (userId) => this.micOn(userId),
        own: this.own,
        media: this.media,
        layers: this.layers,
      },
      this.chat,
      this.controls,
    );
    this.el = this.view.el;
    const panels = new SidePanels(this.el, () => this.controls, this.chat, this.view.people);
    this.chat.acceptDrops(this.chat.el);
    this.chat.acceptDrops(this.view.grid.el, () => panels.openChat());
  }

  // --- lifecycle ----------------------------------------------------------------------------

  /** Joins the room; rejects with a human message when the room cannot be joined. */
  async start(): Promise<void> {
    this.listen();
    const entry = this.opts.entry;
    let streams: Stream[] = [];
    if (entry.kind === "created") {
      // A room just made holds only us; everything after arrives as events.
      this.session.created(entry.data);
      this.resetRoster([]);
      this.joins += 1;
    } else {
      const data = await this.join(() => this.session.join(entry.resumeToken, entry.hostKey));
      streams = data.streams;
    }
    this.controls.update({ micOn: this.own.micOn, camOn: this.own.camOn, isHost: this.session.isHost });
    this.render();
    void this.loadHistory();
    // Three layers need a picture worth splitting: the top one is 720p, the lowest 180p.
    if (this.media.simulcast) {
      await this.own.setCameraSize(1280, 720);
      if (this.closed) return;
    }
    this.media.start(streams);
    void this.sendFlag(this.own.camOn ? "startStream" : "stopStream");
    this.statsTimer = window.setInterval(() => void this.pollAudio(), AUDIO_POLL_MS);
    this.exposeDebug();
  }

  /**
   * Joins (or resumes) through `request`; the answer's users become the roster, with the
   * events that arrived meanwhile applied on top.
   */
  private async join(request: () => Promise<JoinRoomData>): Promise<JoinRoomData> {
    this.roster.hold();
    let data: JoinRoomData;
    try {
      data = await request();
    } catch (err) {
      this.roster.release();
      throw err;
    }
    this.resetRoster(data.users);
    this.joins += 1;
    return data;
  }

  private resetRoster(users: JoinRoomData["users"]): void {
    const s = this.session;
    const listed = users.find((u) => u.userId === s.userId);
    if (listed) s.isHost = listed.isHost;
    this.roster.reset(users, {
      userId: s.userId,
      userName: this.opts.userName,
      isHost: s.isHost,
      isStreaming: this.own.camOn,
      isScreenSharing: !!this.own.screen,
      joinedAt: Date.now(),
    });
  }

  private async loadHistory(): Promise<void> {
    try {
      const history = await this.client.request("getChatHistory", { roomId: this.opts.roomId });
      this.chat.add(history, false);
    } catch (err) {
      toast(`Chat history could not be loaded: ${humanError(err)}`, "error");
    }
  }

  private on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): void {
    this.disposers.push(this.client.on(event, handler));
  }

  /** The room's events: the roster follows them; nothing is asked of the server again. */
  private listen(): void {
    const room = this.opts.roomId;
    const roster = this.roster;
    this.on("userJoined", (u) => roster.joined(u.userId, u.userName));
    this.on("userLeft", (u) => {
      if (u.userId === this.session.userId) return;
      roster.left(u.userId);
      this.speakers.forget(u.userId);
      this.media.userLeft(u.userId);
      this.render();
    });
    this.on("hostChanged", ({ userId }) => roster.hostChanged(userId));
    this.on("streamStarted", ({ userId }) => roster.setFlag(userId, "isStreaming", true));
    this.on("streamStopped", ({ userId }) => roster.setFlag(userId, "isStreaming", false));
    this.on("screenStarted", ({ userId }) => roster.setFlag(userId, "isScreenSharing", true));
    this.on("screenStopped", ({ userId }) => {
      roster.setFlag(userId, "isScreenSharing", false);
      if (userId === this.session.userId && this.media.sharing) {
        toast("Someone else started sharing; your screen share stopped.");
        void this.stopScreen(false);
      }
    });
    this.on("streamPublished", (s) => this.media.added(s));
    this.on("streamUnpublished", ({ streamId }) => {
      this.media.removed(streamId);
      this.render();
    });
    this.on("message", (m) => {
      if (m.roomId && m.roomId !== room) return;
      this.chat.add([m], true);
    });
    this.on("meetingEnded", (p) => {
      if (p.roomId && p.roomId !== room) return;
      this.close(false);
      this.opts.onExit("ended");
    });
    this.on("mediaReset", (p) => {
      if (p.roomId && p.roomId !== room) return;
      this.media.restart([], false);
    });
    this.disposers.push(
      this.client.onState((state) => {
        if (!this.closed) this.view.connection(state);
      }),
      this.client.onConnect(() => void this.resume()),
    );
  }

  /** After the socket comes back: rejoin as the same participant and renegotiate media. */
  private async resume(): Promise<void> {
    if (!this.session.joined || this.closed) return;
    try {
      const previous = this.session.userId;
      const data = await this.join(() => this.session.resume());
      if (data.userId !== previous) toast("You rejoined the meeting.");
      this.controls.update({ isHost: this.session.isHost });
      void this.loadHistory();
      this.media.restart(data.streams, true);
      void this.sendFlag(this.own.camOn ? "startStream" : "stopStream");
      this.render();
    } catch (err) {
      if (err instanceof ProtocolError && err.code === "ROOM_NOT_FOUND") {
        this.close(false);
        this.opts.onExit("ended", "This meeting has ended.");
        return;
      }
      toast(`Could not rejoin: ${humanError(err, "join")}`, "error");
    }
  }

  async leave(): Promise<void> {
    if (this.closed) return;
    const req = this.client
      .request("leaveRoom", { roomId: this.opts.roomId, userName: this.opts.userName })
      .catch(() => undefined);
    this.close(false);
    await Promise.race([req, new Promise((r) => setTimeout(r, 1500))]);
    this.opts.onExit("left");
  }

  /** Leaves without showing the farewell screen (the page is going elsewhere). */
  abandon(): void {
    if (this.closed) return;
    void this.client
      .request("leaveRoom", { roomId: this.opts.roomId, userName: this.opts.userName })
      .catch(() => undefined);
    this.close(false);
  }

  private async endForAll(): Promise<void> {
    if (!this.session.isHost) return;
    try {
      await this.client.request("endMeeting", {
        roomId: this.opts.roomId,
        userName: this.opts.userName,
      });
    } catch (err) {
      toast(`The meeting could not be ended: ${humanError(err)}`, "error");
    }
  }

  /** Stops everything this view started; safe to call twice. */
  close(notify: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.media.close(notify);
    this.layers?.stop();
    window.clearInterval(this.statsTimer);
    for (const d of this.disposers.splice(0)) d();
    this.own.stop();
    this.view.close();
  }

  // --- our media ---------------------------------------------------------------------------

  private async sendFlag(event: "startStream" | "stopStream" | "startScreen" | "stopScreen") {
    await this.client.request(event, { roomId: this.opts.roomId }).catch(() => undefined);
  }

  private async toggleMic(): Promise<void> {
    const problem = await this.own.setMic(!this.own.micOn);
    if (problem) toast(problem, "error");
    await this.media.syncSenders();
    this.controls.update({ micOn: this.own.micOn });
    this.render();
  }

  private async toggleCam(): Promise<void> {
    const problem = await this.own.setCam(!this.own.camOn);
    if (problem) {
      toast(problem, "error");
      return;
    }
    await this.media.syncSenders();
    void this.sendFlag(this.own.camOn ? "startStream" : "stopStream");
    this.roster.setFlag(this.session.userId, "isStreaming", this.own.camOn);
    this.controls.update({ camOn: this.own.camOn });
    this.render();
  }

  private async toggleScreen(): Promise<void> {
    if (this.own.screen) {
      await this.stopScreen(true);
      return;
    }
    let track: MediaStreamTrack | null;
    try {
      track = await this.own.startScreen(() => void this.stopScreen(true));
    } catch (err) {
      toast(err instanceof Error ? err.message : "Your screen could not be shared.", "error");
      return;
    }
    if (!track) return;
    this.setSharing(true);
    if (await this.media.publishScreen()) await this.sendFlag("startScreen");
  }

  private async stopScreen(notify: boolean): Promise<void> {
    const wasSharing = this.own.stopScreen();
    await this.media.unpublishScreen(notify);
    if (notify && wasSharing) await this.sendFlag("stopScreen");
    this.setSharing(false);
  }

  private setSharing(on: boolean): void {
    this.roster.setFlag(this.session.userId, "isScreenSharing", on);
    this.controls.update({ sharing: on });
    this.render();
  }

  // --- view ---------------------------------------------------------------------------------

  private micOn(userId: string): boolean {
    return userId === this.session.userId ? this.own.micOn : this.speakers.micOn(userId);
  }

  private render(): void {
    if (!this.closed) this.view.render();
  }

  /** Microphone states from inbound audio, and the active speaker. */
  private async pollAudio(): Promise<void> {
    if (this.closed) return;
    const remote = await this.media.remoteAudio();
    if (this.closed) return;
    const speaker = this.speakers.update(remote, {
      userId: this.session.userId,
      level: this.own.level(),
    });
    this.view.renderAudio(speaker);
  }

  /** A read-only window on the media state, for diagnostics and the browser tests. */
  private exposeDebug(): void {
    const debug = {
      userId: () => this.session.userId,
      isHost: () => this.session.isHost,
      /** Closes the transport as a network failure would; the client reconnects by itself. */
      dropConnection: () => this.client.socket.io.engine?.close(),
      subscriptions: () => this.media.describe(),
      /** Whether the camera goes out in simulcast layers. */
      simulcast: () => this.media.simulcast,
      /** Our camera's video encodings as they go out (one per simulcast layer). */
      sending: () => this.media.sending(),
      /** How often the layer chooser has looked at the tiles, and whether a look is due. */
      layerChecks: () => this.layers?.checks() ?? { checks: 0, pending: false },
      /** Who the roster holds, as this page sees the room. */
      roster: () => this.roster.all(),
      /** How many times this page has joined or resumed the room. */
      joins: () => this.joins,
    };
    (window as unknown as { parleyDebug: typeof debug }).parleyDebug = debug;
  }
}
