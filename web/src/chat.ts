/** The chat panel: history, live messages, attachments with progress, unread count. */
import { formatBytes, formatTime, h, uid } from "./dom";
import { humanError } from "./errors";
import { ProtocolError, type Message, type UploadHandle } from "./protocol";

/** One chat message on its way out; `clientMessageId` makes a retry of it safe. */
export interface Outgoing {
  message: string;
  clientMessageId: string;
  file?: { filename: string };
}

export interface ChatHooks {
  /** Sends a text (and/or an uploaded file); resolves with the message id. */
  send(outgoing: Outgoing): Promise<{ id: string; timestamp: number }>;
  /** Starts uploading a file to the room; null when not in the meeting. */
  upload(file: File, onProgress: (fraction: number) => void): UploadHandle | null;
  maxUploadBytes(): number;
  selfId(): string;
  onUnread(count: number): void;
  /** Where the unsent text is kept, so a reload does not lose it. */
  draftKey: string;
}

export class ChatPanel {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  private readonly log: HTMLElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly fileInput: HTMLInputElement;
  private readonly uploads: HTMLElement;
  private readonly error: HTMLElement;
  private readonly seen = new Set<string>();
  private readonly outbox: Outbox;
  private unread = 0;
  private open = false;

  constructor(private readonly hooks: ChatHooks) {
    this.outbox = new Outbox(`${hooks.draftKey}.pending`);
    const inputId = uid("msg");
    const fileId = uid("file");
    this.log = h("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-label": "Chat history" });
    this.input = h("textarea", { id: inputId, rows: 2, maxlength: 4000, placeholder: "Type a message" });
    this.sendButton = h("button", { type: "submit", class: "btn primary" }, "Send");
    this.fileInput = h("input", { id: fileId, type: "file", class: "visually-hidden" });
    this.uploads = h("div", { class: "uploads" });
    this.error = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "composer" },
      h("label", { for: inputId, class: "visually-hidden" }, "Message"),
      this.input,
      h(
        "div",
        { class: "composer-actions" },
        h("label", { for: fileId, class: "btn ghost attach" }, "Attach file"),
        this.fileInput,
        this.sendButton,
      ),
    );
    this.el = h(
      "aside",
      { class: "panel chat-panel", "aria-label": "Chat", hidden: true },
      h("h2", {}, "Chat"),
      this.log,
      this.uploads,
      this.error,
      form,
      h("div", { class: "drop-hint", "aria-hidden": "true" }, "Drop files to send them"),
    );

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        void this.submit();
      }
    });
    this.input.value = loadDraft(hooks.draftKey);
    this.input.addEventListener("input", () => saveDraft(hooks.draftKey, this.input.value));
    this.fileInput.addEventListener("change", () => {
      const files = [...(this.fileInput.files ?? [])];
      this.fileInput.value = "";
      for (const f of files) void this.attach(f);
    });
  }

  /** Makes `target` accept dropped files (the panel itself and the meeting stage). */
  acceptDrops(target: HTMLElement, onDrop: () => void = () => undefined): void {
    target.addEventListener("dragover", (ev) => {
      if (!ev.dataTransfer?.types.includes("Files")) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
      target.classList.add("dragging");
    });
    target.addEventListener("dragleave", () => target.classList.remove("dragging"));
    target.addEventListener("drop", (ev) => {
      target.classList.remove("dragging");
      const files = [...(ev.dataTransfer?.files ?? [])];
      if (!files.length) return;
      ev.preventDefault();
      onDrop();
      for (const f of files) void this.attach(f);
    });
  }

  setOpen(open: boolean): void {
    this.open = open;
    this.el.hidden = !open;
    if (open) {
      this.unread = 0;
      this.hooks.onUnread(0);
      this.log.scrollTop = this.log.scrollHeight;
    }
  }

  /** Adds messages (history or live), ignoring ones already shown. */
  add(messages: Message[], live: boolean): void {
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    for (const m of messages) {
      if (this.seen.has(m.id)) continue;
      this.seen.add(m.id);
      this.log.appendChild(this.render(m));
      if (live && !this.open && m.userId !== this.hooks.selfId()) {
        this.unread += 1;
        this.hooks.onUnread(this.unread);
      }
    }
    if (atBottom || !live) this.log.scrollTop = this.log.scrollHeight;
  }

  private render(m: Message): HTMLElement {
    const mine = m.userId === this.hooks.selfId();
    const body: (Node | null)[] = [];
    if (m.message) body.push(h("p", { class: "text" }, m.message));
    if (m.file) body.push(this.renderFile(m.file));
    return h(
      "li",
      { class: mine ? "message mine" : "message", "data-id": m.id },
      h(
        "div",
        { class: "meta" },
        h("span", { class: "author" }, mine ? "You" : m.userName),
        h("time", { datetime: new Date(m.timestamp).toISOString() }, formatTime(m.timestamp)),
      ),
      ...body,
    );
  }

  private renderFile(file: NonNullable<Message["file"]>): HTMLElement {
    const url = file.url || `/download-file/${encodeURIComponent(file.filename)}`;
    const wrap = h("div", { class: "attachment" });
    if (file.mimeType.startsWith("image/") && !file.mimeType.includes("svg")) {
      wrap.appendChild(
        h("a", { href: url, download: file.originalName, class: "preview" },
          h("img", { src: url, alt: file.originalName, loading: "lazy" })),
      );
    }
    wrap.appendChild(
      h(
        "a",
        { href: url, download: file.originalName, class: "file-link" },
        `${file.originalName}`,
        h("span", { class: "size" }, ` (${formatBytes(file.size)})`),
      ),
    );
    return wrap;
  }

  private async submit(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.sendButton.disabled = true;
    this.error.textContent = "";
    try {
      // A retry of the same text (after a failure, a reconnect or a reload) keeps its id: the
      // server may have stored the first try even if its answer never came back.
      await this.hooks.send({ message: text, clientMessageId: this.outbox.idFor(text) });
      this.outbox.sent(text);
      // Cleared only once the server has it, so nothing typed is lost while offline.
      if (this.input.value.trim() === text) {
        this.input.value = "";
        saveDraft(this.hooks.draftKey, "");
      }
    } catch (err) {
      this.error.textContent = `Your message was not sent: ${humanError(err)}`;
    } finally {
      this.sendButton.disabled = false;
      this.input.focus();
    }
  }

  async attach(file: File): Promise<void> {
    this.error.textContent = "";
    const limit = this.hooks.maxUploadBytes();
    if (file.size > limit) {
      this.error.textContent = tooLarge(file, limit);
      return;
    }
    const bar = h("progress", { max: 1, value: 0 });
    const handle = this.hooks.upload(file, (f) => {
      bar.value = f;
    });
    if (!handle) {
      this.error.textContent = "You need to be in the meeting to send files.";
      return;
    }
    const label = h("span", {}, `Uploading ${file.name}…`);
    const row = h("div", { class: "upload", role: "group", "aria-label": `Uploading ${file.name}` },
      label, bar);
    const cancel = h("button", { type: "button", class: "btn ghost small" }, "Cancel upload");
    row.appendChild(cancel);
    this.uploads.appendChild(row);
    cancel.addEventListener("click", handle.abort);
    try {
      const result = await handle.promise;
      if (result.cancelled) return;
      bar.value = 1;
      await this.hooks.send({
        message: "",
        clientMessageId: newMessageId(),
        file: { filename: result.file.filename },
      });
    } catch (err) {
      this.error.textContent =
        err instanceof ProtocolError && err.code === "FILE_TOO_LARGE"
          ? tooLarge(file, limit)
          : `${file.name} was not sent: ${humanError(err, "upload")}`;
    } finally {
      row.remove();
    }
  }
}

function tooLarge(file: File, limit: number): string {
  return `“${file.name}” is too large (${formatBytes(file.size)}). Files can be at most ${formatBytes(limit)}.`;
}

/** A fresh id for a message the server has not seen. */
function newMessageId(): string {
  return crypto.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The text being sent and its `clientMessageId`, until the server has acknowledged it: sending
 * the same text again is a retry and keeps the id. Kept beside the draft, so a retry after a
 * reload is recognised too.
 */
class Outbox {
  constructor(private readonly key: string) {}

  idFor(text: string): string {
    const pending = this.read();
    if (pending?.text === text) return pending.id;
    const id = newMessageId();
    this.write({ text, id });
    return id;
  }

  /** The server has `text`: the next message with the same words is a new one. */
  sent(text: string): void {
    if (this.read()?.text === text) this.write(null);
  }

  private pending: { text: string; id: string } | null | undefined;

  private read(): { text: string; id: string } | null {
    if (this.pending !== undefined) return this.pending;
    try {
      const raw = sessionStorage.getItem(this.key);
      const value = raw ? (JSON.parse(raw) as { text?: unknown; id?: unknown }) : null;
      this.pending =
        value && typeof value.text === "string" && typeof value.id === "string"
          ? { text: value.text, id: value.id }
          : null;
    } catch {
      this.pending = null;
    }
    return this.pending;
  }

  private write(pending: { text: string; id: string } | null): void {
    this.pending = pending;
    try {
      if (pending) sessionStorage.setItem(this.key, JSON.stringify(pending));
      else sessionStorage.removeItem(this.key);
    } catch {
      // Remembering across a reload is a convenience; within the page the id is kept anyway.
    }
  }
}

function loadDraft(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function saveDraft(key: string, text: string): void {
  try {
    if (text) sessionStorage.setItem(key, text);
    else sessionStorage.removeItem(key);
  } catch {
    // Keeping the draft is a convenience only.
  }
}
