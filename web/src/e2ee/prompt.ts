/** The "Meeting key" form: shown instead of the meeting when we have no key, and in the meeting
 * to type the key again. */
import { field, h } from "../dom";
import { keyFromInput } from "./keys";

export const NAMES_NOT_SECRET =
  "End-to-end encrypted: the server cannot see or hear the meeting, nor read its chat and files. The names of people and of the meeting are not secret.";

/** A form asking for the meeting key (a link, or a passphrase); calls `done` with the key. */
export function keyForm(roomId: string, done: (key: Uint8Array) => void, intro: string): HTMLFormElement {
  const key = field("Meeting key", { autocomplete: "off", spellcheck: "false" }, "The meeting link (with its #k= part), or the meeting's passphrase");
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Use this key");
  const form = h(
    "form",
    { class: "card e2ee-key", "aria-label": "Enter the meeting key", novalidate: true },
    h("p", {}, intro),
    key.wrap,
    h("p", { class: "hint" }, NAMES_NOT_SECRET),
    error,
    submit,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = key.input.value;
    if (!text.trim()) {
      error.textContent = "Please enter the meeting key.";
      key.input.focus();
      return;
    }
    submit.disabled = true;
    void keyFromInput(text, roomId)
      .then(done)
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

/** The page shown instead of the meeting until a key is typed. */
export function keyScreen(roomId: string, done: (key: Uint8Array) => void): HTMLElement {
  return h(
    "div",
    { class: "farewell e2ee-screen", role: "main" },
    h("h1", {}, "This meeting is end-to-end encrypted"),
    keyForm(roomId, done, "You need the meeting key to see, hear and read it."),
  );
}

/** The meeting's note that it is encrypted, with a way to type the key again. */
export function keyBanner(roomId: string, done: (key: Uint8Array) => void): HTMLElement {
  const toggle = h("button", { type: "button", class: "btn ghost small", "aria-expanded": "false" }, "Change meeting key");
  const holder = h("div", { hidden: true });
  const banner = h("div", { class: "e2ee-banner", role: "note" }, h("span", {}, NAMES_NOT_SECRET), toggle, holder);
  toggle.addEventListener("click", () => {
    const open = holder.hidden;
    holder.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      holder.replaceChildren(
        keyForm(roomId, (key) => {
          holder.hidden = true;
          toggle.setAttribute("aria-expanded", "false");
          done(key);
        }, "Type the meeting key again if what others send cannot be decrypted."),
      );
    }
  });
  return banner;
}
