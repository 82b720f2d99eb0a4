"""Scheduling a Parley meeting from a calendar: make it for later with your own reference in
``metadata``, send the host and the guests their links, and cancel one. Standard library plus
PyJWT.

Run: PARLEY_URL=https://meet.example.org PARLEY_API_KEY=... PARLEY_JWT_SECRET=... \
     python schedule.py
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import jwt  # PyJWT

URL = os.environ["PARLEY_URL"]
API_KEY = os.environ["PARLEY_API_KEY"]
JWT_SECRET = os.environ["PARLEY_JWT_SECRET"]


def api(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"{}")


def join_link(room_id: str, name: str, user_id: str, role: str, valid_until: datetime) -> str:
    """A join token issued now (``iat``), valid until the meeting's end."""
    claims = {
        "room": room_id,
        "name": name,
        "role": role,
        "sub": user_id,
        "iat": int(time.time()),
        "exp": int(valid_until.timestamp()),
    }
    return f"{URL}/r/{room_id}?jwt={jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"


if __name__ == "__main__":
    starts = datetime.now(UTC) + timedelta(hours=1)
    ends = starts + timedelta(hours=1)
    meeting = api(
        "POST",
        "/api/v1/rooms",
        {
            "roomName": "Quarterly review",
            "startsAt": starts.isoformat(),  # with its zone: "+00:00"
            "expiresAt": ends.isoformat(),
            "maxParticipants": 12,
            "metadata": json.dumps({"calendarEvent": "evt-2041"}),
        },
    )
    room_id = str(meeting["roomId"])
    print("meeting", room_id, "starts", meeting["startsAt"], "expires", meeting["expiresAt"])
    print("host link", join_link(room_id, "Dana", "user-17", "host", ends))
    print("guest link", join_link(room_id, "Sam", "user-42", "participant", ends))
    print("metadata", api("GET", f"/api/v1/rooms/{room_id}")["metadata"])

    cancelled = api("POST", "/api/v1/rooms", {"roomName": "Cancelled stand-up"})
    api("DELETE", f"/api/v1/rooms/{cancelled['roomId']}")
    print("cancelled", cancelled["roomId"])
