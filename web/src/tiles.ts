/**
 * The video grid: one tile per participant, plus a large area for a shared screen. In the
 * speaker layout one tile (the active speaker's) is drawn large and the others in a strip.
 */
import { h, initials } from "./dom";
import { icon, setIcon } from "./icons";

export interface TileState {
  userId: string;
  userName: string;
  isSelf: boolean;
  isHost: boolean;
  camOn: boolean;
  micOn: boolean;
  handRaised?: boolean;
  /** A host has blocked this person's microphone. */
  audioBlocked?: boolean;
}

export class Tile {
  readonly el: HTMLElement;
  readonly video: HTMLVideoElement;
  private readonly avatar: HTMLElement;
  private readonly name: HTMLElement;
  private readonly host: HTMLElement;
  private readonly mic: HTMLElement;
  private readonly cam: HTMLElement;
  private readonly hand: HTMLElement;
  state: TileState;

  constructor(state: TileState) {
    this.state = state;
    this.video = h("video", {
      autoplay: true,
      playsinline: true,
      class: state.isSelf ? "mirrored" : "",
      "data-user-id": state.userId,
      "aria-label": state.isSelf ? "Your camera" : `${state.userName}'s camera`,
    });
    // The self view never plays back our own microphone.
    this.video.muted = state.isSelf;
    this.avatar = h("div", { class: "avatar", "aria-hidden": "true" });
    this.name = h("span", { class: "name" });
    this.host = h("span", { class: "badge host-badge" }, "Host");
    this.mic = h("span", { class: "state mic-state" });
    this.cam = h("span", { class: "state cam-state" });
    this.hand = h("span", { class: "tile-hand", role: "img", "aria-label": "Hand raised", hidden: true }, icon("hand"));
    this.el = h(
      "figure",
      { class: "tile", "data-user-id": state.userId },
      this.video,
      this.avatar,
      this.hand,
      h("figcaption", { class: "caption" }, this.mic, this.name, this.host, this.cam),
    );
    this.update(state);
  }

  update(patch: Partial<TileState>): void {
    this.state = { ...this.state, ...patch };
    const s = this.state;
    this.name.textContent = s.isSelf ? `${s.userName} (you)` : s.userName;
    this.avatar.textContent = initials(s.userName);
    this.host.hidden = !s.isHost;
    this.el.classList.toggle("cam-off", !s.camOn);
    setIcon(this.mic, s.micOn ? "mic" : "micOff");
    this.mic.title = s.audioBlocked
      ? "Muted by a host"
      : s.micOn
        ? "Microphone on"
        : "Microphone off";
    this.mic.setAttribute("aria-label", this.mic.title);
    setIcon(this.cam, "camOff");
    this.cam.hidden = s.camOn;
    this.cam.title = s.camOn ? "Camera on" : "Camera off";
    this.cam.setAttribute("aria-label", this.cam.title);
    this.el.dataset.mic = s.micOn ? "on" : "off";
    this.el.dataset.cam = s.camOn ? "on" : "off";
    this.el.dataset.muted = s.audioBlocked ? "host" : "no";
    this.el.dataset.hand = s.handRaised ? "raised" : "down";
    this.hand.hidden = !s.handRaised;
  }

  setMedia(media: MediaStream | null): void {
    if (this.video.srcObject !== media) {
      this.video.srcObject = media;
      if (media) playSafely(this.video);
    }
  }

  setSpeaking(speaking: boolean): void {
    this.el.classList.toggle("speaking", speaking);
  }

  /** The server stopped (or resumed) this video for lack of bandwidth: say so instead of
   * showing the last frame frozen. */
  setPaused(paused: boolean): void {
    this.el.classList.toggle("paused", paused);
    this.el.setAttribute("aria-description", paused ? "Video paused: connection too slow" : "");
  }
}

/** Starts playback; if the browser refuses sound without a gesture, asks for one. */
export function playSafely(video: HTMLVideoElement): void {
  video.play().catch(() => {
    if (video.muted) return;
    video.muted = true;
    void video.play().catch(() => undefined);
    const unmute = (): void => {
      video.muted = false;
      void video.play().catch(() => undefined);
      document.removeEventListener("click", unmute, true);
    };
    document.addEventListener("click", unmute, true);
  });
}

export class Grid {
  readonly el: HTMLElement;
  readonly tilesEl: HTMLElement;
  readonly screenEl: HTMLElement;
  /** Where the speaker layout draws its large tile. */
  readonly featuredEl: HTMLElement;
  readonly screenVideo: HTMLVideoElement;
  private readonly screenLabel: HTMLElement;
  private readonly tiles = new Map<string, Tile>();
  screenOwner: string | null = null;
  /** Whether the speaker layout is on, and whose tile it draws large. */
  speakerLayout = false;
  featuredId: string | null = null;

  constructor() {
    this.screenVideo = h("video", {
      autoplay: true,
      playsinline: true,
      class: "screen-video",
      "aria-label": "Shared screen",
    });
    this.screenVideo.muted = true;
    this.screenLabel = h("div", { class: "screen-label" });
    this.screenEl = h(
      "section",
      { class: "screen-area", "aria-label": "Shared screen", hidden: true },
      this.screenVideo,
      this.screenLabel,
    );
    this.tilesEl = h("section", { class: "tiles", "aria-label": "Cameras" });
    this.featuredEl = h("section", { class: "featured", "aria-label": "Speaker", hidden: true });
    this.el = h("div", { class: "stage" }, this.screenEl, this.featuredEl, this.tilesEl);
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => this.relayout()).observe(this.tilesEl);
    }
  }

  tile(userId: string): Tile | undefined {
    return this.tiles.get(userId);
  }

  all(): Tile[] {
    return [...this.tiles.values()];
  }

  upsert(state: TileState): Tile {
    const existing = this.tiles.get(state.userId);
    if (existing) {
      existing.update(state);
      return existing;
    }
    const tile = new Tile(state);
    this.tiles.set(state.userId, tile);
    if (state.isSelf) this.tilesEl.prepend(tile.el);
    else this.tilesEl.appendChild(tile.el);
    this.relayout();
    return tile;
  }

  remove(userId: string): void {
    const tile = this.tiles.get(userId);
    if (!tile) return;
    tile.setMedia(null);
    tile.el.remove();
    this.tiles.delete(userId);
    if (this.featuredId === userId) this.featuredId = null;
    this.relayout();
  }

  showScreen(ownerId: string, label: string, media: MediaStream): void {
    this.screenOwner = ownerId;
    this.screenLabel.textContent = label;
    if (this.screenVideo.srcObject !== media) {
      this.screenVideo.srcObject = media;
      playSafely(this.screenVideo);
    }
    this.screenEl.hidden = false;
    this.screenEl.dataset.userId = ownerId;
    this.el.classList.add("has-screen");
    this.relayout();
  }

  hideScreen(ownerId?: string): void {
    if (ownerId !== undefined && this.screenOwner !== ownerId) return;
    this.screenOwner = null;
    this.screenVideo.srcObject = null;
    this.screenEl.hidden = true;
    this.el.classList.remove("has-screen");
    this.relayout();
  }

  /** Turns the speaker layout on or off; `featured` is the tile it draws large. */
  setSpeakerLayout(on: boolean, featured: string | null): void {
    this.speakerLayout = on;
    this.el.classList.toggle("speaker-layout", on);
    this.featuredEl.hidden = !on;
    this.feature(on ? featured : null);
  }

  /** Draws `userId`'s tile large (speaker layout), the one drawn before back in the strip.
   * A tile moves within one task, so its video keeps playing. */
  feature(userId: string | null): void {
    const next = userId === null ? undefined : this.tiles.get(userId);
    const id = next ? userId : null;
    if (id === this.featuredId && (!next || next.el.parentElement === this.featuredEl)) return;
    const previous = this.featuredId === null ? undefined : this.tiles.get(this.featuredId);
    if (previous) {
      if (previous.state.isSelf) this.tilesEl.prepend(previous.el);
      else this.tilesEl.appendChild(previous.el);
      if (previous.video.srcObject) playSafely(previous.video);
    }
    this.featuredId = id;
    if (next) {
      this.featuredEl.appendChild(next.el);
      if (next.video.srcObject) playSafely(next.video);
    }
    this.featuredEl.dataset.userId = id ?? "";
    this.relayout();
  }

  /** Sizes tiles (16:9) as large as the area allows for their count. */
  relayout(): void {
    if (this.speakerLayout) {
      // The strip: tiles as high as the strip, side by side (it scrolls).
      this.tilesEl.dataset.count = String(this.tiles.size);
      this.tilesEl.style.removeProperty("--tile-w");
      return;
    }
    const n = Math.max(1, this.tiles.size);
    const gap = 8;
    const width = this.tilesEl.clientWidth;
    const height = this.tilesEl.clientHeight;
    this.tilesEl.dataset.count = String(n);
    if (!width || !height) return;
    let best = 0;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * (16 / 9));
      best = Math.max(best, w);
    }
    this.tilesEl.style.setProperty("--tile-w", `${Math.floor(best) - 1}px`);
  }
}
