/**
 * Microphone states and the active speaker, from the inbound audio of each remote camera: a
 * microphone whose packets stop moving is off (a muted sender sends nothing), and the loudest
 * voice above a threshold speaks (held for a second, so the highlight does not flicker).
 */
import type { RemoteAudio } from "./media";

const SPEAKING_LEVEL = 0.03;
const MIC_SILENT_MS = 1500;
const SPEAKER_HOLD_MS = 1000;

interface Heard extends RemoteAudio {
  /** When the packet count last moved. */
  changedAt: number;
}

export class SpeakerDetector {
  private readonly heard = new Map<string, Heard>();
  private speaker: { userId: string; until: number } | null = null;

  /** Whether `userId`'s microphone (a remote one) sends sound. */
  micOn(userId: string, now = performance.now()): boolean {
    const a = this.heard.get(userId);
    return !!a && now - a.changedAt < MIC_SILENT_MS;
  }

  /** The active speaker, if any: the server's when it announced one, else our own guess. */
  get speakerId(): string | null {
    return this.announced ?? this.speaker?.userId ?? null;
  }

  /** The speaker the server announced (`activeSpeaker`); it holds until the next one. */
  private announced: string | null = null;

  announce(userId: string): void {
    this.announced = userId;
  }

  /**
   * Takes one round of statistics (remote audio by user, and our own level) and returns the
   * active speaker.
   */
  update(remote: Map<string, RemoteAudio>, self: { userId: string; level: number }): string | null {
    const now = performance.now();
    for (const [userId, a] of remote) {
      const prev = this.heard.get(userId);
      const moved = !prev || a.packets !== prev.packets;
      this.heard.set(userId, {
        ...a,
        changedAt: moved && a.packets > 0 ? now : (prev?.changedAt ?? -Infinity),
      });
    }
    let best: { userId: string; level: number } | null = null;
    // Our own voice counts at half its level: the meter reads it before any loss.
    if (self.level > SPEAKING_LEVEL * 2) best = { userId: self.userId, level: self.level / 2 };
    for (const [userId, a] of this.heard) {
      if (this.micOn(userId, now) && a.level > SPEAKING_LEVEL && (!best || a.level > best.level)) {
        best = { userId, level: a.level };
      }
    }
    if (best) this.speaker = { userId: best.userId, until: now + SPEAKER_HOLD_MS };
    else if (this.speaker && this.speaker.until < now) this.speaker = null;
    return this.speakerId;
  }

  forget(userId: string): void {
    this.heard.delete(userId);
    if (this.announced === userId) this.announced = null;
  }
}
