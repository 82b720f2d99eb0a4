/** Reactions: the bar of the fixed set (`react`) and the floating ones everybody sees. */
import { h } from "./dom";
import { REACTIONS, type Reaction } from "./protocol";

const NAMES: Record<Reaction, string> = {
  "👍": "Thumbs up",
  "👏": "Applause",
  "😂": "Laughter",
  "😮": "Surprise",
  "❤️": "Love",
  "🎉": "Celebration",
};

/** How long a reaction floats over the stage. */
const FLOAT_MS = 4000;
/** At most this many float at once (the oldest goes first). */
const MAX_FLOATING = 20;

export class ReactionBar {
  readonly el: HTMLElement;

  constructor(send: (emoji: Reaction) => void) {
    this.el = h(
      "div",
      { class: "reaction-bar", role: "group", "aria-label": "Reactions", hidden: true },
      ...REACTIONS.map((emoji) => {
        const b = h(
          "button",
          { type: "button", class: "reaction-button", "aria-label": `React: ${NAMES[emoji]}`, title: NAMES[emoji] },
          emoji,
        );
        b.addEventListener("click", () => send(emoji));
        return b;
      }),
    );
  }

  setOpen(open: boolean): void {
    this.el.hidden = !open;
  }
}

/** Reactions floating up over the stage, with who sent them. */
export class FloatingReactions {
  readonly el = h("div", { class: "floating-reactions", "aria-hidden": "true" });

  show(emoji: string, from: string): void {
    while (this.el.childElementCount >= MAX_FLOATING) this.el.firstElementChild?.remove();
    const item = h(
      "div",
      { class: "floating", "data-emoji": emoji },
      h("span", { class: "emoji" }, emoji),
      h("span", { class: "from" }, from),
    );
    item.style.left = `${10 + Math.random() * 70}%`;
    this.el.appendChild(item);
    setTimeout(() => item.remove(), FLOAT_MS);
  }
}
