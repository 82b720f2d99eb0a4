/**
 * Who is in the meeting, with their flags, kept from the room's events (docs/protocol.md §4):
 * `userJoined`, `userLeft`, `hostChanged`, `userUpdated` (role, raised hand, server mutes),
 * `streamStarted`/`streamStopped`, `screenStarted`/`screenStopped`. The whole list comes only with a join or a resume
 * (`joinRoom`'s `users`); events that arrive while that answer is on its way are held and
 * applied on top of it, in order, so none is lost to a list taken a moment earlier.
 */
import type { User } from "./protocol";

export type UserFlag = "isStreaming" | "isScreenSharing";

export interface RosterHooks {
  /** Something in the list changed: redraw. */
  changed(): void;
  /** `userId` became a host through `hostChanged`. */
  becameHost(userId: string): void;
  /** `userUpdated` changed someone (`before`: as they were, if known). */
  updated(before: User | undefined, after: User): void;
}

export class Roster {
  private readonly users = new Map<string, User>();
  /** Events held while a join is on its way; null when none is. */
  private held: (() => void)[] | null = null;

  constructor(private readonly hooks: RosterHooks) {}

  get size(): number {
    return this.users.size;
  }

  get(userId: string): User | undefined {
    return this.users.get(userId);
  }

  has(userId: string): boolean {
    return this.users.has(userId);
  }

  all(): User[] {
    return [...this.users.values()];
  }

  /** A join or resume is on its way: hold events until its list arrives (`reset`). */
  hold(): void {
    this.held ??= [];
  }

  /** The join failed: apply what was held to the list as it was. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const apply of held) apply();
  }

  /**
   * The room's list from a join or a resume, with our own entry as we know it (`self`), then the
   * events held meanwhile.
   */
  reset(users: User[], self: User): void {
    this.users.clear();
    for (const u of users) this.users.set(u.userId, { ...u });
    const listed = this.users.get(self.userId);
    this.users.set(self.userId, {
      ...self,
      userName: listed?.userName ?? self.userName,
      joinedAt: listed?.joinedAt ?? self.joinedAt,
    });
    this.release();
    this.hooks.changed();
  }

  joined(userId: string, userName: string): void {
    this.apply(() => {
      if (this.users.has(userId)) return false;
      this.users.set(userId, {
        userId,
        userName,
        isHost: false,
        isStreaming: false,
        isScreenSharing: false,
        joinedAt: Date.now(),
        handRaised: false,
        audioMuted: false,
        videoMuted: false,
      });
      return true;
    });
  }

  /** `userUpdated`: the server's view of someone's role and flags. */
  updated(user: User): void {
    this.apply(() => {
      const before = this.users.get(user.userId);
      const after = { ...before, ...user };
      this.users.set(user.userId, after);
      this.hooks.updated(before ? { ...before } : undefined, after);
      return true;
    });
  }

  left(userId: string): void {
    this.apply(() => this.users.delete(userId));
  }

  hostChanged(userId: string): void {
    this.apply(() => {
      const u = this.users.get(userId);
      if (!u || u.isHost) return false;
      u.isHost = true;
      this.hooks.becameHost(userId);
      return true;
    });
  }

  /** A flag others told us about (`streamStarted`…), or our own as we set it. */
  setFlag(userId: string, flag: UserFlag, value: boolean): void {
    this.apply(() => {
      const u = this.users.get(userId);
      if (!u || u[flag] === value) return false;
      u[flag] = value;
      return true;
    });
  }

  private apply(change: () => boolean): void {
    if (this.held) {
      this.held.push(() => void change());
      return;
    }
    if (change()) this.hooks.changed();
  }
}
