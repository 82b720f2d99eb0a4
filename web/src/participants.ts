/**
 * The participants panel: everyone in the meeting with their flags, updated live; for hosts also
 * the lobby queue (admit / deny), "Mute everyone" and each person's actions (make host, mute,
 * lower hand, remove).
 */
import { h, initials } from "./dom";
import { icon } from "./icons";
import type { LobbyEntry, MediaKind, User } from "./protocol";

export interface ParticipantView extends User {
  isSelf: boolean;
  micOn: boolean;
}

/** What a host can do from the panel. */
export interface PeopleActions {
  setRole(userId: string, role: "host" | "participant"): void;
  mute(userId: string, kind: MediaKind): void;
  unmute(userId: string, kind: MediaKind): void;
  lowerHand(userId: string): void;
  remove(userId: string): void;
  muteAll(): void;
  admit(requestId: string): void;
  deny(requestId: string): void;
}

interface Row {
  el: HTMLElement;
  infoKey: string;
  info: HTMLElement;
  actionsKey: string;
  actions: HTMLElement;
}

export class ParticipantsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly hostTools: HTMLElement;
  private readonly lobbySection: HTMLElement;
  private readonly lobbyHeading: HTMLElement;
  private readonly lobbyList: HTMLElement;
  /** By userId: the row shown and what its parts were drawn from. */
  private readonly rows = new Map<string, Row>();
  private amHost = false;
  /** Whose actions menu is open. */
  private openMenu: string | null = null;
  private people: ParticipantView[] = [];

  constructor(private readonly actions: PeopleActions) {
    this.heading = h("h2", {}, "Participants");
    this.list = h("ul", { class: "people" });
    const muteAll = h("button", { type: "button", class: "btn small" }, "Mute everyone");
    muteAll.addEventListener("click", () => actions.muteAll());
    this.hostTools = h("div", { class: "host-tools", hidden: true }, muteAll);
    this.lobbyHeading = h("h3", { id: "lobby-heading" }, "Waiting to join");
    this.lobbyList = h("ul", { class: "lobby-queue" });
    this.lobbySection = h(
      "section",
      { class: "lobby-section", "aria-labelledby": "lobby-heading", hidden: true },
      this.lobbyHeading,
      this.lobbyList,
    );
    this.el = h(
      "aside",
      { class: "panel participants-panel", "aria-label": "Participants", hidden: true },
      this.heading,
      this.lobbySection,
      this.hostTools,
      this.list,
    );
    document.addEventListener("click", (ev) => {
      if (this.openMenu === null) return;
      // The path as dispatched: the button clicked may have been redrawn meanwhile.
      const inside = ev
        .composedPath()
        .some((n) => n instanceof Element && n.classList.contains("person-actions"));
      if (inside) return;
      this.setMenu(null);
    });
    this.el.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.openMenu !== null) {
        const userId = this.openMenu;
        this.setMenu(null);
        this.rows.get(userId)?.actions.querySelector<HTMLElement>("button")?.focus();
      }
    });
  }

  setOpen(open: boolean): void {
    this.el.hidden = !open;
  }

  /** Whether we are a host: the host's tools and actions show only then. */
  setHost(isHost: boolean): void {
    if (this.amHost === isHost) return;
    this.amHost = isHost;
    this.hostTools.hidden = !isHost;
    if (!isHost) this.setLobby([]);
    this.render(this.people);
  }

  /** The lobby queue (hosts only). */
  setLobby(waiting: LobbyEntry[]): void {
    this.lobbySection.hidden = !this.amHost || waiting.length === 0;
    this.lobbyHeading.textContent = `Waiting to join (${waiting.length})`;
    this.lobbyList.replaceChildren(
      ...waiting.map((w) => {
        const admit = h(
          "button",
          { type: "button", class: "btn small primary", "aria-label": `Admit ${w.userName}` },
          "Admit",
        );
        const deny = h(
          "button",
          { type: "button", class: "btn small", "aria-label": `Deny ${w.userName}` },
          "Deny",
        );
        admit.addEventListener("click", () => this.actions.admit(w.requestId));
        deny.addEventListener("click", () => this.actions.deny(w.requestId));
        return h(
          "li",
          { class: "waiting", "data-request-id": w.requestId },
          h("span", { class: "avatar small", "aria-hidden": "true" }, initials(w.userName)),
          h("span", { class: "person-name" }, w.userName),
          admit,
          deny,
        );
      }),
    );
  }

  /**
   * Brings the list in line with `people`: only the parts of a row whose person changed are
   * redrawn (an open actions menu stays open), and the rows move only when the order changed.
   */
  render(people: ParticipantView[]): void {
    this.people = people;
    const heading = `Participants (${people.length})`;
    if (this.heading.textContent !== heading) this.heading.textContent = heading;
    const sorted = [...people].sort(
      (a, b) =>
        Number(b.isSelf) - Number(a.isSelf) ||
        Number(!!b.handRaised) - Number(!!a.handRaised) ||
        (a.handRaised && b.handRaised ? (a.handRaisedAt ?? 0) - (b.handRaisedAt ?? 0) : 0) ||
        a.joinedAt - b.joinedAt,
    );
    const keep = new Set(sorted.map((p) => p.userId));
    for (const [userId, row] of this.rows) {
      if (!keep.has(userId)) {
        row.el.remove();
        this.rows.delete(userId);
        if (this.openMenu === userId) this.openMenu = null;
      }
    }
    const order: HTMLElement[] = [];
    for (const p of sorted) {
      let row = this.rows.get(p.userId);
      if (!row) {
        const info = h("span", { class: "person-info" });
        const actions = h("span", { class: "person-actions" });
        row = {
          el: h("li", { class: "person", "data-user-id": p.userId }, info, actions),
          infoKey: "",
          info,
          actionsKey: "",
          actions,
        };
        this.rows.set(p.userId, row);
      }
      const infoKey = rowKey(p);
      if (row.infoKey !== infoKey) {
        row.info.replaceChildren(...renderInfo(p));
        row.infoKey = infoKey;
        row.el.dataset.hand = p.handRaised ? "raised" : "down";
      }
      const actionsKey = JSON.stringify([
        this.amHost && !p.isSelf,
        this.openMenu === p.userId,
        p.userName,
        p.isHost,
        !!p.handRaised,
        !!p.audioMuted,
        !!p.videoMuted,
      ]);
      if (row.actionsKey !== actionsKey) {
        row.actions.replaceChildren(...(this.amHost && !p.isSelf ? this.renderActions(p) : []));
        row.actionsKey = actionsKey;
      }
      order.push(row.el);
    }
    const current = [...this.list.children];
    if (current.length !== order.length || order.some((el, i) => current[i] !== el)) {
      this.list.replaceChildren(...order);
    }
  }

  private setMenu(userId: string | null): void {
    this.openMenu = userId;
    this.render(this.people);
    if (userId !== null) {
      this.rows.get(userId)?.actions.querySelector<HTMLElement>("[role=menuitem]")?.focus();
    }
  }

  private renderActions(p: ParticipantView): HTMLElement[] {
    const open = this.openMenu === p.userId;
    const menuId = `actions-${p.userId}`;
    const toggle = h(
      "button",
      {
        type: "button",
        class: "btn ghost small more",
        "aria-label": `Actions for ${p.userName}`,
        "aria-haspopup": "menu",
        "aria-expanded": String(open),
        "aria-controls": menuId,
      },
      "⋯",
    );
    toggle.addEventListener("click", () => this.setMenu(open ? null : p.userId));
    if (!open) return [toggle];
    const item = (label: string, run: () => void, cls = ""): HTMLElement => {
      const b = h("button", { type: "button", role: "menuitem", class: `menu-item ${cls}` }, label);
      b.addEventListener("click", () => {
        this.setMenu(null);
        run();
      });
      return b;
    };
    const a = this.actions;
    const items: HTMLElement[] = [
      p.isHost
        ? item("Make participant", () => a.setRole(p.userId, "participant"))
        : item("Make host", () => a.setRole(p.userId, "host")),
      p.audioMuted
        ? item("Allow microphone", () => a.unmute(p.userId, "audio"))
        : item("Mute microphone", () => a.mute(p.userId, "audio")),
      p.videoMuted
        ? item("Allow camera", () => a.unmute(p.userId, "video"))
        : item("Mute camera", () => a.mute(p.userId, "video")),
    ];
    if (p.handRaised) items.push(item("Lower hand", () => a.lowerHand(p.userId)));
    if (!p.isHost) items.push(item("Remove from meeting", () => a.remove(p.userId), "danger"));
    const menu = h(
      "div",
      { id: menuId, role: "menu", class: "menu", "aria-label": `Actions for ${p.userName}` },
      ...items,
    );
    menu.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
      ev.preventDefault();
      const at = items.indexOf(document.activeElement as HTMLElement);
      const next = (at + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items[next]?.focus();
    });
    return [toggle, menu];
  }
}

function rowKey(p: ParticipantView): string {
  return JSON.stringify([
    p.userName,
    p.isSelf,
    p.isHost,
    p.micOn,
    p.isStreaming,
    p.isScreenSharing,
    !!p.handRaised,
    !!p.audioMuted,
    !!p.videoMuted,
  ]);
}

function renderInfo(p: ParticipantView): Node[] {
  const said = [
    p.micOn ? "microphone on" : "microphone off",
    p.isStreaming ? "camera on" : "camera off",
  ];
  if (p.isScreenSharing) said.push("sharing screen");
  if (p.audioMuted) said.push("microphone muted by a host");
  if (p.videoMuted) said.push("camera muted by a host");
  if (p.handRaised) said.push("hand raised");
  return [
    h("span", { class: "avatar small", "aria-hidden": "true" }, initials(p.userName)),
    h("span", { class: "person-name" }, p.isSelf ? `${p.userName} (you)` : p.userName),
    p.handRaised
      ? h("span", { class: "hand", title: "Hand raised", "aria-hidden": "true" }, icon("hand"))
      : null,
    p.isHost ? h("span", { class: "badge host-badge" }, "Host") : null,
    h(
      "span",
      { class: "flags" },
      h(
        "span",
        {
          class: "flag",
          "data-flag": "mic",
          "data-on": String(p.micOn),
          "data-blocked": String(!!p.audioMuted),
          title: p.audioMuted ? "Muted by a host" : p.micOn ? "Microphone on" : "Microphone off",
        },
        icon(p.micOn ? "mic" : "micOff"),
      ),
      h(
        "span",
        {
          class: "flag",
          "data-flag": "cam",
          "data-on": String(p.isStreaming),
          "data-blocked": String(!!p.videoMuted),
          title: p.videoMuted ? "Camera muted by a host" : p.isStreaming ? "Camera on" : "Camera off",
        },
        icon(p.isStreaming ? "cam" : "camOff"),
      ),
      p.isScreenSharing
        ? h("span", { class: "flag", "data-flag": "screen", title: "Sharing screen" }, icon("screen"))
        : null,
      h("span", { class: "visually-hidden" }, said.join(", ")),
    ),
  ].filter((n): n is HTMLElement => n !== null);
}
