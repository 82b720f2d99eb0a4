/**
 * The meeting page's side of /embed.js: when a page framed it (`?embed=<that page's origin>`),
 * the meeting's events go to that page and its commands come from it, over postMessage. Only
 * that origin hears the events (postMessage's target origin), and only messages from the
 * framing window with that origin are obeyed. Which pages may frame Parley at all is the
 * server's `PARLEY_FRAME_ANCESTORS` (CSP frame-ancestors).
 */
import type { MediaKind, ParleyClient } from "./protocol";

export const EMBED_PROTOCOL = "parley-embed/1";

export type EmbedEvent =
  | "joined"
  | "left"
  | "participantJoined"
  | "participantLeft"
  | "ended"
  | "error";

/** What the embedding page may ask of the meeting in progress. */
export interface EmbedCommands {
  leave(): void;
  setMedia(kind: MediaKind, on: boolean): void;
}

const STORED = "parley.embed";

export class EmbedBridge {
  private commands: EmbedCommands | null = null;

  private constructor(private readonly parent: string) {
    window.addEventListener("message", (ev) => this.received(ev));
  }

  /** The bridge when this page is framed by an embedding page, else null. The origin is kept
   * for the tab (a reload stays embedded) and taken out of the address. */
  static fromAddress(): EmbedBridge | null {
    if (window.parent === window) return null;
    const params = new URLSearchParams(location.search);
    const given = params.get("embed");
    if (given !== null) {
      params.delete("embed");
      const query = params.toString();
      history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}`);
    }
    let origin: string;
    try {
      origin = new URL(given ?? sessionStorage.getItem(STORED) ?? "").origin;
    } catch {
      return null;
    }
    if (origin === "null") return null;
    sessionStorage.setItem(STORED, origin);
    return new EmbedBridge(origin);
  }

  emit(name: EmbedEvent, data: Record<string, unknown>): void {
    window.parent.postMessage({ protocol: EMBED_PROTOCOL, type: "event", name, data }, this.parent);
  }

  /** Tells the embedding page of the room's comings and goings and of its end. */
  listen(client: ParleyClient): void {
    client.on("userJoined", (u) =>
      this.emit("participantJoined", { userId: u.userId, userName: u.userName }),
    );
    client.on("userLeft", (u) =>
      this.emit("participantLeft", {
        userId: u.userId,
        userName: u.userName,
        reason: u.reason ?? "left",
      }),
    );
    client.on("meetingEnded", (p) =>
      this.emit("ended", { roomId: p.roomId, ...(p.endedBy ? { endedBy: p.endedBy } : {}) }),
    );
  }

  /** We are in the meeting `roomId` as `userId`; `commands` act on it until `left`. */
  joined(roomId: string, userId: string, commands: EmbedCommands): void {
    this.commands = commands;
    this.emit("joined", { roomId, userId });
  }

  left(roomId: string, reason: string): void {
    this.commands = null;
    this.emit("left", { roomId, reason });
  }

  failed(roomId: string, message: string): void {
    this.emit("error", { roomId, message });
  }

  private received(ev: MessageEvent): void {
    if (ev.source !== window.parent || ev.origin !== this.parent) return;
    const m = ev.data as { protocol?: unknown; type?: unknown; name?: unknown; kind?: unknown };
    if (typeof m !== "object" || m === null) return;
    if (m.protocol !== EMBED_PROTOCOL || m.type !== "command") return;
    const commands = this.commands;
    if (!commands) return;
    if (m.name === "leave") {
      commands.leave();
    } else if ((m.name === "mute" || m.name === "unmute") && (m.kind === "audio" || m.kind === "video")) {
      commands.setMedia(m.kind, m.name === "unmute");
    }
  }
}
