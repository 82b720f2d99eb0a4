/** The words people read when something fails: error codes of the protocol, said for people. */
import { ProtocolError } from "./protocol";

/** What the person was doing: the same code can call for other words. */
export type ErrorContext = "join" | "create" | "upload" | "other";

/** Human words for an error, for people rather than programs. */
export function humanError(err: unknown, context: ErrorContext = "other"): string {
  if (err instanceof ProtocolError) {
    switch (err.code) {
      case "ROOM_NOT_FOUND":
        return "This meeting does not exist or has ended.";
      case "ROOM_EXISTS":
        return "A meeting with this link already exists. Choose another link.";
      case "ROOM_FULL":
        return "This meeting is full.";
      case "ROOM_LOCKED":
        return "This meeting is locked: the host is not letting anyone else in right now.";
      case "PASSWORD_REQUIRED":
        return "This meeting needs a password.";
      case "NOT_IN_ROOM":
        return "You are no longer in this meeting.";
      case "FORBIDDEN":
        return "You are not allowed to do that.";
      case "UNAUTHORIZED":
        return context === "upload"
          ? "Your session has expired. Rejoin the meeting to send files."
          : "You are not allowed to do that.";
      case "FILE_NOT_FOUND":
        return "This file is no longer available.";
      case "FILE_TOO_LARGE":
        return "This file is too large to send.";
      case "RATE_LIMITED":
        return "You are doing that too often. Please wait a moment and try again.";
      case "SERVER_FULL":
        return "This server holds as many meetings as it allows. Please try again later.";
      case "MEDIA_ERROR":
        return "Audio and video could not be connected.";
      case "TIMEOUT":
        return "The server did not answer in time. Please try again.";
      case "DISCONNECTED":
        return "Cannot reach the server. Check your connection and try again.";
      case "INVALID_PAYLOAD":
        return err.message && !/[{}_]/.test(err.message)
          ? err.message
          : context === "create"
            ? "Please check the meeting name and link."
            : "Please check what you typed.";
      case "INTERNAL":
        return "Something went wrong on the server. Please try again.";
      case "MEETING_NOT_STARTED":
        return "This meeting has not started yet. Please try again once the host is in.";
      case "RECORDING_ACTIVE":
        return "This meeting is already being recorded.";
      case "E2EE_ACTIVE":
        return "This meeting is end-to-end encrypted: the server cannot record it.";
    }
  }
  return "Something went wrong. Please try again.";
}
