/** Pre-join at "/r/{roomId}": preview, microphone level, device choice, then "Join meeting". */
import { getTrack, LevelMeter, listDevices, type LocalMedia } from "./devices";
import { field, h, uid } from "./dom";
import { icon, setIcon } from "./icons";
import type { ParleyClient } from "./protocol";
import { selfTest } from "./selftest";
import { devicePrefs, saveDevicePrefs, saveName, savedName, type DevicePrefs } from "./store";

export interface PrejoinResult {
  userName: string;
  /** The meeting's password, when it has one. */
  password?: string;
  media: LocalMedia;
  prefs: DevicePrefs;
}

export class Prejoin {
  readonly el: HTMLElement;
  private readonly video: HTMLVideoElement;
  private readonly meterBar: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly deviceNotice: HTMLElement;
  private readonly error: HTMLElement;
  private readonly camSelect: HTMLSelectElement;
  private readonly micSelect: HTMLSelectElement;
  private readonly micBtn: HTMLButtonElement;
  private readonly camBtn: HTMLButtonElement;
  private readonly joinBtn: HTMLButtonElement;
  private readonly nameInput: HTMLInputElement;
  private readonly passwordWrap: HTMLElement;
  private readonly passwordInput: HTMLInputElement;
  private readonly title: HTMLElement;
  private audio: MediaStreamTrack | null = null;
  private video_: MediaStreamTrack | null = null;
  private readonly opening = { audio: 0, video: 0 };
  private meter: LevelMeter | null = null;
  private raf = 0;
  private prefs: DevicePrefs = devicePrefs();
  private problems: { audio: string | null; video: string | null } = { audio: null, video: null };
  private handedOver = false;
  private readonly check: HTMLElement;
  private readonly checkText: HTMLElement;
  private readonly checkAgain: HTMLButtonElement;

  constructor(
    private readonly client: ParleyClient,
    readonly roomId: string,
    private readonly onJoin: (result: PrejoinResult) => Promise<string | null>,
    private readonly onBack: () => void,
    /** The name a join token gives: shown, not editable (the server takes it from the token). */
    private readonly lockedName?: string,
  ) {
    this.video = h("video", { autoplay: true, playsinline: true, class: "mirrored preview-video", "aria-label": "Camera preview" });
    this.video.muted = true;
    this.meterBar = h("div", { class: "meter-fill" });
    this.notice = h("p", { class: "notice", role: "status" });
    this.deviceNotice = h("p", { class: "notice device-notice", role: "status" });
    this.error = h("p", { class: "error", role: "alert" });
    const camId = uid("cam");
    const micId = uid("mic");
    this.camSelect = h("select", { id: camId });
    this.micSelect = h("select", { id: micId });
    this.micBtn = h("button", { type: "button", class: "control", "aria-pressed": "true" },
      icon("mic"), h("span", { class: "label" }, "Microphone"));
    this.camBtn = h("button", { type: "button", class: "control", "aria-pressed": "true" },
      icon("cam"), h("span", { class: "label" }, "Camera"));
    this.joinBtn = h("button", { type: "submit", class: "btn primary big" }, "Join meeting");
    const name = field(
      "Your name",
      { autocomplete: "name", maxlength: 64, value: lockedName ?? savedName(), required: true },
      lockedName !== undefined ? "Your name comes from your invitation link." : undefined,
    );
    this.nameInput = name.input;
    if (lockedName !== undefined) {
      this.nameInput.readOnly = true;
      this.nameInput.setAttribute("aria-readonly", "true");
      this.nameInput.classList.add("locked");
    }
    const password = field("Meeting password", {
      type: "password",
      maxlength: 128,
      autocomplete: "off",
    }, "The host gave the password with the link.");
    this.passwordWrap = password.wrap;
    this.passwordWrap.hidden = true;
    this.passwordInput = password.input;
    this.title = h("h1", {}, "Ready to join?");
    this.checkText = h("span", { class: "selftest-text" }, "Checking the connection to the media server…");
    this.checkAgain = h("button", { type: "button", class: "btn small", hidden: true }, "Check again");
    this.check = h(
      "div",
      { class: "selftest", role: "status", "aria-label": "Connection check", "data-reach": "checking" },
      this.checkText,
      this.checkAgain,
    );
    this.checkAgain.addEventListener("click", () => void this.runSelfTest());

    const form = h(
      "form",
      { class: "prejoin-side", novalidate: true },
      this.title,
      h("p", { class: "room-id" }, `Meeting ID: ${roomId}`),
      name.wrap,
      this.passwordWrap,
      h("div", { class: "field" }, h("label", { for: camId }, "Camera device"), this.camSelect),
      h("div", { class: "field" }, h("label", { for: micId }, "Microphone device"), this.micSelect),
      this.error,
      this.joinBtn,
      h("a", { href: "/", class: "back" }, "← Back to the lobby"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    form.querySelector("a.back")?.addEventListener("click", (ev) => {
      ev.preventDefault();
      this.onBack();
    });

    this.el = h(
      "div",
      { class: "prejoin" },
      h(
        "div",
        { class: "preview" },
        h("div", { class: "preview-frame" }, this.video, h("div", { class: "preview-off", "aria-hidden": "true" }, "Camera is off")),
        h("div", { class: "meter", role: "meter", "aria-label": "Microphone level", "aria-valuemin": "0", "aria-valuemax": "100" }, this.meterBar),
        h("div", { class: "preview-controls" }, this.micBtn, this.camBtn),
        this.deviceNotice,
        this.notice,
        this.check,
      ),
      form,
    );

    // While a device is being opened the button shows (and flips) the wish; after, what is live
    // (a device that failed to open is tried again by the next click).
    this.micBtn.addEventListener("click", () => void this.setMic(!this.shown("audio")));
    this.camBtn.addEventListener("click", () => void this.setCam(!this.shown("video")));
    this.camSelect.addEventListener("change", () => {
      this.prefs.videoDeviceId = this.camSelect.value || undefined;
      void this.restart("video");
    });
    this.micSelect.addEventListener("change", () => {
      this.prefs.audioDeviceId = this.micSelect.value || undefined;
      void this.restart("audio");
    });
  }

  /** The meeting asks for a password: show its field (and focus it once the page is ready). */
  askPassword(): void {
    this.passwordWrap.hidden = false;
  }

  async start(): Promise<void> {
    void this.lookUpRoom();
    void this.runSelfTest();
    this.renderToggles();
    await Promise.all([this.restart("audio"), this.prefs.camOn ? this.restart("video") : null]);
    await this.fillDevices();
    this.tick();
    if (!this.nameInput.value) this.nameInput.focus();
    else if (!this.passwordWrap.hidden) this.passwordInput.focus();
  }

  private async lookUpRoom(): Promise<void> {
    try {
      const rooms = await this.client.request("getRoomsList");
      const room = rooms.find((r) => r.roomId === this.roomId);
      if (room) {
        this.title.textContent = `Join “${room.roomName}”`;
        const n = room.participants;
        this.notice.textContent = n ? `${n} ${n === 1 ? "person is" : "people are"} in this meeting.` : "";
        if (room.settings?.hasPassword) this.askPassword();
        if (room.settings?.locked) {
          this.notice.textContent += " The meeting is locked: only a host can let people in now.";
        }
        if (room.recording) this.notice.textContent += " This meeting is being recorded.";
      } else {
        this.error.textContent = "This meeting does not exist or has ended.";
      }
    } catch {
      // Joining will tell.
    }
  }

  /** The connectivity self-test (selftest.ts), its result in plain words. */
  private async runSelfTest(): Promise<void> {
    this.checkAgain.hidden = true;
    this.check.dataset.reach = "checking";
    this.checkText.textContent = "Checking the connection to the media server…";
    const result = await selfTest(this.client.baseUrl);
    this.check.dataset.reach = result.reach;
    this.checkText.replaceChildren(h("strong", {}, `${result.summary}: `), result.detail);
    this.checkAgain.hidden = false;
  }

  /** Whether the microphone or camera toggle shows "on". */
  private shown(kind: "audio" | "video"): boolean {
    const wanted = kind === "audio" ? this.prefs.micOn : this.prefs.camOn;
    if (this.opening[kind]) return wanted;
    return wanted && !!(kind === "audio" ? this.audio : this.video_);
  }

  private async restart(kind: "audio" | "video"): Promise<void> {
    const deviceId = kind === "audio" ? this.prefs.audioDeviceId : this.prefs.videoDeviceId;
    this.opening[kind] += 1;
    this.renderToggles();
    let r: Awaited<ReturnType<typeof getTrack>>;
    try {
      r = await getTrack(kind, deviceId);
    } finally {
      this.opening[kind] -= 1;
    }
    if (kind === "video" && !this.prefs.camOn && r.track) {
      // turned off while it was opening
      r.track.stop();
      r = { ...r, track: null };
    }
    if (kind === "audio") {
      this.audio?.stop();
      this.meter?.stop();
      this.audio = r.track;
      this.meter = r.track ? new LevelMeter(r.track) : null;
      if (r.track) r.track.enabled = this.prefs.micOn;
    } else {
      this.video_?.stop();
      this.video_ = r.track;
      this.video.srcObject = r.track ? new MediaStream([r.track]) : null;
    }
    this.problems[kind] = r.problem;
    this.showProblems();
    this.renderToggles();
  }

  private showProblems(): void {
    const msgs = [...new Set([this.problems.audio, this.problems.video].filter(Boolean))];
    this.deviceNotice.textContent = msgs.length
      ? `${msgs.join(" ")} You can still join the meeting.`
      : "";
  }

  private async fillDevices(): Promise<void> {
    const { audio, video } = await listDevices();
    const fill = (sel: HTMLSelectElement, devices: MediaDeviceInfo[], current: MediaStreamTrack | null, none: string) => {
      const active = current?.getSettings().deviceId;
      sel.replaceChildren(
        ...(devices.length
          ? devices.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === active }, d.label || `Device ${i + 1}`))
          : [h("option", { value: "" }, none)]),
      );
      sel.disabled = !devices.length;
    };
    fill(this.camSelect, video, this.video_, "No camera found");
    fill(this.micSelect, audio, this.audio, "No microphone found");
  }

  private async setMic(on: boolean): Promise<void> {
    this.prefs.micOn = on;
    if (on && !this.audio) await this.restart("audio");
    if (this.audio) this.audio.enabled = on;
    this.renderToggles();
  }

  private async setCam(on: boolean): Promise<void> {
    this.prefs.camOn = on;
    if (on) {
      await this.restart("video");
      await this.fillDevices();
    } else {
      this.video_?.stop();
      this.video_ = null;
      this.video.srcObject = null;
      this.problems.video = null;
      this.showProblems();
    }
    this.renderToggles();
  }

  private renderToggles(): void {
    const micOn = this.shown("audio");
    const camOn = this.shown("video");
    this.micBtn.setAttribute("aria-pressed", String(micOn));
    this.camBtn.setAttribute("aria-pressed", String(camOn));
    this.micBtn.classList.toggle("off", !micOn);
    this.camBtn.classList.toggle("off", !camOn);
    setIcon(this.micBtn, micOn ? "mic" : "micOff");
    setIcon(this.camBtn, camOn ? "cam" : "camOff");
    this.el.classList.toggle("cam-off", !camOn);
  }

  private tick = (): void => {
    const level = this.prefs.micOn && this.meter ? this.meter.level() : 0;
    this.meterBar.style.width = `${Math.round(level * 100)}%`;
    this.raf = requestAnimationFrame(this.tick);
  };

  private async submit(): Promise<void> {
    const userName = this.nameInput.value.trim();
    this.error.textContent = "";
    if (!userName) {
      this.error.textContent = "Please enter your name.";
      this.nameInput.focus();
      return;
    }
    const password = this.passwordWrap.hidden ? undefined : this.passwordInput.value;
    if (password === "") {
      this.error.textContent = "Please type the meeting's password.";
      this.passwordInput.focus();
      return;
    }
    if (this.lockedName === undefined) saveName(userName);
    saveDevicePrefs(this.prefs);
    this.joinBtn.disabled = true;
    this.joinBtn.textContent = "Joining…";
    this.handedOver = true;
    const error = await this.onJoin({
      userName,
      ...(password !== undefined ? { password } : {}),
      media: { audio: this.audio, video: this.prefs.camOn ? this.video_ : null, problem: null },
      prefs: { ...this.prefs },
    });
    if (error) {
      this.handedOver = false;
      this.error.textContent = error;
      this.joinBtn.disabled = false;
      this.joinBtn.textContent = "Join meeting";
    }
  }

  /** Stops the preview; the tracks stay alive when they were handed to the meeting. */
  stop(): void {
    cancelAnimationFrame(this.raf);
    this.meter?.stop();
    if (!this.handedOver) {
      this.audio?.stop();
      this.video_?.stop();
    }
    this.video.srcObject = null;
  }
}
