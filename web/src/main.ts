/** Entry point: one socket for the tab, and a router over lobby, pre-join and meeting. */
import "./style.css";
import { getLocalMedia } from "./devices";
import { h, toast } from "./dom";
import { Lobby } from "./lobby";
import { Meeting, type Entry, type ExitReason } from "./meeting";
import { Prejoin } from "./prejoin";
import { humanError } from "./errors";
import { ParleyClient, ProtocolError, type ConnectionInfo, type CreateRoomData } from "./protocol";
import { JoinCancelled, LobbyDenied } from "./session";
import { decodeClaims, takeTokenFromAddress } from "./jointoken";
import { EmbedBridge } from "./embed";
import {
  devicePrefs,
  dropRoomSession,
  joinToken,
  roomSession,
  saveJoinToken,
  saveRoomSession,
  savedName,
  type DevicePrefs,
} from "./store";
import type { LocalMedia } from "./devices";
import { fragmentFor, keyFromFragment } from "./e2ee/keys";
import { keyScreen } from "./e2ee/prompt";
import { saveMeetingKey } from "./e2ee/store";

const root = document.getElementById("app") ?? document.body;
const client = new ParleyClient();
/** The page that frames this one through /embed.js, if one does. */
const embed = EmbedBridge.fromAddress();
embed?.listen(client);
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
  // A join token in the address (`?jwt=…`) is kept for this tab and taken out of the address.
  const given = takeTokenFromAddress();
  if (given) saveJoinToken(roomId, given);
  // The meeting key in the link's fragment (never sent to the server) is kept for this tab.
  const key = keyFromFragment(location.hash);
  if (key) saveMeetingKey(roomId, key);
  const session = roomSession(roomId);
  if (session?.inMeeting && session.token) {
    // A reload (or a return) while in the meeting goes straight back in as the same person.
    const jwt = joinToken(roomId);
    void enterMeeting(roomId, session.userName, {
      kind: "join",
      resumeToken: session.token,
      ...(session.hostKey ? { hostKey: session.hostKey } : {}),
      ...(jwt ? { jwt } : {}),
    });
    return;
  }
  showPrejoin(roomId);
}

function showLobby(): void {
  document.title = "Parley";
  const lobby = new Lobby(client, {
    created: (data: CreateRoomData, userName: string, key?: Uint8Array) => {
      if (key) saveMeetingKey(data.roomId, key);
      history.pushState(null, "", `/r/${encodeURIComponent(data.roomId)}${key ? fragmentFor(key) : ""}`);
      void enterMeeting(data.roomId, userName, { kind: "created", data });
    },
    open: (roomId) => navigate(`/r/${encodeURIComponent(roomId)}`),
  });
  show(lobby.el, () => lobby.stop());
  lobby.start();
}

function showPrejoin(roomId: string, error?: string, needsPassword = false): void {
  document.title = "Join meeting · Parley";
  const jwt = joinToken(roomId);
  const claims = jwt ? decodeClaims(jwt) : null;
  const prejoin = new Prejoin(
    client,
    roomId,
    async ({ userName, media, prefs, password }) => {
      const session = roomSession(roomId);
      const entry: Entry = {
        kind: "join",
        ...(session?.hostKey ? { hostKey: session.hostKey } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(jwt ? { jwt } : {}),
      };
      return enterMeeting(roomId, userName, entry, media, prefs);
    },
    () => navigate("/"),
    claims?.name,
  );
  show(prejoin.el, () => prejoin.stop());
  if (needsPassword) prejoin.askPassword();
  const expired = claims?.exp !== undefined && claims.exp * 1000 < Date.now();
  const shown = error ?? (expired ? "This invitation link has expired. Ask for a new one." : undefined);
  void prejoin.start().then(() => {
    if (shown) prejoin.el.querySelector(".error")!.textContent = shown;
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
    onWaiting: () => showWaiting(meeting),
    askKey: () =>
      new Promise<Uint8Array>((resolve) => {
        document.title = "Meeting key · Parley";
        let given = false;
        const done = (key: Uint8Array): void => {
          given = true;
          resolve(key);
        };
        // Leaving this screen any other way (e.g. the back button) leaves the meeting.
        show(keyScreen(roomId, done), () => {
          if (!given) meeting.abandon();
        });
      }),
  });
  try {
    await meeting.start();
  } catch (err) {
    meeting.close(false);
    if (err instanceof LobbyDenied) {
      exitMeeting(roomId, "denied");
      return err.message;
    }
    if (err instanceof JoinCancelled) {
      showPrejoin(roomId);
      return err.message;
    }
    const needsPassword = err instanceof ProtocolError && err.code === "PASSWORD_REQUIRED";
    const message =
      needsPassword && entry.kind === "join" && entry.password
        ? "That password is not right. Please check it and try again."
        : humanError(err, "join");
    if (entry.kind === "join" && entry.resumeToken) {
      // The stored session could not be resumed: start over at the pre-join screen.
      forgetMeeting(roomId);
    }
    showPrejoin(roomId, message, needsPassword);
    embed?.failed(roomId, message);
    return message;
  }
  show(meeting.el, () => {
    // Navigating away (e.g. the back button) leaves the meeting.
    meeting.abandon();
    forgetMeeting(roomId);
  });
  if (local.problem) toast(local.problem, "info", 8000);
  embed?.joined(roomId, meeting.userId, {
    leave: () => void meeting.leave(),
    setMedia: (kind, on) => void meeting.setMedia(kind, on),
  });
  return null;
}

/** The lobby's waiting screen, until a host lets us in (or not), or we leave. */
function showWaiting(meeting: Meeting): void {
  document.title = "Waiting to join · Parley";
  const leave = h("button", { type: "button", class: "btn" }, "Leave");
  leave.addEventListener("click", () => meeting.leaveLobby());
  const view = h(
    "div",
    { class: "farewell waiting-room", role: "main" },
    h("h1", {}, "Waiting for the host to let you in"),
    h("p", { role: "status" }, "You will join the meeting as soon as a host admits you."),
    h("div", { class: "spinner", "aria-hidden": "true" }),
    h("div", { class: "actions" }, leave),
  );
  // Leaving this screen any other way (e.g. the back button) leaves the lobby too.
  show(view, () => meeting.leaveLobby());
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
  embed?.left(roomId, reason);
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
  } else if (reason === "removed") {
    heading = "You were removed from the meeting";
    text = message ?? "A host removed you from this meeting.";
  } else {
    if (reason === "denied") {
      heading = "The host did not let you in";
      text = message ?? "You can ask again, or go back to the lobby.";
    } else if (reason === "replaced") {
      heading = "You joined from another tab or device";
      text = message ?? "The meeting goes on there. Join here instead to move it back.";
    }
    const label = { denied: "Ask again", replaced: "Join here instead" } as const;
    const rejoin = h(
      "a",
      { href: `/r/${encodeURIComponent(roomId)}`, class: "btn" },
      reason === "denied" || reason === "replaced" ? label[reason] : "Rejoin",
    );
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
