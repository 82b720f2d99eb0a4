/**
 * The host's meeting settings (`updateRoom`): lock, lobby, password, who may unmute, private
 * chat, listed. A menu button in the header opens them; everyone sees the room's state beside
 * the title ("Locked", "Lobby", "Password").
 */
import { h, uid } from "./dom";
import { humanError } from "./errors";
import { DEFAULT_SETTINGS, type RoomSettings, type SettingsChange } from "./protocol";

type Flag = "locked" | "lobby" | "selfUnmute" | "privateChat" | "listed";

const FLAGS: { key: Flag; label: string }[] = [
  { key: "locked", label: "Lock the meeting" },
  { key: "lobby", label: "Ask me before people join (lobby)" },
  { key: "selfUnmute", label: "Muted people may unmute themselves" },
  { key: "privateChat", label: "Allow private messages" },
  { key: "listed", label: "Show in the list of meetings" },
];

export class RoomMenu {
  /** The header's menu button (hosts only). */
  readonly button: HTMLButtonElement;
  /** The popover with the settings. */
  readonly el: HTMLElement;
  /** The room's state in words, beside the title. */
  readonly status: HTMLElement;
  private settings: RoomSettings = { ...DEFAULT_SETTINGS };
  private readonly boxes = new Map<Flag, HTMLInputElement>();
  private readonly passwordState: HTMLElement;
  private readonly passwordInput: HTMLInputElement;
  private readonly removePassword: HTMLButtonElement;
  private readonly error: HTMLElement;

  constructor(private readonly update: (change: SettingsChange) => Promise<RoomSettings>) {
    const id = uid("room-menu");
    this.button = h(
      "button",
      {
        type: "button",
        class: "btn ghost small",
        "aria-haspopup": "dialog",
        "aria-expanded": "false",
        "aria-controls": id,
        hidden: true,
      },
      "Meeting settings",
    );
    this.status = h("span", { class: "room-status", "aria-live": "polite" });
    this.error = h("p", { class: "error", role: "alert" });
    const checks = FLAGS.map(({ key, label }) => {
      const box = h("input", { type: "checkbox" });
      box.addEventListener("change", () => void this.set({ [key]: box.checked }));
      this.boxes.set(key, box);
      return h("label", { class: "check" }, box, ` ${label}`);
    });
    const pwId = uid("pw");
    this.passwordState = h("p", { class: "hint" });
    this.passwordInput = h("input", {
      id: pwId,
      type: "password",
      maxlength: 128,
      autocomplete: "new-password",
    });
    const setPassword = h("button", { type: "submit", class: "btn small primary" }, "Set password");
    this.removePassword = h("button", { type: "button", class: "btn small" }, "Remove password");
    this.removePassword.addEventListener("click", () => void this.set({ password: null }));
    const form = h(
      "form",
      { class: "password-form" },
      h("label", { for: pwId }, "Meeting password"),
      this.passwordInput,
      this.passwordState,
      h("div", { class: "dialog-actions" }, this.removePassword, setPassword),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const password = this.passwordInput.value;
      if (!password) {
        this.error.textContent = "Type the password first.";
        return;
      }
      void this.set({ password }).then((ok) => {
        if (ok) this.passwordInput.value = "";
      });
    });
    this.el = h(
      "div",
      { id, class: "popover room-menu", role: "dialog", "aria-label": "Meeting settings", hidden: true },
      h("h2", {}, "Meeting settings"),
      ...checks,
      form,
      this.error,
    );
    this.button.addEventListener("click", () => this.setOpen(this.el.hidden));
    this.el.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        this.setOpen(false);
        this.button.focus();
      }
    });
    this.show(this.settings);
  }

  setHost(isHost: boolean): void {
    this.button.hidden = !isHost;
    if (!isHost) this.setOpen(false);
  }

  setOpen(open: boolean): void {
    this.el.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) this.boxes.get("locked")?.focus();
  }

  get current(): RoomSettings {
    return this.settings;
  }

  /** The room's settings as the server says (`roomUpdated`, a join's answer). */
  show(settings: RoomSettings): void {
    this.settings = { ...settings };
    for (const [key, box] of this.boxes) box.checked = settings[key];
    this.passwordState.textContent = settings.hasPassword
      ? "A password is set: people joining must type it."
      : "No password.";
    this.removePassword.hidden = !settings.hasPassword;
    const words = [
      settings.locked ? "Locked" : "",
      settings.lobby ? "Lobby" : "",
      settings.hasPassword ? "Password" : "",
    ].filter(Boolean);
    this.status.replaceChildren(
      ...words.map((w) => h("span", { class: "badge muted" }, w)),
    );
  }

  private async set(change: SettingsChange): Promise<boolean> {
    this.error.textContent = "";
    try {
      this.show(await this.update(change));
      return true;
    } catch (err) {
      this.error.textContent = `The setting was not changed: ${humanError(err)}`;
      this.show(this.settings);
      return false;
    }
  }
}
