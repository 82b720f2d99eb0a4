/** The participants panel: everyone in the meeting with their flags, updated live. */
import { h, initials } from "./dom";
import { icon } from "./icons";
import type { User } from "./protocol";

export interface ParticipantView extends User {
  isSelf: boolean;
  micOn: boolean;
}

export class ParticipantsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly heading: HTMLElement;
  /** By userId: the row shown and what it was drawn from. */
  private readonly rows = new Map<string, { key: string; el: HTMLElement }>();

  constructor() {
    this.heading = h("h2", {}, "Participants");
    this.list = h("ul", { class: "people" });
    this.el = h(
      "aside",
      { class: "panel participants-panel", "aria-label": "Participants", hidden: true },
      this.heading,
      this.list,
    );
  }

  setOpen(open: boolean): void {
    this.el.hidden = !open;
  }

  /**
   * Brings the list in line with `people`: only rows whose person changed are redrawn, and the
   * rows move only when the order changed.
   */
  render(people: ParticipantView[]): void {
    const heading = `Participants (${people.length})`;
    if (this.heading.textContent !== heading) this.heading.textContent = heading;
    const sorted = [...people].sort(
      (a, b) => Number(b.isSelf) - Number(a.isSelf) || a.joinedAt - b.joinedAt,
    );
    const keep = new Set(sorted.map((p) => p.userId));
    for (const [userId, row] of this.rows) {
      if (!keep.has(userId)) {
        row.el.remove();
        this.rows.delete(userId);
      }
    }
    const order: HTMLElement[] = [];
    for (const p of sorted) {
      const key = rowKey(p);
      let row = this.rows.get(p.userId);
      if (!row || row.key !== key) {
        const el = renderRow(p);
        if (row) row.el.replaceWith(el);
        row = { key, el };
        this.rows.set(p.userId, row);
      }
      order.push(row.el);
    }
    const current = [...this.list.children];
    if (current.length !== order.length || order.some((el, i) => current[i] !== el)) {
      this.list.replaceChildren(...order);
    }
  }
}

function rowKey(p: ParticipantView): string {
  return JSON.stringify([p.userName, p.isSelf, p.isHost, p.micOn, p.isStreaming, p.isScreenSharing]);
}

function renderRow(p: ParticipantView): HTMLElement {
  return h(
    "li",
    { class: "person", "data-user-id": p.userId },
    h("span", { class: "avatar small", "aria-hidden": "true" }, initials(p.userName)),
    h("span", { class: "person-name" }, p.isSelf ? `${p.userName} (you)` : p.userName),
    p.isHost ? h("span", { class: "badge host-badge" }, "Host") : null,
    h(
      "span",
      { class: "flags" },
      h("span", { class: "flag", "data-flag": "mic", "data-on": String(p.micOn), title: p.micOn ? "Microphone on" : "Microphone off" },
        icon(p.micOn ? "mic" : "micOff")),
      h("span", { class: "flag", "data-flag": "cam", "data-on": String(p.isStreaming), title: p.isStreaming ? "Camera on" : "Camera off" },
        icon(p.isStreaming ? "cam" : "camOff")),
      p.isScreenSharing
        ? h("span", { class: "flag", "data-flag": "screen", title: "Sharing screen" }, icon("screen"))
        : null,
      h("span", { class: "visually-hidden" },
        `${p.micOn ? "microphone on" : "microphone off"}, ${
          p.isStreaming ? "camera on" : "camera off"}${p.isScreenSharing ? ", sharing screen" : ""}`),
    ),
  );
}
