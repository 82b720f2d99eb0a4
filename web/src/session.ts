/**
 * Our place in the room: who the server says we are (userId, host role, token), how we get in
 * (create, join, or resume with the stored token) and what this tab remembers of it.
 */
import {
  ProtocolError,
  type CreateRoomData,
  type JoinRoomData,
  type ParleyClient,
} from "./protocol";
import { saveRoomSession } from "./store";

export type Entry =
  | { kind: "created"; data: CreateRoomData }
  | { kind: "join"; hostKey?: string; resumeToken?: string };

export class RoomSession {
  userId = "";
  token = "";
  isHost = false;
  roomName = "";
  /** True once we have been in the room (a reconnect then resumes). */
  joined = false;
  private hostKey: string | undefined;

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
  async join(resumeToken?: string, hostKey?: string): Promise<JoinRoomData> {
    if (hostKey) this.hostKey = hostKey;
    const base = { roomId: this.roomId, userName: this.userName };
    const withKey = this.hostKey ? { ...base, hostKey: this.hostKey } : base;
    let data: JoinRoomData | null = null;
    if (resumeToken) {
      try {
        data = await this.client.request("joinRoom", { ...withKey, resumeToken });
      } catch (err) {
        // An expired resume is not fatal: join again as a new participant.
        if (err instanceof ProtocolError && ["ROOM_NOT_FOUND", "ROOM_FULL"].includes(err.code)) {
          throw err;
        }
      }
    }
    data ??= await this.client.request("joinRoom", withKey);
    this.userId = data.userId;
    this.token = data.token;
    this.isHost = data.isHost;
    this.roomName = data.roomName;
    this.joined = true;
    this.save();
    return data;
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
