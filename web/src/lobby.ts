/** The lobby at "/": active meetings, create a meeting, join by id or link. */
import { field, formatTime, h } from "./dom";
import { humanError } from "./errors";
import type { CreateRoomData, ParleyClient, Room } from "./protocol";
import { saveName, savedName } from "./store";
import { keyFromFragment, randomKey } from "./e2ee/keys";
import { saveMeetingKey } from "./e2ee/store";

export interface LobbyHandlers {
  /** `key`: the meeting key of an end-to-end encrypted meeting. */
  created(data: CreateRoomData, userName: string, key?: Uint8Array): void;
  open(roomId: string): void;
}

const ROOM_ID = /^[A-Za-z0-9_-]{3,64}$/;

/** Accepts a bare id or a meeting link (".../r/{id}"); null when it is neither. */
export function parseRoomRef(text: string): string | null {
  const t = text.trim();
  if (!t) return null;
  const m = /\/r\/([A-Za-z0-9_-]{3,64})\/?(?:[?#].*)?$/.exec(t);
  if (m?.[1]) return m[1];
  return ROOM_ID.test(t) ? t : null;
}

export class Lobby {
  readonly el: HTMLElement;
  private readonly roomsList: HTMLElement;
  private timer = 0;
  private disposers: (() => void)[] = [];

  constructor(
    private readonly client: ParleyClient,
    private readonly handlers: LobbyHandlers,
  ) {
    const name = field("Your name", { autocomplete: "name", maxlength: 64, value: savedName() });
    const meetingName = field("Meeting name", { maxlength: 100, placeholder: "Weekly sync" });
    const customId = field(
      "Custom link (optional)",
      { maxlength: 64, placeholder: "team-sync", pattern: "[A-Za-z0-9_-]{3,64}" },
      "3–64 letters, digits, - or _",
    );
    const joinId = field("Meeting ID", { placeholder: "Paste a meeting link or ID" });
    const createError = h("p", { class: "error", role: "alert" });
    const joinError = h("p", { class: "error", role: "alert" });
    const listed = h("input", { type: "checkbox", checked: true });
    const listedWrap = h("label", { class: "check" }, listed, " Show it in the list of meetings");
    const e2ee = h("input", { type: "checkbox" });
    const e2eeWrap = h("label", { class: "check" }, e2ee, " End-to-end encryption");
    const createBtn = h("button", { type: "submit", class: "btn primary" }, "Create meeting");
    const joinBtn = h("button", { type: "submit", class: "btn" }, "Join meeting");
    this.roomsList = h("ul", { class: "rooms", "aria-live": "polite" });

    name.input.addEventListener("change", () => saveName(name.input.value.trim()));

    const createForm = h(
      "form",
      { class: "card", "aria-labelledby": "create-title", novalidate: true },
      h("h2", { id: "create-title" }, "Start a meeting"),
      meetingName.wrap,
      customId.wrap,
      listedWrap,
      e2eeWrap,
      createError,
      createBtn,
    );
    createForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      createError.textContent = "";
      const userName = name.input.value.trim();
      const roomName = meetingName.input.value.trim();
      const custom = customId.input.value.trim();
      if (!userName) {
        createError.textContent = "Please enter your name first.";
        name.input.focus();
        return;
      }
      if (!roomName) {
        createError.textContent = "Please give the meeting a name.";
        meetingName.input.focus();
        return;
      }
      if (custom && !ROOM_ID.test(custom)) {
        createError.textContent = "A custom link has 3 to 64 letters, digits, dashes or underscores.";
        customId.input.focus();
        return;
      }
      saveName(userName);
      createBtn.disabled = true;
      const key = e2ee.checked ? randomKey() : undefined;
      this.client
        .request("createRoom", {
          userName,
          roomName,
          ...(custom ? { customRoomId: custom } : {}),
          ...(listed.checked ? {} : { listed: false }),
          ...(key ? { e2ee: true } : {}),
        })
        .then((data) => handlers.created(data, userName, key))
        .catch((err: unknown) => {
          createError.textContent = humanError(err, "create");
        })
        .finally(() => {
          createBtn.disabled = false;
        });
    });

    const joinForm = h(
      "form",
      { class: "card", "aria-labelledby": "join-title", novalidate: true },
      h("h2", { id: "join-title" }, "Join a meeting"),
      joinId.wrap,
      joinError,
      joinBtn,
    );
    joinForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      joinError.textContent = "";
      const roomId = parseRoomRef(joinId.input.value);
      if (!roomId) {
        joinError.textContent = "Enter a meeting ID or paste a meeting link.";
        joinId.input.focus();
        return;
      }
      const userName = name.input.value.trim();
      if (userName) saveName(userName);
      const text = joinId.input.value;
      const key = text.includes("#") ? keyFromFragment(text.slice(text.indexOf("#"))) : null;
      if (key) saveMeetingKey(roomId, key);
      handlers.open(roomId);
    });

    this.el = h(
      "div",
      { class: "lobby" },
      h("header", { class: "lobby-header" }, h("h1", {}, "Parley"), h("p", {}, "Video meetings, right in your browser.")),
      h("div", { class: "card name-card" }, name.wrap),
      h("div", { class: "lobby-grid" }, createForm, joinForm),
      h(
        "section",
        { class: "card", "aria-labelledby": "rooms-title" },
        h("h2", { id: "rooms-title" }, "Active meetings"),
        this.roomsList,
      ),
    );
    this.renderRooms(null);
  }

  start(): void {
    this.disposers.push(this.client.on("roomsList", (rooms) => this.renderRooms(rooms)));
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), 5000);
  }

  stop(): void {
    window.clearInterval(this.timer);
    for (const d of this.disposers.splice(0)) d();
  }

  private async refresh(): Promise<void> {
    try {
      this.renderRooms(await this.client.request("getRoomsList"));
    } catch {
      // The list stays as it was; the next refresh tries again.
    }
  }

  private renderRooms(rooms: Room[] | null): void {
    if (rooms === null) {
      this.roomsList.replaceChildren(h("li", { class: "empty" }, "Loading…"));
      return;
    }
    if (!rooms.length) {
      this.roomsList.replaceChildren(h("li", { class: "empty" }, "No meetings right now. Start one!"));
      return;
    }
    const sorted = [...rooms].sort((a, b) => b.createdAt - a.createdAt);
    this.roomsList.replaceChildren(
      ...sorted.map((r) => {
        const link = h("a", { href: `/r/${encodeURIComponent(r.roomId)}`, class: "room-link" }, r.roomName);
        link.addEventListener("click", (ev) => {
          ev.preventDefault();
          this.handlers.open(r.roomId);
        });
        return h(
          "li",
          { class: "room", "data-room-id": r.roomId },
          link,
          h("span", { class: "room-meta" },
            `${r.participants} ${r.participants === 1 ? "person" : "people"} · since ${formatTime(r.createdAt)}`),
        );
      }),
    );
  }
}
