"""Files attached to a room's chat: streamed to disk, served back, deleted with the room."""
