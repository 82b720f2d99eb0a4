/** Entry point: one socket for the tab, and a router over lobby, pre-join and meeting. */
import "./style.css";
import { getLocalMedia } from "./devices";
import { h, toast } from "./dom";
import { Lobby } from "./lobby";
import { Meeting, type Entry, type ExitReason } from "./meeting";
import { Prejoin } from "./prejoin";
import { humanError } from "./errors";
import { ParleyClient, type ConnectionInfo, type CreateRoomData } from "./protocol";
import {
  devicePrefs,
  dropRoomSession,
  roomSession,
  saveRoomSession,
  savedName,
  type DevicePrefs,
} from "./store";
import type { LocalMedia } from "./devices";

const root = document.getElementById("app") ?? document.body;
const client = new ParleyClient();
let infoPromise: Promise<ConnectionInfo> | null = null;
let current: { stop: () => void } | null = null;

function connectionInfo(): Promise<ConnectionInfo> {
  infoPromise ??= client.getConnectionInfo().catch((err: unknown) => {
    infoPromise = null;
    throw err;
  });
  return infoPromise;
}

function show(el: HTMLElement, stop: () => void): void {
  current?.stop();
  current = { stop };
  root.replaceChildren(el);
}

function navigate(path: string, replace = false): void {
  if (location.pathname !== path) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  route();
}

function roomFromPath(): string | null {
  const m = /^\/r\/([^/]+)\/?$/.exec(location.pathname);
  return m?.[1] ? decodeURIComponent(m[1]) : null;
}

function route(): void {
  const roomId = roomFromPath();
  if (!roomId) {
    showLobby();
    return;
  }
  const session = roomSession(roomId);
  if (session?.inMeeting && session.token) {
    // A reload (or a return) while in the meeting goes straight back in as the same person.
    void enterMeeting(roomId, session.userName, {
      kind: "join",
      resumeToken: session.token,
      ...(session.hostKey ? { hostKey: session.hostKey } : {}),
    });
    return;
  }
  showPrejoin(roomId);
}

function showLobby(): void {
  document.title = "Parley";
  const lobby = new Lobby(client, {
    created: (data: CreateRoomData, userName: string) => {
      history.pushState(null, "", `/r/${encodeURIComponent(data.roomId)}`);
      void enterMeeting(data.roomId, userName, { kind: "created", data });
    },
    open: (roomId) => navigate(`/r/${encodeURIComponent(roomId)}`),
  });
  show(lobby.el, () => lobby.stop());
  lobby.start();
}

function showPrejoin(roomId: string, error?: string): void {
  document.title = "Join meeting · Parley";
  const prejoin = new Prejoin(
    client,
    roomId,
    async ({ userName, media, prefs }) => {
      const session = roomSession(roomId);
      const entry: Entry = session?.hostKey ? { kind: "join", hostKey: session.hostKey } : { kind: "join" };
      return enterMeeting(roomId, userName, entry, media, prefs);
    },
    () => navigate("/"),
  );
  show(prejoin.el, () => prejoin.stop());
  void prejoin.start().then(() => {
    if (error) prejoin.el.querySelector(".error")!.textContent = error;
  });
}

/** Opens the meeting view; resolves with an error message when joining failed (else null). */
async function enterMeeting(
  roomId: string,
  userName: string,
  entry: Entry,
  media?: LocalMedia,
  prefs?: DevicePrefs,
): Promise<string | null> {
  const p = prefs ?? devicePrefs();
  let info: ConnectionInfo;
  try {
    info = await connectionInfo();
  } catch (err) {
    return humanError(err);
  }
  const local = media ?? (await getLocalMedia({
    ...(p.audioDeviceId ? { audioDeviceId: p.audioDeviceId } : {}),
    ...(p.videoDeviceId ? { videoDeviceId: p.videoDeviceId } : {}),
    wantVideo: p.camOn,
  }));
  const meeting = new Meeting({
    client,
    info,
    roomId,
    userName: userName || savedName() || "Guest",
    entry,
    media: local,
    prefs: p,
    onExit: (reason, message) => exitMeeting(roomId, reason, message),
  });
  try {
    await meeting.start();
  } catch (err) {
    meeting.close(false);
    const message = humanError(err, "join");
    if (entry.kind === "join" && entry.resumeToken) {
      // The stored session could not be resumed: start over at the pre-join screen.
      forgetMeeting(roomId);
    }
    showPrejoin(roomId, message);
    return message;
  }
  show(meeting.el, () => {
    // Navigating away (e.g. the back button) leaves the meeting.
    meeting.abandon();
    forgetMeeting(roomId);
  });
  if (local.problem) toast(local.problem, "info", 8000);
  return null;
}

/** Forgets this tab's place in a meeting but keeps the host key, so a host stays host. */
function forgetMeeting(roomId: string): void {
  const session = roomSession(roomId);
  dropRoomSession(roomId);
  if (session?.hostKey) {
    saveRoomSession({ roomId, userName: session.userName, hostKey: session.hostKey, inMeeting: false });
  }
}

function exitMeeting(roomId: string, reason: ExitReason, message?: string): void {
  const session = roomSession(roomId);
  dropRoomSession(roomId);
  current = null;
  document.title = "Parley";
  const lobbyLink = h("a", { href: "/", class: "btn primary" }, "Back to the lobby");
  lobbyLink.addEventListener("click", (ev) => {
    ev.preventDefault();
    navigate("/");
  });
  let heading = "You left the meeting";
  let text = message ?? "";
  const actions: HTMLElement[] = [lobbyLink];
  if (reason === "ended") {
    heading = "The host ended the meeting";
    text = message ?? "Thanks for joining.";
  } else {
    const rejoin = h("a", { href: `/r/${encodeURIComponent(roomId)}`, class: "btn" }, "Rejoin");
    rejoin.addEventListener("click", (ev) => {
      ev.preventDefault();
      if (session?.hostKey) {
        saveRoomSession({ roomId, userName: session.userName, hostKey: session.hostKey, inMeeting: false });
      }
      navigate(`/r/${encodeURIComponent(roomId)}`);
    });
    actions.unshift(rejoin);
  }
  root.replaceChildren(
    h(
      "div",
      { class: "farewell", role: "main" },
      h("h1", {}, heading),
      text ? h("p", {}, text) : null,
      h("div", { class: "actions" }, ...actions),
    ),
  );
}

window.addEventListener("popstate", route);
route();
