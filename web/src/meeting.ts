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
import { ParticipantsPanel } from "./participants";
import {
  ProtocolError,
  type ConnectionInfo,
  type Events,
  type JoinRoomData,
  type LobbyEntry,
  type MediaKind,
  type ParleyClient,
  type Reaction,
  type Stream,
  type UploadHandle,
  type UploadResult,
  type User,
} from "./protocol";
import { FloatingReactions, ReactionBar } from "./reactions";
import { RecordingControls } from "./recording";
import { RoomMenu } from "./roommenu";
import { Roster } from "./roster";
import { RoomSession, type Entry } from "./session";
import { SpeakerDetector } from "./speaker";
import type { DevicePrefs } from "./store";
import { MeetingView } from "./view";
import { keyBanner } from "./e2ee/prompt";
import { E2eeSession } from "./e2ee/session";
import { meetingKey } from "./e2ee/store";
import { encodedLength } from "./e2ee/content";

export type { Entry } from "./session";

/** How we came out: left, the meeting ended, a host removed us, or a host did not let us in. */
export type ExitReason = "left" | "ended" | "removed" | "denied" | "replaced";

export interface MeetingOptions {
  client: ParleyClient;
  info: ConnectionInfo;
  roomId: string;
  userName: string;
  entry: Entry;
  media: LocalMedia;
  prefs: DevicePrefs;
  onExit: (reason: ExitReason, message?: string) => void;
  /** The room put us in its lobby: a host must let us in (`start` resolves when one does). */
  onWaiting?: () => void;
  /** The meeting is end-to-end encrypted and we have no key: ask for it (`start` waits). */
  askKey?: () => Promise<Uint8Array>;
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
  private readonly people: ParticipantsPanel;
  private readonly roomMenu: RoomMenu;
  private readonly recording: RecordingControls;
  private readonly reactionBar: ReactionBar;
  private readonly floating = new FloatingReactions();
  /** Who waits in the lobby (hosts only), by request id. */
  private readonly waiting = new Map<string, LobbyEntry>();
  private closed = false;
  /** How many times the room's answer to a join or resume has arrived. */
  private joins = 0;
  private readonly disposers: (() => void)[] = [];
  /** Whether our hand is up, as the server last said. */
  private handUp = false;
  private statsTimer = 0;
  /** When we ask `/get-connection-info` again for TURN credentials that are about to end. */
  private iceTimer = 0;
  /** End-to-end encryption; `e2eeOn` once the room says it is encrypted. */
  private readonly e2ee: E2eeSession;
  private e2eeOn = false;

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
        this.setHost(true);
        toast("You are now the host.");
      },
      updated: (before, after) => this.userUpdated(before, after),
    });

    this.media = new MeetingMedia(this.client, opts.roomId, opts.info, {
      selfId: () => this.session.userId,
      outgoing: () => this.own.outgoing(),
      screenTrack: () => this.own.screen,
      screenFailed: () => void this.stopScreen(true),
      changed: () => this.render(),
    });
    this.layers = new LayerChooser(this.media.simulcast);
    this.e2ee = new E2eeSession(this.client, opts.roomId, {
      selfId: () => this.session.userId,
      people: () => this.roster.all(),
      changed: () => this.render(),
    });
    this.chat = new ChatPanel({
      send: async (outgoing) =>
        this.client.request("message", {
          roomId: opts.roomId,
          message: await this.sealText(outgoing.message),
          timestamp: Date.now(),
          ...(outgoing.file ? { file: outgoing.file } : {}),
          ...(outgoing.to ? { to: outgoing.to } : {}),
          clientMessageId: outgoing.clientMessageId,
        }),
      upload: (file, onProgress) => this.upload(file, onProgress),
      encrypted: () => this.e2eeOn,
      reveal: (text) => (this.e2eeOn ? this.e2ee.revealText(text) : null),
      download: (url, name) => (this.e2eeOn ? this.e2ee.download(url, name) : null),
      maxUploadBytes: () => opts.info.limits?.maxUploadBytes ?? 50 * 1024 * 1024,
      selfId: () => this.session.userId,
      nameOf: (userId) => this.roster.get(userId)?.userName ?? null,
      history: (before) =>
        this.client.request("getChatHistory", {
          roomId: opts.roomId,
          ...(before ? { before } : {}),
        }),
      onUnread: (n) => this.controls.setUnread(n),
      draftKey: `parley.draft.${opts.roomId}`,
    });
    this.controls = new Controls({
      microphone: () => void this.toggleMic(),
      camera: () => void this.toggleCam(),
      screen: () => void this.toggleScreen(),
      hand: () => void this.toggleHand(),
      reactions: (open) => this.reactionBar.setOpen(open),
      chat: (open) => panels.chatToggled(open),
      participants: (open) => panels.participantsToggled(open),
      leave: () => void this.leave(),
      end: () => void this.endForAll(),
    });
    this.reactionBar = new ReactionBar((emoji) => void this.react(emoji));
    this.roomMenu = new RoomMenu(async (change) => {
      const { settings } = await this.client.request("updateRoom", {
        roomId: opts.roomId,
        ...change,
      });
      return settings;
    });
    this.people = new ParticipantsPanel({
      setRole: (userId, role) => void this.hostAction("setRole", { userId, role }),
      mute: (userId, kind) => void this.hostAction("mute", { userId, kind }),
      unmute: (userId, kind) => void this.hostAction("unmute", { userId, kind }),
      lowerHand: (userId) => void this.hostAction("raiseHand", { userId, raised: false }),
      remove: (userId) => void this.hostAction("kick", { userId }),
      muteAll: () => void this.hostAction("muteAll", { kind: "audio" }),
      admit: (requestId) => void this.hostAction("admit", { requestId }),
      deny: (requestId) => void this.hostAction("deny", { requestId }),
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
      this.people,
      { roomMenu: this.roomMenu, reactionBar: this.reactionBar, floating: this.floating },
    );
    this.el = this.view.el;
    this.recording = new RecordingControls(this.client, opts.roomId);
    this.roomMenu.status.after(this.recording.indicator);
    this.roomMenu.el.append(this.recording.section);
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
    this.session.onWaiting = () => this.opts.onWaiting?.();
    if (entry.kind === "created") {
      // A room just made holds only us; everything after arrives as events.
      this.session.created(entry.data);
      this.resetRoster([]);
      this.joins += 1;
      // Its settings: the defaults and the creator's choices; asking changes nothing.
      const settings = await this.client
        .request("updateRoom", { roomId: this.opts.roomId })
        .then(({ settings }) => settings, () => null);
      if (settings) this.roomMenu.show(settings);
      // Not knowing the settings, a meeting we made with a key is taken to be encrypted.
      if (settings ? settings.e2ee : meetingKey(this.opts.roomId)) await this.enterE2ee();
    } else {
      const data = await this.join(() =>
        this.session.join(entry.resumeToken, entry.hostKey, entry.password, entry.jwt),
      );
      streams = data.streams;
      if (data.settings?.e2ee) await this.enterE2ee();
    }
    if (this.closed) return;
    this.controls.update({ micOn: this.own.micOn, camOn: this.own.camOn });
    this.setHost(this.session.isHost);
    this.render();
    void this.loadHistory();
    await this.participantIce();
    if (this.closed) return;
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
    if (data.settings) this.roomMenu.show(data.settings);
    this.recording.show(data.recording ?? null);
    this.waiting.clear();
    for (const w of data.lobby ?? []) this.waiting.set(w.requestId, w);
    this.people.setLobby([...this.waiting.values()]);
    return data;
  }

  /**
   * Our ICE servers as a participant: TURN credentials are given only with our token, so
   * `/get-connection-info` is asked again once we are in (and after each resume). They last
   * minutes: we ask again before they end, for as long as we are in the meeting.
   */
  private async participantIce(): Promise<void> {
    window.clearTimeout(this.iceTimer);
    if (!this.session.token || this.closed) return;
    let again: number | null = ICE_RETRY_MS;
    try {
      const info = await this.client.getConnectionInfo(this.session.token);
      this.media.setIceServers(info.iceServers ?? []);
      again = renewalDelay(info.iceServers ?? [], Date.now());
    } catch {
      // The servers known before joining still serve (STUN, or none on a LAN).
    }
    if (again !== null && !this.closed) {
      this.iceTimer = window.setTimeout(() => void this.participantIce(), again);
    }
  }

  /** Whether we are a host now: the host's menu, tools and the end-for-all control. */
  private setHost(isHost: boolean): void {
    this.session.isHost = isHost;
    this.controls.update({ isHost });
    this.roomMenu.setHost(isHost);
    this.recording.setHost(isHost);
    this.people.setHost(isHost);
    if (isHost) this.people.setLobby([...this.waiting.values()]);
    else this.waiting.clear();
  }

  /** `userUpdated`: someone's role, hand or server mutes changed. */
  private userUpdated(before: User | undefined, after: User): void {
    if (after.userId !== this.session.userId) return;
    if (after.isHost !== this.session.isHost) {
      this.setHost(after.isHost);
      toast(after.isHost ? "You are now a host." : "You are no longer a host.");
    }
    this.controls.update({
      handRaised: !!after.handRaised,
      audioBlocked: !!after.audioMuted,
      videoBlocked: !!after.videoMuted,
    });
    if (before?.handRaised && !after.handRaised && this.handUp) {
      toast("A host lowered your hand.");
    }
    this.handUp = !!after.handRaised;
    // A host lifting a block only allows us to send again; nothing is turned on.
    if (before?.audioMuted && !after.audioMuted && !this.own.micOn) {
      toast("You may unmute your microphone again.");
    }
    if (before?.videoMuted && !after.videoMuted && !this.own.camOn) {
      toast("You may turn your camera on again.");
    }
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
    this.disposers.push(...this.recording.listen());
    const roster = this.roster;
    this.on("userJoined", (u) => roster.joined(u.userId, u.userName));
    this.on("userLeft", (u) => {
      if (u.userId === this.session.userId) return;
      if (u.reason === "kicked") toast(`${u.userName} was removed from the meeting.`);
      roster.left(u.userId);
      this.speakers.forget(u.userId);
      this.media.userLeft(u.userId);
      this.render();
    });
    this.on("hostChanged", ({ userId }) => roster.hostChanged(userId));
    this.on("activeSpeaker", ({ userId }) => {
      this.speakers.announce(userId);
      this.view.renderAudio(this.speakers.speakerId);
    });
    this.on("videoPaused", ({ subscriptionId, paused }) => {
      const userId = this.media.userOf(subscriptionId);
      if (userId) this.view.grid.tile(userId)?.setPaused(paused);
    });
    this.on("userUpdated", (u) => roster.updated(u));
    this.on("roomUpdated", (p) => {
      if (p.roomId !== room) return;
      this.roomMenu.show(p.settings);
      this.render();
    });
    this.on("lobbyRequest", (p) => {
      if (p.roomId !== room || !this.session.isHost) return;
      const isNew = !this.waiting.has(p.requestId);
      this.waiting.set(p.requestId, { requestId: p.requestId, userName: p.userName });
      this.people.setLobby([...this.waiting.values()]);
      if (isNew) toast(`${p.userName} is waiting to join. Open Participants to let them in.`);
    });
    this.on("lobbyResolved", (p) => {
      if (p.roomId !== room) return;
      this.waiting.delete(p.requestId);
      this.people.setLobby([...this.waiting.values()]);
    });
    this.on("kicked", (p) => {
      if (p.roomId !== room) return;
      this.close(false);
      this.opts.onExit("removed");
    });
    this.on("replaced", (p) => {
      if (p.roomId !== room) return;
      this.close(false); // no resume: the meeting goes on in the other tab or device
      this.opts.onExit("replaced");
    });
    this.on("muted", (p) => {
      if (p.roomId !== room) return;
      void this.mutedByServer(p.kind, p.by);
    });
    this.on("reaction", (p) => {
      const name =
        p.userId === this.session.userId ? "You" : (roster.get(p.userId)?.userName ?? "");
      this.floating.show(p.emoji, name);
    });
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
      if (this.e2eeOn) void this.e2ee.announce();
      this.setHost(this.session.isHost);
      void this.loadHistory();
      await this.participantIce();
      if (this.closed) return;
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

  /** Leaves the lobby while waiting there (`start` then fails with JoinCancelled). */
  leaveLobby(): void {
    this.session.leaveLobby();
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

  /** Our userId in the meeting. */
  get userId(): string {
    return this.session.userId;
  }

  /** Turns our microphone (`audio`) or camera (`video`) on or off, as its button does. */
  async setMedia(kind: MediaKind, on: boolean): Promise<void> {
    const current = kind === "audio" ? this.own.micOn : this.own.camOn;
    if (current === on || this.closed) return;
    await (kind === "audio" ? this.toggleMic() : this.toggleCam());
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
    window.clearTimeout(this.iceTimer);
    for (const d of this.disposers.splice(0)) d();
    this.e2ee.close();
    if (this.client.frames === this.e2ee) this.client.frames = null;
    this.own.stop();
    this.view.close();
  }

  // --- our media ---------------------------------------------------------------------------

  private async sendFlag(event: "startStream" | "stopStream" | "startScreen" | "stopScreen") {
    await this.client.request(event, { roomId: this.opts.roomId }).catch(() => undefined);
  }

  /** Whether the server blocks our `kind` (a host muted it). */
  private blocked(kind: MediaKind): boolean {
    const self = this.roster.get(this.session.userId);
    return kind === "audio" ? !!self?.audioMuted : !!self?.videoMuted;
  }

  /**
   * Before sending `kind` again: lifts the server's block when there is one; false (with a
   * notice) when we may not.
   */
  private async mayUnmute(kind: MediaKind): Promise<boolean> {
    if (!this.blocked(kind)) return true;
    try {
      await this.client.request("unmute", {
        roomId: this.opts.roomId,
        userId: this.session.userId,
        kind,
      });
      return true;
    } catch (err) {
      const what = kind === "audio" ? "microphone" : "camera";
      toast(
        err instanceof ProtocolError && err.code === "FORBIDDEN"
          ? `A host muted your ${what}; only a host can let you turn it on. Raise your hand to ask.`
          : `Your ${what} could not be turned on: ${humanError(err)}`,
        "error",
        8000,
      );
      return false;
    }
  }

  /** `muted`: a host (or we ourselves) blocked our `kind`: stop sending it here too. */
  private async mutedByServer(kind: MediaKind, by: string): Promise<void> {
    const byHost = by !== this.session.userId;
    if (kind === "audio") {
      if (byHost) toast("The host muted your microphone.", "info", 8000);
      if (this.own.micOn) {
        await this.own.setMic(false);
        await this.media.syncSenders();
      }
      this.controls.update({ micOn: this.own.micOn, audioBlocked: true });
    } else {
      if (byHost) toast("The host turned off your camera.", "info", 8000);
      if (this.own.camOn) {
        await this.own.setCam(false);
        await this.media.syncSenders();
        void this.sendFlag("stopStream");
        this.roster.setFlag(this.session.userId, "isStreaming", false);
      }
      this.controls.update({ camOn: this.own.camOn, videoBlocked: true });
    }
    this.render();
  }

  private async toggleHand(): Promise<void> {
    const raised = !this.handUp;
    try {
      await this.client.request("raiseHand", { roomId: this.opts.roomId, raised });
    } catch (err) {
      toast(`Your hand could not be ${raised ? "raised" : "lowered"}: ${humanError(err)}`, "error");
    }
  }

  private async react(emoji: Reaction): Promise<void> {
    try {
      await this.client.request("react", { roomId: this.opts.roomId, emoji });
    } catch (err) {
      toast(humanError(err), "error");
    }
  }

  /** A host's action on someone (or on the lobby); failures are told in words. */
  private async hostAction(
    event: "setRole" | "mute" | "unmute" | "raiseHand" | "kick" | "muteAll" | "admit" | "deny",
    payload: Record<string, unknown>,
  ): Promise<void> {
    try {
      const request = this.client.request.bind(this.client) as (
        e: string,
        p: Record<string, unknown>,
      ) => Promise<unknown>;
      await request(event, { roomId: this.opts.roomId, ...payload });
      if (event === "muteAll") toast("Everyone else's microphone is muted.");
    } catch (err) {
      toast(humanError(err), "error", 8000);
    }
  }

  private async toggleMic(): Promise<void> {
    if (!this.own.micOn && !(await this.mayUnmute("audio"))) return;
    const problem = await this.own.setMic(!this.own.micOn);
    if (problem) toast(problem, "error");
    await this.media.syncSenders();
    this.controls.update({ micOn: this.own.micOn });
    this.render();
  }

  private async toggleCam(): Promise<void> {
    if (!this.own.camOn && !(await this.mayUnmute("video"))) return;
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
    if (userId === this.session.userId) return this.own.micOn;
    return !this.roster.get(userId)?.audioMuted && this.speakers.micOn(userId);
  }

  private render(): void {
    if (this.closed) return;
    this.view.render();
    if (this.e2eeOn) this.e2ee.decorate(this.el);
    this.chat.setRecipients(this.roster.all(), this.roomMenu.current.privateChat);
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

  // --- end-to-end encryption ---------------------------------------------------------------

  /**
   * The room is end-to-end encrypted: we need its key (from the link, or asked for) before we
   * see, hear or read anything, and every peer connection from now on encrypts and decrypts.
   */
  private async enterE2ee(): Promise<void> {
    this.e2eeOn = true;
    if (!E2eeSession.supported) {
      throw new Error("This browser cannot take part in end-to-end encrypted meetings.");
    }
    const key = meetingKey(this.opts.roomId) ?? (await this.askKey());
    this.e2ee.setKey(key);
    this.client.frames = this.e2ee;
    this.e2ee.listen();
    await this.e2ee.announce();
    this.el.prepend(keyBanner(this.opts.roomId, (typed) => {
      this.e2ee.setKey(typed);
      this.chat.revealAll();
      void this.e2ee.announce();
      // Fresh subscriptions start at a keyframe the new key can decrypt.
      this.media.restart([...this.media.streams.values()], true);
    }));
    (window as unknown as { parleyE2ee: unknown }).parleyE2ee = {
      keyId: () => this.e2ee.ring?.current ?? null,
      cannotDecrypt: (userId: string) => this.e2ee.cannotDecrypt(userId),
      /** A text sealed with our current key, and one opened with the keys we hold (null: it
       * does not decrypt): what a page kept after leaving can still read. */
      seal: (text: string) => this.e2ee.encryptText(text),
      reveal: async (text: string) => {
        const { text: plain, ok } = await this.e2ee.revealText(text);
        return ok ? plain : null;
      },
    };
  }

  private askKey(): Promise<Uint8Array> {
    if (!this.opts.askKey) throw new Error("This meeting is end-to-end encrypted: open it with its key.");
    return this.opts.askKey();
  }

  /** The text as it goes out: encrypted in an end-to-end encrypted meeting. */
  private async sealText(text: string): Promise<string> {
    if (!this.e2eeOn || !text) return text;
    if (encodedLength(text) > MAX_MESSAGE_CHARS) {
      throw new ProtocolError("INVALID_PAYLOAD", "This message is too long for an encrypted meeting; send it in parts.");
    }
    return this.e2ee.encryptText(text);
  }

  /** Uploads a file, encrypted first in an end-to-end encrypted meeting. */
  private upload(file: File, onProgress: (fraction: number) => void): UploadHandle | null {
    const token = this.session.token;
    if (!token) return null;
    if (!this.e2eeOn) return this.client.uploadFile(file, this.opts.roomId, token, onProgress);
    let inner: UploadHandle | null = null;
    let aborted = false;
    const promise = this.e2ee.encryptFile(file).then((sealed): Promise<UploadResult> => {
      if (aborted) return Promise.resolve({ cancelled: true });
      inner = this.client.uploadFile(sealed, this.opts.roomId, token, onProgress);
      return inner.promise;
    });
    return {
      promise,
      abort: () => {
        aborted = true;
        inner?.abort();
      },
    };
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

/** The server's `max_message_chars` (its default): an encrypted text must fit it encoded. */
const MAX_MESSAGE_CHARS = 4000;

/** How soon to ask again after `/get-connection-info` failed, in ms. */
const ICE_RETRY_MS = 30_000;

/**
 * When to ask for new TURN credentials, in ms: halfway to the first of them to end (their
 * username is `<expiry unix time>:<userId>`), at least ICE_RETRY_MS; null when none ends.
 */
export function renewalDelay(servers: RTCIceServer[], now: number): number | null {
  const ends = servers
    .map((s) => /^(\d+):/.exec(s.username ?? "")?.[1])
    .filter((t): t is string => t !== undefined)
    .map((t) => Number(t) * 1000);
  if (ends.length === 0) return null;
  return Math.max(ICE_RETRY_MS, (Math.min(...ends) - now) / 2);
}
