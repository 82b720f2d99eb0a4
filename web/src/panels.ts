/** The side of the stage: the chat or the participants list, one open at a time. */
import type { ChatPanel } from "./chat";
import type { Controls } from "./controls";
import type { ParticipantsPanel } from "./participants";

export class SidePanels {
  constructor(
    private readonly page: HTMLElement,
    private readonly controls: () => Controls,
    private readonly chat: ChatPanel,
    private readonly people: ParticipantsPanel,
  ) {}

  /** The Chat control was toggled. */
  chatToggled(open: boolean): void {
    this.chat.setOpen(open);
    if (open) {
      this.controls().setPanel("participants", false);
      this.people.setOpen(false);
      this.chat.input.focus();
    }
    this.page.classList.toggle("panel-open", open || this.controls().isOpen("participants"));
  }

  /** The Participants control was toggled. */
  participantsToggled(open: boolean): void {
    this.people.setOpen(open);
    if (open) {
      this.controls().setPanel("chat", false);
      this.chat.setOpen(false);
    }
    this.page.classList.toggle("panel-open", open || this.controls().isOpen("chat"));
  }

  /** Opens the chat (e.g. when files are dropped on the stage). */
  openChat(): void {
    if (!this.controls().isOpen("chat")) this.controls().toggle("chat");
  }
}
