"""Browser benchmark: time from "Join meeting" to the first remote frame, and CPU of a meeting.

Drives Debian's Chromium (fake camera and microphone) through Playwright against a Parley
server started here on 127.0.0.1 with media on loopback:

1. A host sits in a meeting with its camera on. A guest opens the pre-join page, waits for its
   preview, clicks "Join meeting", and the page measures the time until the first frame of the
   host's video is presented (``requestVideoFrameCallback``). Repeated ``--joins`` times, each
   with a fresh browser context; prints p50 and p95.
2. Four people in one meeting (each sending camera and microphone, each receiving three):
   CPU of all Chromium processes and of the server process over ``--duration`` seconds, in
   percent of one core; once as a plain meeting, once end-to-end encrypted (every frame
   encrypted by its sender and decrypted by each receiver in the page).

    .venv/bin/python bench/browser_bench.py [--joins 15] [--duration 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.support import (  # noqa: E402
    CONDITION_TIMEOUT,
    Participant,
    ensure_client_built,
    launch,
    running_server,
    wait_until,
)

# Runs in the guest's page right before the click: resolves with milliseconds from the click
# to the first presented frame of any remote camera tile.
ARM_TIMER = """() => {
  const t0 = performance.now();
  window.__firstFrame = new Promise((resolve) => {
    const watching = new WeakSet();
    const look = () => {
      for (const v of document.querySelectorAll('.tile video:not(.mirrored)')) {
        if (!v.srcObject || watching.has(v)) continue;
        watching.add(v);
        v.requestVideoFrameCallback((now) => resolve(now - t0));
      }
      requestAnimationFrame(look);
    };
    look();
  });
}"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def first_frame_times(browser: Browser, url: str, joins: int) -> list[float]:
    host = Participant.open(browser, "Host", url)
    try:
        room_id = host.create_meeting("Benchmark")
        times: list[float] = []
        for i in range(joins):
            guest = Participant.open(browser, f"Guest {i + 1}", url)
            page: Page = guest.page
            try:
                page.goto(f"/r/{room_id}")
                page.get_by_label("Your name").fill(guest.name)
                page.wait_for_function(
                    "() => { const v = document.querySelector('.preview-video');"
                    " return v && v.videoWidth > 0 }"
                )
                page.evaluate(ARM_TIMER)
                page.get_by_role("button", name="Join meeting").click()
                ms = float(page.evaluate("() => window.__firstFrame"))
                times.append(ms)
                print(f"  join {i + 1:2d}: first remote frame after {ms:7.1f} ms", flush=True)
                guest.button("Leave").click()
                page.get_by_role("heading", name="You left the meeting").wait_for()
            finally:
                guest.close()
        return times
    finally:
        host.close()


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def chromium_processes(server_pid: int) -> list[psutil.Process]:
    me = psutil.Process(os.getpid())
    found = []
    for proc in me.children(recursive=True):
        try:
            if proc.pid != server_pid and "chrom" in proc.name().lower():
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def encrypted_meeting(people: list[Participant]) -> None:
    """The first creates an end-to-end encrypted meeting; the others join with its link."""
    page = people[0].page
    page.goto("/")
    page.get_by_label("Your name").fill(people[0].name)
    page.get_by_label("Meeting name").fill("Four people, encrypted")
    page.get_by_role("checkbox", name="End-to-end encryption").check()
    page.get_by_role("button", name="Create meeting").click()
    page.get_by_role("button", name="Leave").wait_for()
    for person in people[1:]:
        person.page.goto(page.url)
        person.page.get_by_label("Your name").fill(person.name)
        person.page.get_by_role("button", name="Join meeting").click()
        person.page.get_by_role("button", name="Leave").wait_for()


def meeting_cpu(
    browser: Browser, url: str, server_pid: int, duration: float, e2ee: bool = False
) -> dict[str, float]:
    people = [Participant.open(browser, name, url) for name in ("Ann", "Ben", "Cem", "Dee")]
    try:
        if e2ee:
            encrypted_meeting(people)
        else:
            room_id = people[0].create_meeting("Four people")
            for person in people[1:]:
                person.join_meeting(room_id)
        for person in people:
            wait_until(
                lambda p=person: (
                    len(s := p.subscriptions()) == 3 and all(x["framesDecoded"] > 0 for x in s)
                ),
                timeout=60,
                what=f"{person.name} receiving three cameras",
            )
        time.sleep(3)  # let bandwidth estimation settle
        browsers = chromium_processes(server_pid)
        server = psutil.Process(server_pid)
        b0, s0, t0 = cpu_seconds(browsers), cpu_seconds([server]), time.monotonic()
        time.sleep(duration)
        b1, s1, t1 = cpu_seconds(browsers), cpu_seconds([server]), time.monotonic()
        frames = sum(sum(x["framesDecoded"] for x in p.subscriptions()) for p in people)
        return {
            "browser_cpu_percent": 100 * (b1 - b0) / (t1 - t0),
            "server_cpu_percent": 100 * (s1 - s0) / (t1 - t0),
            "chromium_processes": len(browsers),
            "frames_decoded_total": frames,
        }
    finally:
        for person in people:
            person.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--joins", type=int, default=15, help="repeated joins timed (default 15)")
    parser.add_argument("--duration", type=float, default=20.0, help="CPU window in seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--meeting-only", action="store_true", help="skip the join timing (meeting CPU only)"
    )
    args = parser.parse_args()

    ensure_client_built()
    # Joining four people on a busy machine may take longer than Playwright's default 5 s.
    expect.set_options(timeout=CONDITION_TIMEOUT * 1000)
    results: dict[str, Any] = {"cores": psutil.cpu_count()}
    with running_server(media=True) as server, sync_playwright() as pw:
        browser = launch(pw)
        try:
            if not args.meeting_only:
                print(f"Join -> first remote frame, {args.joins} joins:", flush=True)
                times = first_frame_times(browser, server.url, args.joins)
                results["first_frame_ms"] = {
                    "p50": statistics.median(times),
                    "p95": percentile(times, 95),
                    "min": min(times),
                    "max": max(times),
                    "samples": times,
                }
            print(f"Four-person meeting, CPU over {args.duration:.0f} s:", flush=True)
            results["four_person_meeting"] = meeting_cpu(
                browser, server.url, server.process.pid, args.duration
            )
            print(f"Four-person encrypted meeting, CPU over {args.duration:.0f} s:", flush=True)
            results["four_person_meeting_e2ee"] = meeting_cpu(
                browser, server.url, server.process.pid, args.duration, e2ee=True
            )
        finally:
            browser.close()

    print()
    if "first_frame_ms" in results:
        ff = results["first_frame_ms"]
        print(
            f"first remote frame after Join: p50 {ff['p50']:.0f} ms, p95 {ff['p95']:.0f} ms "
            f"(min {ff['min']:.0f}, max {ff['max']:.0f}, n={len(ff['samples'])})"
        )
    for key, label in (
        ("four_person_meeting", "four-person meeting"),
        ("four_person_meeting_e2ee", "four-person meeting, end-to-end encrypted"),
    ):
        cpu = results[key]
        print(
            f"{label}: browser CPU {cpu['browser_cpu_percent']:.0f}% "
            f"(4 tabs, {cpu['chromium_processes']} processes), "
            f"server CPU {cpu['server_cpu_percent']:.0f}% of one core "
            f"({results['cores']} cores), {cpu['frames_decoded_total']} frames decoded"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
