"""Receiving Parley's webhooks, and sending again the events Parley parked. Standard library
only.

    PARLEY_WEBHOOK_SECRET=... python webhooks.py serve 8000
        a receiver on 127.0.0.1:8000: checks each event's signature, keeps each id once, and
        prints what happened (answer 2xx only once the event is stored: Parley retries others)
    PARLEY_URL=https://meet.example.org PARLEY_API_KEY=... python webhooks.py retry-parked
        sends again every event Parley parked after your receiver refused it for an hour
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

SEEN: set[str] = set()  # keep these in your database: delivery is at least once


def verify(secret: str, signature_header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    """``Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""
    parts = dict(item.split("=", 1) for item in signature_header.split(",") if "=" in item)
    timestamp, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), given)


def describe(event: dict[str, object]) -> str:
    """One line per event: what happened, in which meeting, to whom, and why."""
    room = event["room"]
    assert isinstance(room, dict)
    words = [str(event["event"]), str(room["roomId"])]
    person = event.get("participant")
    if isinstance(person, dict):
        words.append(str(person["userName"]))
    if "reason" in event:  # participant_left: left, kicked or timeout
        words.append(str(event["reason"]))
    track = event.get("track")  # track_published / track_unpublished
    if isinstance(track, dict):
        kinds = track["kinds"]
        assert isinstance(kinds, list)
        words.append(f"{track['source']}:{'+'.join(str(k) for k in kinds)}")
    return " ".join(words)


class Receiver(BaseHTTPRequestHandler):
    secret = ""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(self.secret, self.headers.get("Parley-Signature", ""), raw):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(raw)
        if event["id"] not in SEEN:
            SEEN.add(event["id"])
            print(describe(event), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def serve(port: int) -> None:
    Receiver.secret = os.environ["PARLEY_WEBHOOK_SECRET"]
    server = HTTPServer(("127.0.0.1", port), Receiver)
    print(f"listening http://127.0.0.1:{server.server_address[1]}/parley-events", flush=True)
    server.serve_forever()


def api(method: str, path: str) -> object:
    request = urllib.request.Request(
        os.environ["PARLEY_URL"] + path,
        method=method,
        headers={"Authorization": f"Bearer {os.environ['PARLEY_API_KEY']}"},
    )
    with urllib.request.urlopen(request) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def retry_parked() -> None:
    parked = api("GET", "/api/v1/webhooks/parked")
    assert isinstance(parked, list)
    for event in parked:
        print("parked", event["event"], event["eventId"], "last refusal:", event["error"])
        api("POST", f"/api/v1/webhooks/parked/{event['id']}/retry")
    print("retried", len(parked))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]) if len(sys.argv) > 2 else 8000)
    else:
        retry_parked()
