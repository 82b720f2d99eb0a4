/** The control bar: toggles expose aria-pressed, names match what people and tests look for. */
import { h, uid } from "./dom";
import { icon, setIcon, type IconName } from "./icons";

export interface ControlHandlers {
  microphone(): void;
  camera(): void;
  screen(): void;
  hand(): void;
  reactions(open: boolean): void;
  chat(open: boolean): void;
  participants(open: boolean): void;
  leave(): void;
  end(): void;
}

type Panel = "chat" | "participants";

function button(label: string, iconName: IconName, cls = ""): HTMLButtonElement {
  return h(
    "button",
    { type: "button", class: `control ${cls}` },
    icon(iconName),
    h("span", { class: "label" }, label),
  );
}

export class Controls {
  readonly el: HTMLElement;
  private readonly mic = button("Microphone", "mic");
  private readonly cam = button("Camera", "cam");
  private readonly screen = button("Share screen", "screenShare");
  private readonly hand = button("Raise hand", "hand");
  private readonly react = button("Reactions", "smile");
  private readonly chat = button("Chat", "chat");
  private readonly people = button("Participants", "people");
  private readonly leave = button("Leave", "leave", "danger");
  private readonly end = button("End meeting for all", "stop", "danger");
  private readonly unreadBadge = h("span", { class: "badge count", "aria-hidden": "true", hidden: true });
  private readonly unreadText = h("span", { id: uid("unread"), class: "visually-hidden" });
  private readonly countBadge = h("span", { class: "badge count muted", "aria-hidden": "true" });
  private readonly dialog: HTMLDialogElement;

  constructor(private readonly handlers: ControlHandlers) {
    for (const b of [this.mic, this.cam, this.screen, this.hand, this.react, this.chat, this.people]) {
      b.setAttribute("aria-pressed", "false");
    }
    this.chat.append(this.unreadBadge);
    this.chat.setAttribute("aria-describedby", this.unreadText.id);
    this.people.append(this.countBadge);
    this.end.hidden = true;

    const confirm = h("button", { type: "button", class: "btn danger" }, "End now");
    const cancel = h("button", { type: "button", class: "btn ghost" }, "Cancel");
    this.dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "end-title" },
      h("h2", { id: "end-title" }, "End the meeting for everyone?"),
      h("p", {}, "Everyone will be disconnected, and the chat and shared files will be deleted."),
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    cancel.addEventListener("click", () => this.dialog.close());
    confirm.addEventListener("click", () => {
      this.dialog.close();
      handlers.end();
    });

    this.mic.addEventListener("click", () => handlers.microphone());
    this.cam.addEventListener("click", () => handlers.camera());
    this.screen.addEventListener("click", () => handlers.screen());
    this.hand.addEventListener("click", () => handlers.hand());
    this.react.addEventListener("click", () => {
      const open = this.react.getAttribute("aria-pressed") !== "true";
      this.react.setAttribute("aria-pressed", String(open));
      handlers.reactions(open);
    });
    this.chat.addEventListener("click", () => this.toggle("chat"));
    this.people.addEventListener("click", () => this.toggle("participants"));
    this.leave.addEventListener("click", () => handlers.leave());
    this.end.addEventListener("click", () => this.dialog.showModal());

    this.el = h(
      "footer",
      { class: "controls", role: "toolbar", "aria-label": "Meeting controls" },
      h("div", { class: "group" }, this.mic, this.cam, this.screen),
      h("div", { class: "group" }, this.hand, this.react),
      h("div", { class: "group" }, this.chat, this.people),
      h("div", { class: "group" }, this.leave, this.end),
      this.unreadText,
      this.dialog,
    );
  }

  update(state: {
    micOn?: boolean;
    camOn?: boolean;
    sharing?: boolean;
    isHost?: boolean;
    handRaised?: boolean;
    /** A host has blocked our microphone / camera on the server. */
    audioBlocked?: boolean;
    videoBlocked?: boolean;
  }): void {
    if (state.micOn !== undefined) this.setPressed(this.mic, state.micOn, "mic", "micOff");
    if (state.audioBlocked !== undefined) {
      this.mic.dataset.blocked = String(state.audioBlocked);
      this.mic.title = state.audioBlocked ? "A host muted your microphone" : "";
    }
    if (state.videoBlocked !== undefined) {
      this.cam.dataset.blocked = String(state.videoBlocked);
      this.cam.title = state.videoBlocked ? "A host turned off your camera" : "";
    }
    if (state.handRaised !== undefined) {
      // A toggle keeps its name; aria-pressed says whether the hand is up.
      this.hand.setAttribute("aria-pressed", String(state.handRaised));
      this.hand.title = state.handRaised ? "Your hand is raised: press to lower it" : "";
    }
    if (state.camOn !== undefined) this.setPressed(this.cam, state.camOn, "cam", "camOff");
    if (state.sharing !== undefined) this.setPressed(this.screen, state.sharing, "screenShare", "screenShare");
    if (state.isHost !== undefined) this.end.hidden = !state.isHost;
  }

  private setPressed(b: HTMLButtonElement, on: boolean, onIcon: IconName, offIcon: IconName): void {
    b.setAttribute("aria-pressed", String(on));
    b.classList.toggle("off", !on);
    setIcon(b, on ? onIcon : offIcon);
  }

  /** Closes the reactions bar's toggle (the bar itself belongs to the meeting). */
  closeReactions(): void {
    this.react.setAttribute("aria-pressed", "false");
  }

  isOpen(panel: Panel): boolean {
    return (panel === "chat" ? this.chat : this.people).getAttribute("aria-pressed") === "true";
  }

  setPanel(panel: Panel, open: boolean): void {
    const b = panel === "chat" ? this.chat : this.people;
    b.setAttribute("aria-pressed", String(open));
  }

  toggle(panel: Panel): void {
    const open = !this.isOpen(panel);
    this.setPanel(panel, open);
    if (panel === "chat") this.handlers.chat(open);
    else this.handlers.participants(open);
  }

  setUnread(n: number): void {
    this.unreadBadge.hidden = n === 0;
    this.unreadBadge.textContent = String(n);
    this.unreadText.textContent = n ? `${n} unread message${n === 1 ? "" : "s"}` : "";
  }

  setCount(n: number): void {
    this.countBadge.textContent = String(n);
  }
}
