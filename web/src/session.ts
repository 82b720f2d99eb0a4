/**
 * Our place in the room: who the server says we are (userId, host role, token), how we get in
 * (create, join, or resume with the stored token) and what this tab remembers of it.
 */
import {
  ProtocolError,
  type CreateRoomData,
  type JoinRoomData,
  type ParleyClient,
  type Requests,
  type WaitingData,
} from "./protocol";
import { saveRoomSession } from "./store";

export type Entry =
  | { kind: "created"; data: CreateRoomData }
  | { kind: "join"; hostKey?: string; resumeToken?: string; password?: string; jwt?: string };

/** We left the lobby before a host let us in. */
export class JoinCancelled extends Error {
  constructor() {
    super("You left the waiting room.");
    this.name = "JoinCancelled";
  }
}

/** A host did not let us in. */
export class LobbyDenied extends Error {
  constructor() {
    super("The host did not let you in.");
    this.name = "LobbyDenied";
  }
}

type JoinPayload = Requests["joinRoom"][0];

export class RoomSession {
  userId = "";
  token = "";
  isHost = false;
  roomName = "";
  /** True once we have been in the room (a reconnect then resumes). */
  joined = false;
  private hostKey: string | undefined;
  private password: string | undefined;
  private jwt: string | undefined;
  /** While we wait in the lobby: leaves it. */
  private cancelWait: (() => void) | null = null;
  /** Called when the room puts us in its lobby (a host must let us in). */
  onWaiting: () => void = () => undefined;

  constructor(
    private readonly client: ParleyClient,
    readonly roomId: string,
    readonly userName: string,
  ) {}

  /** We made the room: its creation answer is our join. */
  created(data: CreateRoomData): void {
    this.userId = data.userId;
    this.token = data.token;
    this.hostKey = data.hostKey;
    this.isHost = true;
    this.roomName = data.roomName;
    this.joined = true;
    this.save();
  }

  /**
   * Joins the room, as the participant `resumeToken` names when it still can (else as a new
   * one); the answer's `users` and `streams` are the room as it is now.
   */
  async join(
    resumeToken?: string,
    hostKey?: string,
    password?: string,
    jwt?: string,
  ): Promise<JoinRoomData> {
    if (hostKey) this.hostKey = hostKey;
    if (password !== undefined) this.password = password;
    if (jwt) this.jwt = jwt;
    const base: JoinPayload = { roomId: this.roomId, userName: this.userName };
    if (this.hostKey) base.hostKey = this.hostKey;
    if (this.password !== undefined) base.password = this.password;
    // The token goes with every join, resumes included (PARLEY_AUTH=jwt admits no one without).
    if (this.jwt) base.jwt = this.jwt;
    let data: JoinRoomData | null = null;
    if (resumeToken) {
      try {
        data = await this.enter({ ...base, resumeToken });
      } catch (err) {
        // An expired resume is not fatal: join again as a new participant.
        if (
          err instanceof ProtocolError &&
          ["ROOM_NOT_FOUND", "ROOM_FULL", "ROOM_LOCKED", "PASSWORD_REQUIRED"].includes(err.code)
        ) {
          throw err;
        }
        if (err instanceof JoinCancelled || err instanceof LobbyDenied) throw err;
      }
    }
    data ??= await this.enter(base);
    this.userId = data.userId;
    this.token = data.token;
    this.isHost = data.isHost;
    this.roomName = data.roomName;
    this.joined = true;
    this.save();
    return data;
  }

  /**
   * One `joinRoom`: the room's answer, or, when the room has a lobby, the answer a host's
   * `admit` brings (`admitted`). A lost connection cancels a lobby request on the server, so
   * after a reconnect we knock again.
   */
  private async enter(payload: JoinPayload): Promise<JoinRoomData> {
    const early: JoinRoomData[] = [];
    let denied = false;
    let settle: { resolve: (d: JoinRoomData) => void; reject: (e: unknown) => void } | null = null;
    const mine = (roomId: string): boolean => roomId === this.roomId;
    const offs = [
      this.client.on("admitted", (d) => {
        if (!mine(d.roomId)) return;
        if (settle) settle.resolve(d);
        else early.push(d);
      }),
      this.client.on("lobbyDenied", (d) => {
        if (!mine(d.roomId)) return;
        if (settle) settle.reject(new LobbyDenied());
        else denied = true;
      }),
    ];
    const dispose = (): void => {
      for (const off of offs.splice(0)) off();
      this.cancelWait = null;
    };
    let answer: JoinRoomData | WaitingData;
    try {
      answer = await this.client.request("joinRoom", payload);
    } catch (err) {
      dispose();
      throw err;
    }
    if (!("waiting" in answer)) {
      dispose();
      return answer;
    }
    this.onWaiting();
    try {
      return await new Promise<JoinRoomData>((resolve, reject) => {
        settle = { resolve, reject };
        if (early[0]) resolve(early[0]);
        if (denied) reject(new LobbyDenied());
        offs.push(
          this.client.onConnect(() => {
            this.client.request("joinRoom", payload).then(
              (again) => {
                if (!("waiting" in again)) resolve(again);
              },
              reject,
            );
          }),
        );
        this.cancelWait = () => {
          void this.client
            .request("leaveRoom", { roomId: this.roomId, userName: this.userName })
            .catch(() => undefined);
          reject(new JoinCancelled());
        };
      });
    } finally {
      dispose();
    }
  }

  /** Leaves the lobby, when we wait there (the join then fails with JoinCancelled). */
  leaveLobby(): void {
    this.cancelWait?.();
  }

  /** Joins again after the socket came back, as the same participant when the server can. */
  resume(): Promise<JoinRoomData> {
    return this.join(this.token);
  }

  private save(): void {
    saveRoomSession({
      roomId: this.roomId,
      userName: this.userName,
      userId: this.userId,
      token: this.token,
      ...(this.hostKey ? { hostKey: this.hostKey } : {}),
      inMeeting: true,
    });
  }
}
