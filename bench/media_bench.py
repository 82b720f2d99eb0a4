"""Media forwarding benchmark of Parley's two media engines, side by side (not a test).

One publisher sends pre-encoded VP8 (about 1.5 Mbit/s, 30 fps, 640x480) and Opus; 1, 5, 10
and 20 subscribers receive. Each point runs through the embedded SFU and then through Janus,
back to back. The engine runs in a subprocess of its own (with Janus, that Python process
drives a ``janus`` child it supervises) so that the engine's CPU can be measured alone.
Subscribers count packets and complete frames without decoding, so the client process stays
cheap. A last run drops 2 % of the publisher's RTP before it leaves (a loss hook in the
publishing peer) and reports the longest video freeze and audio gap a subscriber sees.
``--meeting N`` also runs a whole Parley server on Janus holding an N-person meeting where
everyone publishes and sees everyone else.

Janus never gathers on the loopback interface: its runs use 127.0.0.2 on a veth that the
benchmark creates when it runs as root in a namespace of its own (``scripts/loopback-only``).
Everything stays inside 127.0.0.0/8.

    scripts/loopback-only .venv/bin/python bench/media_bench.py
    scripts/loopback-only .venv/bin/python bench/media_bench.py --points 1 5 --duration 5 \
        --engines janus --meeting 10 --json bench/results/media.json
    scripts/loopback-only .venv/bin/python bench/media_bench.py --points 6 20 --simulcast \
        --loss-subscribers 0 --duration 20 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

import uvloop
from mediabench.engine_process import ENGINES, FPS, VIDEO_SECONDS, serve
from mediabench.measure import Point, measure, print_comparison, print_spread, print_table
from mediabench.meeting import MeetingResult, measure_meeting, print_meeting
from mediabench.network import usable_engines
from mediabench.publisher import encode_audio, encode_layers, encode_video

# --- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    engines = usable_engines(args.engines)
    print(f"load average before: {os.getloadavg()}")
    print("pre-encoding media ...", flush=True)
    media = (encode_video(), encode_audio())
    bits = sum(len(p) for p in media[0]) * 8 / VIDEO_SECONDS
    print(f"video {bits / 1e6:.2f} Mbit/s at {FPS} fps, {len(media[1])} Opus packets per loop")
    layers = encode_layers() if args.simulcast else None
    if layers is not None:
        rates = [sum(len(p) for p in layer) * 8 / VIDEO_SECONDS / 1e3 for layer in layers]
        print("simulcast layers (kbit/s): " + ", ".join(f"{r:.0f}" for r in rates))
    points: list[Point] = []
    rounds: list[list[Point]] = []
    runs = [(n, 0.0, args.duration) for n in args.points]
    if args.loss_subscribers:
        runs.append((args.loss_subscribers, 0.02, args.loss_duration))
    for _ in range(args.repeat):
        rounds.append([])
        for n, loss, duration in runs:
            for kind in engines:  # back to back, so both see the same machine
                rounds[-1].append(
                    await measure(
                        kind, n, loss, duration, args.warmup, media, layers if not loss else None
                    )
                )
                print_table(rounds[-1][-1:])
        points += rounds[-1]
    meeting = None
    if args.meeting and "janus" in engines:
        meeting = await measure_meeting(args.meeting, args.duration, args.warmup, media)
    print()
    print_table(points)
    for number, round_points in enumerate(rounds, start=1):
        print()
        if len(rounds) > 1:
            print(f"round {number}:")
        print_comparison(round_points)
    if len(rounds) > 1:
        print()
        print_spread(rounds)
    if meeting is not None:
        print()
        print_meeting(meeting)
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        await asyncio.to_thread(write_json, Path(args.json), points, meeting)


def write_json(path: Path, points: list[Point], meeting: MeetingResult | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "points": [asdict(p) for p in points],
        "meeting": asdict(meeting) if meeting else None,
    }
    path.write_text(json.dumps(body, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--points", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--loss-subscribers", type=int, default=5)
    parser.add_argument("--loss-duration", type=float, default=20.0)
    parser.add_argument(
        "--meeting", type=int, default=0, help="also run an N-person all-see-all meeting on Janus"
    )
    parser.add_argument(
        "--simulcast",
        action="store_true",
        help="the publisher sends three simulcast layers (160x120, 320x240, 640x480); "
        "each subscriber receives the top one",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every point this many times (both engines back to back each time) and "
        "print each engine's median CPU and the ratio's median and range",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.serve:
        uvloop.run(serve(args.serve))  # the event loop the server runs on (parley.cli)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
