/** Cameras and microphones: getting them, listing them, and measuring a microphone's level. */

export interface LocalMedia {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  /** Why something is missing, in human words, or null. */
  problem: string | null;
}

/** The camera picture asked for; larger when it goes out in simulcast layers. */
let cameraSize = { width: 640, height: 360 };

/** Sets the camera size asked for from now on (simulcast wants a picture worth three layers). */
export function setCameraSize(width: number, height: number): void {
  cameraSize = { width, height };
}

export function cameraConstraints(): MediaTrackConstraints {
  return {
    width: { ideal: cameraSize.width },
    height: { ideal: cameraSize.height },
    frameRate: { ideal: 24, max: 30 },
  };
}

function describe(err: unknown, what: string): string {
  const name = err instanceof DOMException ? err.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return `Access to your ${what} was denied. You can still join; others will not ${
      what === "camera" ? "see" : "hear"
    } you.`;
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") return `No ${what} was found.`;
  if (name === "NotReadableError") return `Your ${what} is in use by another application.`;
  return `Your ${what} could not be started.`;
}

/** One track of a kind, or null with the reason. Never throws. */
export async function getTrack(
  kind: "audio" | "video",
  deviceId?: string,
): Promise<{ track: MediaStreamTrack | null; problem: string | null }> {
  if (!navigator.mediaDevices?.getUserMedia) {
    const problem = window.isSecureContext
      ? "This browser cannot use a camera or microphone."
      : "Camera and microphone need a secure (https) address.";
    return { track: null, problem };
  }
  const base: MediaTrackConstraints = kind === "video" ? cameraConstraints() : {
    echoCancellation: true,
    noiseSuppression: true,
  };
  const attempt = async (withDevice: boolean): Promise<MediaStreamTrack | null> => {
    const c: MediaTrackConstraints = withDevice && deviceId
      ? { ...base, deviceId: { exact: deviceId } }
      : base;
    const stream = await navigator.mediaDevices.getUserMedia(
      kind === "video" ? { video: c } : { audio: c },
    );
    return stream.getTracks()[0] ?? null;
  };
  try {
    return { track: await attempt(true), problem: null };
  } catch (err) {
    if (deviceId) {
      try {
        return { track: await attempt(false), problem: null };
      } catch {
        // fall through to the first error
      }
    }
    return { track: null, problem: describe(err, kind === "video" ? "camera" : "microphone") };
  }
}

export async function getLocalMedia(opts: {
  audioDeviceId?: string;
  videoDeviceId?: string;
  wantAudio?: boolean;
  wantVideo?: boolean;
}): Promise<LocalMedia> {
  const [a, v] = await Promise.all([
    opts.wantAudio === false ? { track: null, problem: null } : getTrack("audio", opts.audioDeviceId),
    opts.wantVideo === false ? { track: null, problem: null } : getTrack("video", opts.videoDeviceId),
  ]);
  const problems = [...new Set([a.problem, v.problem].filter(Boolean))];
  return { audio: a.track, video: v.track, problem: problems.length ? problems.join(" ") : null };
}

export async function listDevices(): Promise<{
  audio: MediaDeviceInfo[];
  video: MediaDeviceInfo[];
}> {
  if (!navigator.mediaDevices?.enumerateDevices) return { audio: [], video: [] };
  try {
    const all = await navigator.mediaDevices.enumerateDevices();
    return {
      audio: all.filter((d) => d.kind === "audioinput" && d.deviceId),
      video: all.filter((d) => d.kind === "videoinput" && d.deviceId),
    };
  } catch {
    return { audio: [], video: [] };
  }
}

let sharedContext: AudioContext | null = null;
function audioContext(): AudioContext | null {
  try {
    sharedContext ??= new AudioContext();
    if (sharedContext.state === "suspended") void sharedContext.resume();
    return sharedContext;
  } catch {
    return null;
  }
}

/** Samples a microphone track's level (0..1) until `stop()`. */
export class LevelMeter {
  private readonly analyser: AnalyserNode | null = null;
  private readonly source: MediaStreamAudioSourceNode | null = null;
  private readonly buffer: Uint8Array<ArrayBuffer> = new Uint8Array(new ArrayBuffer(512));

  constructor(track: MediaStreamTrack) {
    const ctx = audioContext();
    if (!ctx) return;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 512;
    this.source.connect(this.analyser);
  }

  level(): number {
    if (!this.analyser) return 0;
    this.analyser.getByteTimeDomainData(this.buffer);
    let sum = 0;
    for (const b of this.buffer) {
      const x = (b - 128) / 128;
      sum += x * x;
    }
    return Math.min(1, Math.sqrt(sum / this.buffer.length) * 4);
  }

  stop(): void {
    this.source?.disconnect();
    this.analyser?.disconnect();
  }
}
