/**
 * The chat panel: history, live messages, private messages (a "Send to" picker), attachments
 * with progress, unread count. Download links are signed and expire: one that answers 401 is
 * fetched afresh from the history and tried once more.
 */
import { formatBytes, formatTime, h, uid } from "./dom";
import { humanError } from "./errors";
import { ProtocolError, type Message, type UploadHandle } from "./protocol";

/** One chat message on its way out; `clientMessageId` makes a retry of it safe. */
export interface Outgoing {
  message: string;
  clientMessageId: string;
  file?: { filename: string };
  /** A private message's recipient. */
  to?: string;
}

export interface ChatHooks {
  /** Sends a text (and/or an uploaded file); resolves with the message id. */
  send(outgoing: Outgoing): Promise<{ id: string; timestamp: number }>;
  /** Starts uploading a file to the room; null when not in the meeting. */
  upload(file: File, onProgress: (fraction: number) => void): UploadHandle | null;
  maxUploadBytes(): number;
  selfId(): string;
  /** Someone's name, for private messages (null: not in the meeting now). */
  nameOf(userId: string): string | null;
  /** A page of the history, newest last (`before`: a message id), for fresh download links. */
  history(before?: string): Promise<Message[]>;
  onUnread(count: number): void;
  /** Where the unsent text is kept, so a reload does not lose it. */
  draftKey: string;
  /** Whether the meeting is end-to-end encrypted (files are then decrypted here). */
  encrypted?(): boolean;
  /** End-to-end encryption: a message's text as shown (null: shown as it came). */
  reveal?(text: string): Promise<{ text: string; ok: boolean }> | null;
  /** End-to-end encryption: downloads and decrypts a file here (null: an ordinary link);
   * false when it does not decrypt. */
  download?(url: string, name: string): Promise<boolean> | null;
}

export class ChatPanel {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  private readonly log: HTMLElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly fileInput: HTMLInputElement;
  private readonly uploads: HTMLElement;
  private readonly error: HTMLElement;
  private readonly recipient: HTMLSelectElement;
  private readonly recipientWrap: HTMLElement;
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
    const toId = uid("to");
    this.recipient = h("select", { id: toId }, h("option", { value: "" }, "Everyone"));
    this.recipientWrap = h(
      "div",
      { class: "recipient", hidden: true },
      h("label", { for: toId }, "Send to"),
      this.recipient,
    );
    this.recipient.addEventListener("change", () => {
      this.input.placeholder = this.recipient.value
        ? `Private message to ${this.recipient.selectedOptions[0]?.textContent ?? ""}`
        : "Type a message";
    });
    const form = h(
      "form",
      { class: "composer" },
      this.recipientWrap,
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

  /**
   * Who a private message can go to (everyone else in the meeting), and whether the meeting
   * allows private messages at all. A recipient who left is no longer offered.
   */
  setRecipients(people: { userId: string; userName: string }[], allowed: boolean): void {
    const self = this.hooks.selfId();
    const others = allowed ? people.filter((p) => p.userId !== self) : [];
    const chosen = this.recipient.value;
    const options = [h("option", { value: "" }, "Everyone")];
    for (const p of others) options.push(h("option", { value: p.userId }, p.userName));
    const key = JSON.stringify(others.map((p) => [p.userId, p.userName]));
    if (this.recipient.dataset.key !== key) {
      this.recipient.dataset.key = key;
      this.recipient.replaceChildren(...options);
      this.recipient.value = others.some((p) => p.userId === chosen) ? chosen : "";
      this.recipient.dispatchEvent(new Event("change"));
    }
    this.recipientWrap.hidden = others.length === 0;
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
    const self = this.hooks.selfId();
    const mine = m.userId === self;
    const body: (Node | null)[] = [];
    if (m.message) body.push(this.text(m.message));
    if (m.file) body.push(this.renderFile(m.file, m.id));
    let author = mine ? "You" : m.userName;
    if (m.to) {
      const to = m.to === self ? "you" : (this.hooks.nameOf(m.to) ?? "someone who left");
      author = `${author} → ${to}`;
    }
    const cls = ["message", mine ? "mine" : "", m.to ? "private" : ""].filter(Boolean).join(" ");
    return h(
      "li",
      { class: cls, "data-id": m.id },
      h(
        "div",
        { class: "meta" },
        h("span", { class: "author" }, author),
        m.to ? h("span", { class: "badge private-badge" }, "Private") : null,
        h("time", { datetime: new Date(m.timestamp).toISOString() }, formatTime(m.timestamp)),
      ),
      ...body,
    );
  }

  /** A message's text; an encrypted one is shown once decrypted (or said not to be). */
  private text(message: string): HTMLElement {
    const p = h("p", { class: "text" }, message);
    const revealed = this.hooks.reveal?.(message);
    if (revealed) {
      p.textContent = "…";
      p.dataset.sealed = message;
      void this.show(p, revealed);
    }
    return p;
  }

  private async show(p: HTMLElement, revealed: Promise<{ text: string; ok: boolean }>): Promise<void> {
    const { text, ok } = await revealed;
    p.textContent = text;
    p.classList.toggle("cannot-decrypt", !ok);
  }

  /** Decrypts every encrypted text again (after the meeting key was typed again). */
  revealAll(): void {
    for (const p of this.log.querySelectorAll<HTMLElement>("p[data-sealed]")) {
      const revealed = this.hooks.reveal?.(p.dataset.sealed ?? "");
      if (revealed) void this.show(p, revealed);
    }
  }

  /** An encrypted file's link: downloaded and decrypted here. */
  private sealedFile(file: NonNullable<Message["file"]>, messageId: string, url: string): HTMLElement {
    const name = file.originalName.replace(/\.e2ee$/, "");
    const link = h(
      "a",
      { href: url, download: name, class: "file-link", "data-filename": file.filename, "data-message-id": messageId },
      name,
    );
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      void (async () => {
        this.error.textContent = "";
        const fetchIt = (): Promise<boolean> => this.hooks.download?.(link.href, name) ?? Promise.resolve(false);
        let ok: boolean;
        try {
          ok = await fetchIt();
        } catch {
          if (!(await this.freshLink(messageId, file.filename))) {
            this.error.textContent = "This file is no longer available.";
            return;
          }
          ok = await fetchIt().catch(() => false);
        }
        if (!ok) this.error.textContent = `${name}: cannot decrypt: wrong meeting key`;
      })();
    });
    return h("div", { class: "attachment" }, link, h("span", { class: "size" }, ` (${formatBytes(file.size)})`));
  }

  private renderFile(file: NonNullable<Message["file"]>, messageId: string): HTMLElement {
    const url = file.url || `/download-file/${encodeURIComponent(file.filename)}`;
    if (this.hooks.encrypted?.()) {
      return this.sealedFile(file, messageId, url);
    }
    const wrap = h("div", { class: "attachment" });
    const tagged = { "data-filename": file.filename, "data-message-id": messageId };
    if (file.mimeType.startsWith("image/") && !file.mimeType.includes("svg")) {
      const img = h("img", { src: url, alt: file.originalName, loading: "lazy", ...tagged });
      img.addEventListener(
        "error",
        () => void this.freshLink(messageId, file.filename),
        { once: true },
      );
      const preview = h("a", { href: url, download: file.originalName, class: "preview", ...tagged }, img);
      this.checkBeforeDownload(preview, messageId, file.filename);
      wrap.appendChild(preview);
    }
    const link = h(
      "a",
      { href: url, download: file.originalName, class: "file-link", ...tagged },
      `${file.originalName}`,
      h("span", { class: "size" }, ` (${formatBytes(file.size)})`),
    );
    this.checkBeforeDownload(link, messageId, file.filename);
    wrap.appendChild(link);
    return wrap;
  }

  /**
   * A click on a download link first asks whether the link still works; an expired one (401)
   * is replaced by a fresh one from the history and the download tried once more.
   */
  private checkBeforeDownload(link: HTMLAnchorElement, messageId: string, filename: string): void {
    link.addEventListener("click", (ev) => {
      if (link.dataset.checked === "yes") {
        delete link.dataset.checked;
        return;
      }
      ev.preventDefault();
      void (async () => {
        let status = await probe(link.href);
        if (status === 401 && (await this.freshLink(messageId, filename))) {
          status = await probe(link.href);
        }
        if (status === 401 || status === 404) {
          this.error.textContent = "This file is no longer available.";
          return;
        }
        link.dataset.checked = "yes";
        link.click();
      })();
    });
  }

  /**
   * Asks the history for the message's fresh links (newest page first, then older ones) and
   * puts them on every link to the file; false when the message is no longer there.
   */
  private async freshLink(messageId: string, filename: string): Promise<boolean> {
    let before: string | undefined;
    for (let page = 0; page < 20; page++) {
      let messages: Message[];
      try {
        messages = await this.hooks.history(before);
      } catch {
        return false;
      }
      for (const m of messages) if (m.file?.url) this.relink(m.file.filename, m.file.url);
      if (messages.some((m) => m.id === messageId && m.file?.filename === filename)) return true;
      if (!messages[0]) return false;
      before = messages[0].id;
    }
    return false;
  }

  private relink(filename: string, url: string): void {
    for (const el of this.log.querySelectorAll<HTMLElement>("[data-filename]")) {
      if (el.dataset.filename !== filename) continue;
      if (el instanceof HTMLAnchorElement) el.href = url;
      else if (el instanceof HTMLImageElement && el.getAttribute("src") !== url) el.src = url;
    }
  }

  private async submit(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.sendButton.disabled = true;
    this.error.textContent = "";
    const to = this.recipient.value || undefined;
    // The outbox knows a text by its words and where it goes.
    const key = to ? `${to}\u0000${text}` : text;
    try {
      // A retry of the same text (after a failure, a reconnect or a reload) keeps its id: the
      // server may have stored the first try even if its answer never came back.
      await this.hooks.send({
        message: text,
        clientMessageId: this.outbox.idFor(key),
        ...(to ? { to } : {}),
      });
      this.outbox.sent(key);
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
          ? isQuota(err.message)
            ? `“${file.name}” was not sent: ${readableSizes(err.message)}`
            : tooLarge(file, limit)
          : `${file.name} was not sent: ${humanError(err, "upload")}`;
    } finally {
      row.remove();
    }
  }
}

function tooLarge(file: File, limit: number): string {
  return `“${file.name}” is too large (${formatBytes(file.size)}). Files can be at most ${formatBytes(limit)}.`;
}

/** A refusal because the meeting's or the server's space for files is used up. */
function isQuota(message: string): boolean {
  return /quota|space for files/i.test(message);
}

/** The server's words, with its byte counts said for people ("1.0 GB"). */
function readableSizes(message: string): string {
  return message.replace(/\b(\d{4,}) bytes\b/g, (_, n: string) => formatBytes(Number(n)));
}

/** The status a download link answers now (0: could not ask). */
async function probe(url: string): Promise<number> {
  try {
    return (await fetch(url, { method: "HEAD", cache: "no-store" })).status;
  } catch {
    return 0;
  }
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
