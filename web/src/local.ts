/** Our own camera, microphone and screen: the tracks, their on/off state and the self view. */
import { cameraConstraints, getTrack, LevelMeter, setCameraSize, type LocalMedia } from "./devices";
import { saveDevicePrefs, type DevicePrefs } from "./store";

export class OwnMedia {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  screen: MediaStreamTrack | null = null;
  micOn: boolean;
  camOn: boolean;
  /** What the self view shows: our camera alone (never our microphone). */
  readonly selfStream = new MediaStream();
  private meter: LevelMeter | null = null;

  constructor(
    initial: LocalMedia,
    private readonly prefs: DevicePrefs,
  ) {
    this.audio = initial.audio;
    this.video = initial.video;
    this.micOn = prefs.micOn && !!this.audio;
    this.camOn = prefs.camOn && !!this.video;
    if (this.audio) {
      this.audio.enabled = this.micOn;
      this.meter = new LevelMeter(this.audio);
    }
    if (this.video && !this.camOn) {
      this.video.stop();
      this.video = null;
    }
    if (this.video) this.selfStream.addTrack(this.video);
  }

  /** Asks the camera for `width`x`height` now and whenever it is opened again. */
  async setCameraSize(width: number, height: number): Promise<void> {
    setCameraSize(width, height);
    await this.video?.applyConstraints(cameraConstraints()).catch(() => undefined);
  }

  /** What the camera publication should send now. */
  outgoing(): { audio: MediaStreamTrack | null; video: MediaStreamTrack | null } {
    return { audio: this.micOn ? this.audio : null, video: this.camOn ? this.video : null };
  }

  /** Our microphone level (0..1), 0 when muted. */
  level(): number {
    return this.micOn ? (this.meter?.level() ?? 0) : 0;
  }

  /** Turns the microphone on or off; resolves with a problem in words, or null. */
  async setMic(on: boolean): Promise<string | null> {
    if (on && (!this.audio || this.audio.readyState === "ended")) {
      const r = await getTrack("audio", this.prefs.audioDeviceId);
      if (!r.track) return r.problem ?? "Your microphone could not be started.";
      this.audio = r.track;
      this.meter?.stop();
      this.meter = new LevelMeter(r.track);
    }
    this.micOn = on;
    if (this.audio) this.audio.enabled = on;
    this.save();
    return null;
  }

  /** Turns the camera on (opening it again) or off (releasing it, so its light goes off). */
  async setCam(on: boolean): Promise<string | null> {
    if (on) {
      const r = await getTrack("video", this.prefs.videoDeviceId);
      if (!r.track) return r.problem ?? "Your camera could not be started.";
      this.video = r.track;
      this.selfStream.getVideoTracks().forEach((t) => this.selfStream.removeTrack(t));
      this.selfStream.addTrack(r.track);
    } else {
      this.video?.stop();
      if (this.video) this.selfStream.removeTrack(this.video);
      this.video = null;
    }
    this.camOn = on;
    this.save();
    return null;
  }

  /** Asks the browser for a screen; null when the person cancelled. */
  async startScreen(onEnded: () => void): Promise<MediaStreamTrack | null> {
    if (!navigator.mediaDevices?.getDisplayMedia) {
      throw new Error("This browser cannot share a screen.");
    }
    let track: MediaStreamTrack | undefined;
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15, max: 30 } },
        audio: false,
      });
      track = stream.getVideoTracks()[0];
    } catch (err) {
      if (err instanceof DOMException && err.name === "NotAllowedError") return null;
      throw new Error("Your screen could not be shared.");
    }
    if (!track) return null;
    track.contentHint = "detail";
    track.addEventListener("ended", onEnded);
    this.screen = track;
    return track;
  }

  /** Stops sharing; returns whether something was being shared. */
  stopScreen(): boolean {
    const track = this.screen;
    this.screen = null;
    track?.stop();
    return track !== null;
  }

  private save(): void {
    saveDevicePrefs({ ...this.prefs, micOn: this.micOn, camOn: this.camOn });
  }

  /** Releases every device; safe to call twice. */
  stop(): void {
    for (const t of [this.audio, this.video, this.screen]) t?.stop();
    this.meter?.stop();
    this.meter = null;
  }
}
