/**
 * The meeting page: header, connection banner, the stage (tiles and shared screen), the side
 * panels and the controls, drawn from the meeting's state. Redraws are incremental: tiles and
 * participant rows are updated in place.
 */
import type { ChatPanel } from "./chat";
import type { Controls } from "./controls";
import { h, toast } from "./dom";
import type { LayerChooser } from "./layers";
import type { OwnMedia } from "./local";
import type { MeetingMedia } from "./media";
import type { ParticipantsPanel } from "./participants";
import type { ConnectionState, User } from "./protocol";
import type { FloatingReactions, ReactionBar } from "./reactions";
import type { RoomMenu } from "./roommenu";
import { Grid } from "./tiles";

/** What the view draws from. */
export interface ViewState {
  selfId(): string;
  roomName(): string;
  people(): User[];
  micOn(userId: string): boolean;
  readonly own: OwnMedia;
  readonly media: MeetingMedia;
  readonly layers: LayerChooser | null;
}

export class MeetingView {
  readonly el: HTMLElement;
  readonly grid = new Grid();
  private readonly banner: HTMLElement;
  private readonly title: HTMLElement;
  /** Switches between the grid and the speaker layout; named after the one it switches to. */
  readonly layoutButton: HTMLButtonElement;
  private speakerId: string | null = null;
  private closed = false;

  constructor(
    roomId: string,
    private readonly state: ViewState,
    chat: ChatPanel,
    private readonly controls: Controls,
    readonly people: ParticipantsPanel,
    extras: { roomMenu: RoomMenu; reactionBar: ReactionBar; floating: FloatingReactions },
  ) {
    this.banner = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true });
    this.title = h("h1", { class: "room-title" }, "Joining…");
    const copy = h("button", { type: "button", class: "btn ghost small" }, "Copy link");
    copy.addEventListener("click", copyLink);
    this.layoutButton = h("button", { type: "button", class: "btn ghost small layout-toggle" }, "Speaker view");
    this.layoutButton.addEventListener("click", () => this.setSpeakerLayout(!this.grid.speakerLayout));
    this.el = h(
      "div",
      { class: "meeting", "data-room-id": roomId },
      h(
        "header",
        { class: "meeting-header" },
        this.title,
        extras.roomMenu.status,
        h("span", { class: "room-id" }, roomId),
        copy,
        this.layoutButton,
        h("span", { class: "menu-anchor" }, extras.roomMenu.button, extras.roomMenu.el),
      ),
      this.banner,
      h("main", { class: "meeting-body" }, this.grid.el, chat.el, this.people.el),
      controls.el,
    );
    this.grid.el.appendChild(extras.floating.el);
    controls.el.appendChild(extras.reactionBar.el);
  }

  connection(state: ConnectionState): void {
    if (this.closed) return;
    this.banner.hidden = state === "connected";
    this.banner.textContent = state === "connected" ? "" : "Reconnecting…";
    this.el.classList.toggle("reconnecting", state !== "connected");
  }

  /** Brings tiles, the screen area and the participants list in line with the state. */
  render(): void {
    if (this.closed) return;
    const s = this.state;
    const selfId = s.selfId();
    const roomName = s.roomName() || "Meeting";
    this.title.textContent = roomName;
    document.title = `${roomName} · Parley`;
    const people = new Map(s.people().map((u) => [u.userId, u]));
    const owners = new Map<string, string>();
    for (const u of people.values()) owners.set(u.userId, u.userName);
    for (const stream of s.media.streams.values()) {
      if (!owners.has(stream.userId)) owners.set(stream.userId, stream.userName);
    }

    for (const tile of this.grid.all()) {
      if (!owners.has(tile.state.userId)) this.grid.remove(tile.state.userId);
    }
    for (const [userId, userName] of owners) {
      const u = people.get(userId);
      const isSelf = userId === selfId;
      const tile = this.grid.upsert({
        userId,
        userName,
        isSelf,
        isHost: u?.isHost ?? false,
        camOn: isSelf ? s.own.camOn : (u?.isStreaming ?? true),
        micOn: s.micOn(userId),
        handRaised: !!u?.handRaised,
        audioBlocked: !!u?.audioMuted,
      });
      if (isSelf) {
        tile.setMedia(s.own.selfStream);
      } else {
        const sub = s.media.camera(userId) ?? null;
        tile.setMedia(sub?.media ?? null);
        s.layers?.bind(tile.el, sub);
      }
    }
    s.layers?.prune();

    const screenSub = s.media.screen();
    if (s.own.screen) {
      if (this.grid.screenOwner !== selfId) {
        this.grid.showScreen(selfId, "You are presenting", new MediaStream([s.own.screen]));
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
    this.controls.setCount(people.size);
    this.renderLayout();
  }

  /** The speaker layout (on) or the grid (off). */
  setSpeakerLayout(on: boolean): void {
    this.layoutButton.textContent = on ? "Grid view" : "Speaker view";
    this.grid.setSpeakerLayout(on, null);
    this.renderLayout();
  }

  /** Draws large, in the speaker layout: the active speaker unless that is us (then whoever
   * was drawn large stays), else the first other camera, else our own; nothing while a
   * screen is shared (the screen is large). */
  private renderLayout(): void {
    const grid = this.grid;
    if (!grid.speakerLayout) return;
    if (grid.screenOwner !== null) {
      grid.feature(null);
      return;
    }
    const tiles = grid.all();
    const remote = tiles.filter((t) => !t.state.isSelf);
    const speaker = remote.find((t) => t.state.userId === this.speakerId);
    const current = remote.find((t) => t.state.userId === grid.featuredId);
    const pick = speaker ?? current ?? remote[0] ?? tiles[0];
    grid.feature(pick?.state.userId ?? null);
  }

  /** Microphone states and the active speaker changed (or may have): updates them in place. */
  renderAudio(speakerId: string | null): void {
    if (this.closed) return;
    this.speakerId = speakerId;
    this.renderLayout();
    const many = this.grid.all().length > 1;
    for (const tile of this.grid.all()) {
      tile.setSpeaking(many && tile.state.userId === speakerId);
      const micOn = this.state.micOn(tile.state.userId);
      if (tile.state.micOn !== micOn) tile.update({ micOn });
    }
    this.renderPeople();
  }

  private renderPeople(): void {
    const s = this.state;
    const selfId = s.selfId();
    this.people.render(
      s.people().map((u) => ({
        ...u,
        isSelf: u.userId === selfId,
        micOn: s.micOn(u.userId),
        isStreaming: u.userId === selfId ? s.own.camOn : u.isStreaming,
      })),
    );
  }

  /** Lets go of every video; nothing is drawn after. */
  close(): void {
    this.closed = true;
    for (const tile of this.grid.all()) tile.setMedia(null);
    this.grid.hideScreen();
  }
}

function copyLink(): void {
  if (!navigator.clipboard) {
    toast(`Meeting link: ${location.href}`, "info", 10000);
    return;
  }
  navigator.clipboard.writeText(location.href).then(
    () => toast("Meeting link copied."),
    () => toast(`Meeting link: ${location.href}`, "info", 10000),
  );
}
