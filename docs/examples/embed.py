"""Embedding Parley from a Python back office: create a meeting over the REST API, mint a join
token for one of your users, and verify a webhook Parley sent you. Standard library plus PyJWT.

Run: PARLEY_URL=https://meet.example.org PARLEY_API_KEY=... PARLEY_JWT_SECRET=... \
     PARLEY_WEBHOOK_SECRET=... python embed.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.request

import jwt  # PyJWT

URL = os.environ["PARLEY_URL"]
API_KEY = os.environ["PARLEY_API_KEY"]
JWT_SECRET = os.environ["PARLEY_JWT_SECRET"]
WEBHOOK_SECRET = os.environ["PARLEY_WEBHOOK_SECRET"]


def api(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"{}")


def join_link(room_id: str, name: str, user_id: str, host: bool) -> str:
    """Mint a join token yourself (HS256 with the shared secret): your user's name, role and a
    stable id; issued now (``iat``: required), it expires in 10 minutes."""
    claims = {
        "room": room_id,
        "name": name,
        "role": "host" if host else "participant",
        "sub": user_id,
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }
    return f"{URL}/r/{room_id}?jwt={jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"


def verify_webhook(signature_header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    """``Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""
    parts = dict(item.split("=", 1) for item in signature_header.split(","))
    timestamp, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, given)


if __name__ == "__main__":
    meeting = api("POST", "/api/v1/rooms", {"roomName": "Quarterly review"})
    print("meeting", meeting["roomId"])
    print("host link", join_link(str(meeting["roomId"]), "Dana", "emp-7", host=True))
    print("guest link", join_link(str(meeting["roomId"]), "Sam", "emp-8", host=False))
    sample_body = os.environ.get("SAMPLE_WEBHOOK_BODY", "").encode()
    sample_signature = os.environ.get("SAMPLE_WEBHOOK_SIGNATURE", "")
    if sample_body:
        print("webhook verified", verify_webhook(sample_signature, sample_body))
