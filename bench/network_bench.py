"""Network benchmark: N viewers, each behind its own shaped link, both engines side by side.

For each engine, a Parley server (``PARLEY_TLS=off``) listens on the host-side ends of a set of
network namespaces (``tests/support/netns.py``): one publisher on a free path (Chromium, fake
camera from a moving 960x540 file) and one viewer per ``--link`` (its downlink shaped with
``tc``: ``KBIT[/DELAY_MS[/LOSS_PERCENT]]``, ``free`` for none). Each viewer joins with camera
and microphone off; once every viewer decodes, a ``--duration`` window measures per viewer:
frames per second, seconds frozen, frame width, video kbit/s and audio concealment, plus the
time from "Join meeting" to its first decoded frame; and the CPU of the server process with its
children (Janus), in percent of one core.

Needs root and network namespaces of its own: run it under ``scripts/loopback-only``.

    scripts/loopback-only .venv/bin/python bench/network_bench.py \
        [--engines janus,embedded] [--link free --link 300 --link 2000] \
        [--duration 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.network import (  # noqa: E402
    PUBLISHER,
    camera,
    join_watching,
    launch_in,
    measure,
)
from tests.browser.support import Participant, ensure_client_built, wait_until  # noqa: E402
from tests.support.netns import Link, Namespaces, fake_camera  # noqa: E402
from tests.support.server import spawn_server  # noqa: E402


def parse_link(text: str) -> Link:
    if text == "free":
        return Link()
    parts = text.split("/")
    kbit = None if parts[0] in ("", "free") else int(parts[0])
    delay = int(parts[1]) if len(parts) > 1 else 0
    loss = float(parts[2]) if len(parts) > 2 else 0.0
    return Link(kbit=kbit, delay_ms=delay, loss_percent=loss)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def run_engine(
    playwright: Playwright, engine: str, links: list[str], duration: float, folder: Path
) -> list[dict[str, Any]]:
    video = fake_camera(folder)
    with Namespaces() as nets:
        pub_net = nets.add()
        viewer_nets = [nets.add(parse_link(link)) for link in links]
        every = [pub_net, *viewer_nets]
        server = spawn_server(
            folder / f"data-{engine}",
            {
                "PARLEY_MEDIA_ENGINE": engine,
                "PARLEY_MEDIA_ADDRESSES": ",".join(n.host_address for n in every),
                "PARLEY_TLS": "off",
                "PARLEY_LOG_LEVEL": "warning",
            },
            host="0.0.0.0",
        )
        browsers: list[Browser] = []
        people: list[Participant] = []
        try:
            for index, net in enumerate(every):
                url = f"http://{net.host_address}:{server.port}"
                browsers.append(launch_in(playwright, net, folder, video, url))
                name = PUBLISHER if index == 0 else f"Viewer {index}"
                viewport = {"width": 1920, "height": 1080}
                people.append(Participant.open(browsers[-1], name, url, viewport=viewport))
            publisher, viewers = people[0], people[1:]
            room_id = publisher.create_meeting("Network bench")
            first_frame: list[float] = []
            for viewer in viewers:
                clicked = join_watching(viewer, room_id)
                wait_until(
                    lambda v=viewer: (c := camera(v)) is not None and c["framesDecoded"] > 0,
                    timeout=60.0,
                    interval=0.05,
                    what=f"{viewer.name}'s first frame",
                )
                first_frame.append(time.monotonic() - clicked)
            sfu = psutil.Process(server.process.pid)
            processes = [sfu, *sfu.children(recursive=True)]
            cpu_before, started = cpu_seconds(processes), time.monotonic()
            windows = measure(viewers, duration)
            cpu = 100 * (cpu_seconds(processes) - cpu_before) / (time.monotonic() - started)
            return [
                {
                    "engine": engine,
                    "link": link,
                    **asdict(window),
                    "first_frame_s": joined,
                    "sfu_cpu_percent": cpu,
                }
                for link, window, joined in zip(links, windows, first_frame, strict=True)
            ]
        finally:
            for person in people:
                person.close()
            for browser in browsers:
                browser.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--engines", default="janus,embedded", help="comma separated")
    parser.add_argument(
        "--link", action="append", help="a viewer's downlink: KBIT[/DELAY_MS[/LOSS]] or free"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured window, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    links = args.link or ["free", "300", "2000"]
    ensure_client_built()
    folder = Path(tempfile.mkdtemp(prefix="parley-netbench-"))
    rows: list[dict[str, Any]] = []
    try:
        with sync_playwright() as playwright:
            for engine in args.engines.split(","):
                rows += run_engine(playwright, engine, links, args.duration, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    header = (
        "engine    link         fps  frozen_s  width  kbit/s  concealed  first_frame_s  sfu_cpu%"
    )
    print(header)
    for r in rows:
        print(
            f"{r['engine']:<9} {r['link']:<11} {r['fps']:5.1f} {r['frozen']:9.2f} {r['width']:6d}"
            f" {r['kbit']:7.0f} {100 * r['concealed']:9.1f}% {r['first_frame_s']:14.2f}"
            f" {r['sfu_cpu_percent']:9.1f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
