/**
 * Recording: a persistent "Recording" indicator everyone sees while the meeting is recorded,
 * and, for hosts, start/stop and the meeting's recordings with their download links (a
 * section of the meeting menu).
 */
import { formatBytes, formatTime, h, toast } from "./dom";
import { humanError } from "./errors";
import type { ActiveRecording, Events, ParleyClient, Recording } from "./protocol";

const REASONS: Record<Events["recordingStopped"]["reason"], string> = {
  stopped: "Recording stopped.",
  ended: "Recording stopped: the meeting ended.",
  quota: "Recording stopped: it reached its limit.",
  failed: "Recording stopped: the server could not go on recording.",
};

export class RecordingControls {
  /** Beside the meeting's title: shown to everyone while recording. */
  readonly indicator: HTMLElement;
  /** The meeting menu's recording section (hosts only). */
  readonly section: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly list: HTMLUListElement;
  private readonly error: HTMLElement;
  private active: ActiveRecording | null = null;
  private isHost = false;

  constructor(
    private readonly client: ParleyClient,
    private readonly roomId: string,
  ) {
    this.indicator = h(
      "span",
      { class: "recording-indicator", role: "status", "aria-live": "polite", hidden: true },
      h("span", { class: "recording-dot", "aria-hidden": "true" }),
      "Recording",
    );
    this.toggle = h("button", { type: "button", class: "btn small" }, "Start recording");
    this.toggle.addEventListener("click", () => void this.startOrStop());
    this.list = h("ul", { class: "recordings", "aria-label": "Recordings" });
    this.error = h("p", { class: "error", role: "alert" });
    this.section = h(
      "section",
      { class: "recording-section", hidden: true },
      h("h3", {}, "Recording"),
      this.toggle,
      this.list,
      this.error,
    );
  }

  /** Subscribes to the room's recording events; returns the unsubscribers. */
  listen(): (() => void)[] {
    return [
      this.client.on("recordingStarted", (e) => {
        this.show({ recordingId: e.recordingId, startedAt: e.startedAt });
        toast("This meeting is now being recorded.");
      }),
      this.client.on("recordingStopped", (e) => {
        this.show(null);
        toast(REASONS[e.reason] ?? REASONS.stopped);
        void this.refresh();
      }),
      this.client.on("recordingReady", () => {
        if (this.isHost) toast("The recording is ready to download.");
        void this.refresh();
      }),
    ];
  }

  /** The running recording as the server says (`joinRoom`, events). */
  show(active: ActiveRecording | null): void {
    this.active = active;
    this.indicator.hidden = active === null;
    this.toggle.textContent = active ? "Stop recording" : "Start recording";
  }

  setHost(isHost: boolean): void {
    this.isHost = isHost;
    this.section.hidden = !isHost;
    if (isHost) void this.refresh();
  }

  private async startOrStop(): Promise<void> {
    this.error.textContent = "";
    this.toggle.disabled = true;
    try {
      const event = this.active ? "stopRecording" : "startRecording";
      await this.client.request(event, { roomId: this.roomId });
    } catch (err) {
      this.error.textContent = humanError(err);
    } finally {
      this.toggle.disabled = false;
    }
  }

  /** The meeting's recordings, each ready one with its download link (hosts only). */
  async refresh(): Promise<void> {
    if (!this.isHost) return;
    let recordings: Recording[];
    try {
      recordings = await this.client.request("getRecordings", { roomId: this.roomId });
    } catch {
      return;
    }
    this.list.replaceChildren(...recordings.map((r) => this.item(r)));
  }

  private item(r: Recording): HTMLLIElement {
    const when = formatTime(r.startedAt);
    const minutes = Math.max(1, Math.round(r.duration / 60000));
    if (r.status === "ready" && r.url) {
      const name = `Recording of ${when} (${minutes} min, ${formatBytes(r.size)})`;
      return h("li", {}, h("a", { href: r.url, download: `recording-${r.recordingId}.webm` }, name));
    }
    const state = { recording: "recording…", processing: "being prepared…", failed: "failed" };
    return h("li", {}, `Recording of ${when}: ${state[r.status as keyof typeof state] ?? r.status}`);
  }
}
