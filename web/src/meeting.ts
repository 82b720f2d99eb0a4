/** The meeting view: joins the room, carries media, and keeps the page in step with the room. */
import { ChatPanel } from "./chat";
import { Controls } from "./controls";
import type { LocalMedia } from "./devices";
import { h, toast } from "./dom";
import { LayerChooser } from "./layers";
import { MeetingMedia } from "./media";
import { ParticipantsPanel } from "./participants";
import {
  humanError,
  ProtocolError,
  type ConnectionInfo,
  type CreateRoomData,
  type Events,
  type JoinRoomData,
  type Message,
  type ParleyClient,
  type Stream,
  type User,
} from "./protocol";
import { OwnMedia } from "./local";
import { saveRoomSession, type DevicePrefs } from "./store";
import { Grid } from "./tiles";

export type Entry =
  | { kind: "created"; data: CreateRoomData }
  | { kind: "join"; hostKey?: string; resumeToken?: string };

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

const SPEAKING_LEVEL = 0.03;
const MIC_SILENT_MS = 1500;

interface RemoteAudio {
  packets: number;
  /** When the packet count last moved: a microphone that sends nothing is off. */
  changedAt: number;
  level: number;
}

export class Meeting {
  readonly el: HTMLElement;
  private readonly client: ParleyClient;
  private readonly opts: MeetingOptions;
  private readonly grid = new Grid();
  private readonly chat: ChatPanel;
  private readonly people = new ParticipantsPanel();
  private readonly controls: Controls;
  private readonly banner: HTMLElement;
  private readonly title: HTMLElement;

  private userId = "";
  private isHost = false;
  private token = "";
  private hostKey: string | undefined;
  private roomName = "";
  private readonly users = new Map<string, User>();
  private readonly media: MeetingMedia;
  /** Picks each remote camera's simulcast layer from its tile; null without simulcast. */
  private readonly layers: LayerChooser | null;
  private readonly remoteAudio = new Map<string, RemoteAudio>();
  private readonly own: OwnMedia;
  private joined = false;
  private closed = false;
  private speaker: { userId: string; until: number } | null = null;
  private readonly disposers: (() => void)[] = [];
  private statsTimer = 0;
  private usersTimer = 0;

  constructor(opts: MeetingOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.own = new OwnMedia(opts.media, opts.prefs);

    this.media = new MeetingMedia(this.client, opts.roomId, opts.info, {
      selfId: () => this.userId,
      outgoing: () => this.own.outgoing(),
      screenTrack: () => this.own.screen,
      screenFailed: () => void this.stopScreen(true),
      changed: () => this.render(),
    });
    this.layers = this.media.simulcast ? new LayerChooser() : null;
    this.chat = new ChatPanel({
      send: (text, file) =>
        this.client.request("message", {
          roomId: opts.roomId,
          message: text,
          timestamp: Date.now(),
          ...(file ? { file } : {}),
          clientMessageId: crypto.randomUUID?.() ?? String(Math.random()),
        }),
      uploadAuth: () => (this.token ? { roomId: opts.roomId, token: this.token } : null),
      maxUploadBytes: () => opts.info.limits?.maxUploadBytes ?? 50 * 1024 * 1024,
      selfId: () => this.userId,
      onUnread: (n) => this.controls.setUnread(n),
      draftKey: `parley.draft.${opts.roomId}`,
    });
    this.controls = new Controls({
      microphone: () => void this.toggleMic(),
      camera: () => void this.toggleCam(),
      screen: () => void this.toggleScreen(),
      chat: (open) => {
        this.chat.setOpen(open);
        if (open) {
          this.controls.setPanel("participants", false);
          this.people.setOpen(false);
          this.chat.input.focus();
        }
        this.el.classList.toggle("panel-open", open || this.controls.isOpen("participants"));
      },
      participants: (open) => {
        this.people.setOpen(open);
        if (open) {
          this.controls.setPanel("chat", false);
          this.chat.setOpen(false);
        }
        this.el.classList.toggle("panel-open", open || this.controls.isOpen("chat"));
      },
      leave: () => void this.leave(),
      end: () => void this.endForAll(),
    });

    this.banner = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true });
    this.title = h("h1", { class: "room-title" }, "Joining…");
    const copy = h("button", { type: "button", class: "btn ghost small" }, "Copy link");
    copy.addEventListener("click", () => {
      if (!navigator.clipboard) {
        toast(`Meeting link: ${location.href}`, "info", 10000);
        return;
      }
      navigator.clipboard.writeText(location.href).then(
        () => toast("Meeting link copied."),
        () => toast(`Meeting link: ${location.href}`, "info", 10000),
      );
    });
    this.el = h(
      "div",
      { class: "meeting", "data-room-id": opts.roomId },
      h(
        "header",
        { class: "meeting-header" },
        this.title,
        h("span", { class: "room-id" }, opts.roomId),
        copy,
      ),
      this.banner,
      h("main", { class: "meeting-body" }, this.grid.el, this.chat.el, this.people.el),
      this.controls.el,
    );
    this.chat.acceptDrops(this.chat.el);
    this.chat.acceptDrops(this.grid.el, () => {
      if (!this.controls.isOpen("chat")) this.controls.toggle("chat");
    });
  }

  // --- lifecycle ----------------------------------------------------------------------------

  /** Joins the room; rejects with a human message when the room cannot be joined. */
  async start(): Promise<void> {
    this.listen();
    const entry = this.opts.entry;
    if (entry.kind === "created") {
      const d = entry.data;
      this.userId = d.userId;
      this.token = d.token;
      this.hostKey = d.hostKey;
      this.isHost = true;
      this.roomName = d.roomName;
      this.joined = true;
      this.saveSession();
      const users = await this.client.request("getUsers", { roomId: this.opts.roomId }).catch(() => []);
      this.setUsers(users);
    } else {
      this.hostKey = entry.hostKey;
      const data = await this.join(entry.resumeToken);
      this.applyJoin(data);
    }
    this.controls.update({ micOn: this.own.micOn, camOn: this.own.camOn, isHost: this.isHost });
    this.render();
    void this.loadHistory();
    // Three layers need a picture worth splitting: the top one is 720p, the lowest 180p.
    if (this.media.simulcast) {
      await this.own.setCameraSize(1280, 720);
      if (this.closed) return;
    }
    this.media.start(this.streamsFromJoin ?? []);
    void this.sendFlag(this.own.camOn ? "startStream" : "stopStream");
    this.statsTimer = window.setInterval(() => void this.pollStats(), 500);
    this.usersTimer = window.setInterval(() => void this.refreshUsers(), 15000);
    this.exposeDebug();
  }

  private streamsFromJoin: Stream[] | null = null;

  private async join(resumeToken?: string): Promise<JoinRoomData> {
    const base = { roomId: this.opts.roomId, userName: this.opts.userName };
    const withKey = this.hostKey ? { ...base, hostKey: this.hostKey } : base;
    if (resumeToken) {
      try {
        return await this.client.request("joinRoom", { ...withKey, resumeToken });
      } catch (err) {
        // An expired resume is not fatal: join again as a new participant.
        if (err instanceof ProtocolError && ["ROOM_NOT_FOUND", "ROOM_FULL"].includes(err.code)) {
          throw err;
        }
      }
    }
    return await this.client.request("joinRoom", withKey);
  }

  private applyJoin(data: JoinRoomData): void {
    this.userId = data.userId;
    this.token = data.token;
    this.isHost = data.isHost;
    this.roomName = data.roomName;
    this.joined = true;
    this.streamsFromJoin = data.streams;
    this.setUsers(data.users);
    this.saveSession();
  }

  private saveSession(): void {
    saveRoomSession({
      roomId: this.opts.roomId,
      userName: this.opts.userName,
      userId: this.userId,
      token: this.token,
      ...(this.hostKey ? { hostKey: this.hostKey } : {}),
      inMeeting: true,
    });
  }

  private setUsers(users: User[]): void {
    this.users.clear();
    for (const u of users) this.users.set(u.userId, u);
    const self = this.users.get(this.userId);
    if (self) this.isHost = self.isHost;
    this.users.set(this.userId, {
      userId: this.userId,
      userName: self?.userName ?? this.opts.userName,
      isHost: this.isHost,
      isStreaming: this.own.camOn,
      isScreenSharing: !!this.own.screen,
      joinedAt: self?.joinedAt ?? Date.now(),
    });
  }

  private async refreshUsers(): Promise<void> {
    if (!this.joined || this.closed || !this.client.connected) return;
    try {
      const users = await this.client.request("getUsers", { roomId: this.opts.roomId });
      this.setUsers(users);
      this.render();
    } catch {
      // The next event or refresh will bring the list up to date.
    }
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

  private listen(): void {
    const room = this.opts.roomId;
    this.on("userJoined", (u) => {
      if (!this.users.has(u.userId)) {
        this.users.set(u.userId, {
          userId: u.userId,
          userName: u.userName,
          isHost: false,
          isStreaming: false,
          isScreenSharing: false,
          joinedAt: Date.now(),
        });
      }
      this.render();
      void this.refreshUsers();
    });
    this.on("userLeft", (u) => {
      if (u.userId === this.userId) return;
      this.users.delete(u.userId);
      this.media.userLeft(u.userId);
      this.render();
    });
    this.on("hostChanged", ({ userId }) => {
      const u = this.users.get(userId);
      if (u) u.isHost = true;
      if (userId === this.userId && !this.isHost) {
        this.isHost = true;
        this.controls.update({ isHost: true });
        toast("You are now the host.");
      }
      this.render();
    });
    const flag = (key: "isStreaming" | "isScreenSharing", value: boolean) =>
      ({ userId }: { userId: string }) => {
        const u = this.users.get(userId);
        if (u) u[key] = value;
        this.render();
      };
    this.on("streamStarted", flag("isStreaming", true));
    this.on("streamStopped", flag("isStreaming", false));
    this.on("screenStarted", flag("isScreenSharing", true));
    this.on("screenStopped", (p) => {
      flag("isScreenSharing", false)(p);
      if (p.userId === this.userId && this.media.sharing) {
        toast("Someone else started sharing; your screen share stopped.");
        void this.stopScreen(false);
      }
    });
    this.on("streamPublished", (s) => this.media.added(s));
    this.on("streamUnpublished", ({ streamId }) => {
      this.media.removed(streamId);
      this.render();
    });
    this.on("message", (m: Message) => {
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
        if (this.closed) return;
        this.banner.hidden = state === "connected";
        this.banner.textContent = state === "connected" ? "" : "Reconnecting…";
        this.el.classList.toggle("reconnecting", state !== "connected");
      }),
      this.client.onConnect(() => void this.resume()),
    );
  }

  /** After the socket comes back: rejoin as the same participant and renegotiate media. */
  private async resume(): Promise<void> {
    if (!this.joined || this.closed) return;
    try {
      const data = await this.join(this.token);
      const previous = this.userId;
      this.applyJoin(data);
      if (data.userId !== previous) toast("You rejoined the meeting.");
      this.controls.update({ isHost: this.isHost });
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
    if (!this.isHost) return;
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
    window.clearInterval(this.usersTimer);
    for (const d of this.disposers.splice(0)) d();
    this.own.stop();
    for (const tile of this.grid.all()) tile.setMedia(null);
    this.grid.hideScreen();
  }

  // --- media -----------------------------------------------------------------------------

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
    const self = this.users.get(this.userId);
    if (self) self.isStreaming = this.own.camOn;
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
    const self = this.users.get(this.userId);
    if (self) self.isScreenSharing = on;
    this.controls.update({ sharing: on });
    this.render();
  }

  // --- view ---------------------------------------------------------------------------------

  private micState(userId: string): boolean {
    if (userId === this.userId) return this.own.micOn;
    const a = this.remoteAudio.get(userId);
    return !!a && performance.now() - a.changedAt < MIC_SILENT_MS;
  }

  /** Brings tiles, the screen area and the participants list in line with the state. */
  private render(): void {
    if (this.closed) return;
    this.title.textContent = this.roomName || "Meeting";
    document.title = `${this.roomName || "Meeting"} · Parley`;
    const owners = new Map<string, string>();
    for (const u of this.users.values()) owners.set(u.userId, u.userName);
    for (const s of this.media.streams.values()) {
      if (!owners.has(s.userId)) owners.set(s.userId, s.userName);
    }

    for (const tile of this.grid.all()) {
      if (!owners.has(tile.state.userId)) this.grid.remove(tile.state.userId);
    }
    for (const [userId, userName] of owners) {
      const u = this.users.get(userId);
      const isSelf = userId === this.userId;
      const tile = this.grid.upsert({
        userId,
        userName,
        isSelf,
        isHost: u?.isHost ?? false,
        camOn: isSelf ? this.own.camOn : (u?.isStreaming ?? true),
        micOn: this.micState(userId),
      });
      if (isSelf) {
        tile.setMedia(this.own.selfStream);
      } else {
        const sub = this.media.camera(userId) ?? null;
        tile.setMedia(sub?.media ?? null);
        this.layers?.bind(tile.el, sub);
      }
    }
    this.layers?.prune();

    const screenSub = this.media.screen();
    if (this.own.screen) {
      const own = new MediaStream([this.own.screen]);
      if (this.grid.screenOwner !== this.userId) {
        this.grid.showScreen(this.userId, "You are presenting", own);
      }
    } else if (screenSub) {
      this.grid.showScreen(
        screenSub.stream.userId,
        `${screenSub.stream.userName} is presenting`,
        screenSub.media,
      );
    } else {
      this.grid.hideScreen();
    }

    this.renderPeople();
    this.controls.setCount(this.users.size);
  }

  private renderPeople(): void {
    this.people.render(
      [...this.users.values()].map((u) => ({
        ...u,
        isSelf: u.userId === this.userId,
        micOn: this.micState(u.userId),
        isStreaming: u.userId === this.userId ? this.own.camOn : u.isStreaming,
      })),
    );
  }

  /** Microphone states from inbound audio, and the active speaker (loudest, held 1 s). */
  private async pollStats(): Promise<void> {
    if (this.closed) return;
    const now = performance.now();
    for (const [userId, a] of await this.media.remoteAudio()) {
      const prev = this.remoteAudio.get(userId);
      const moved = !prev || a.packets !== prev.packets;
      this.remoteAudio.set(userId, {
        ...a,
        changedAt: moved && a.packets > 0 ? now : (prev?.changedAt ?? -Infinity),
      });
    }
    let best: { userId: string; level: number } | null = null;
    const selfLevel = this.own.level();
    if (selfLevel > SPEAKING_LEVEL * 2) best = { userId: this.userId, level: selfLevel / 2 };
    for (const [userId, a] of this.remoteAudio) {
      if (this.micState(userId) && a.level > SPEAKING_LEVEL && (!best || a.level > best.level)) {
        best = { userId, level: a.level };
      }
    }
    if (best) this.speaker = { userId: best.userId, until: now + 1000 };
    else if (this.speaker && this.speaker.until < now) this.speaker = null;
    const many = this.grid.all().length > 1;
    for (const tile of this.grid.all()) {
      tile.setSpeaking(many && tile.state.userId === this.speaker?.userId);
      tile.update({ micOn: this.micState(tile.state.userId) });
    }
    this.renderPeople();
  }

  /** A read-only window on the media state, for diagnostics and the browser tests. */
  private exposeDebug(): void {
    const debug = {
      userId: () => this.userId,
      isHost: () => this.isHost,
      /** Closes the transport as a network failure would; the client reconnects by itself. */
      dropConnection: () => this.client.socket.io.engine?.close(),
      subscriptions: () => this.media.describe(),
      /** Whether the camera goes out in simulcast layers. */
      simulcast: () => this.media.simulcast,
      /** Our camera's video encodings as they go out (one per simulcast layer). */
      sending: () => this.media.sending(),
    };
    (window as unknown as { parleyDebug: typeof debug }).parleyDebug = debug;
  }
}
