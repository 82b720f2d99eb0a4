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

  render(people: ParticipantView[]): void {
    this.heading.textContent = `Participants (${people.length})`;
    const sorted = [...people].sort(
      (a, b) => Number(b.isSelf) - Number(a.isSelf) || a.joinedAt - b.joinedAt,
    );
    this.list.replaceChildren(
      ...sorted.map((p) =>
        h(
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
        ),
      ),
    );
  }
}
