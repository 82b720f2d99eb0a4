"""Chat fan-out benchmark: Parley against a minimal Node socket.io server.

Starts each server as a subprocess on 127.0.0.1, drives it with the same Node load generator
(``bench/node_server/loadgen.mjs``, socket.io-client over WebSocket), and prints delivered
messages per second, delivery and join latencies, server RSS and CPU, and the Parley/Node ratio.

    .venv/bin/python bench/chat_bench.py [--rooms 20 --clients-per-room 10 --duration 10 ...]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node_server"
START_TIMEOUT_S = 60.0
#: "Before" for ``parley-before``: the commit before the broadcast fast path (issue 14).
BEFORE_REF = "6057131e98f2bad9bface047072a8419c0779007"
SERVER_KINDS = ("parley-before", "parley", "node")
#: python-socketio alone (bench/pysio_server.py), to compare transports: its aiohttp mode,
#: ASGI under uvicorn as it comes, and ASGI under uvicorn with Parley's fan-out path.
PYSIO_KINDS = ("pysio-aiohttp", "pysio-uvicorn", "pysio-fast")
STOP_TIMEOUT_S = 15.0


# --- servers under test ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parley_env(args: argparse.Namespace) -> dict[str, str]:
    """Parley's settings for the run: limits raised so that rate limiting is not measured."""
    env = dict(os.environ)
    env.update(
        {
            "PARLEY_CHAT_RATE": "1000000",
            "PARLEY_CHAT_BURST": "1000000",
            # Every client connects from 127.0.0.1: the per-address chat limit would throttle
            # the whole load as if it came from one person.
            "PARLEY_CHAT_ADDRESS_RATE": "1000000",
            "PARLEY_CHAT_ADDRESS_BURST": "1000000",
            "PARLEY_ROOM_CREATE_RATE": "1000000",
            "PARLEY_ROOM_CREATE_BURST": "1000000",
            "PARLEY_JOIN_RATE": "1000000",
            "PARLEY_JOIN_BURST": "1000000",
            "PARLEY_MAX_ROOMS": str(max(1000, args.rooms * 4)),
            "PARLEY_MAX_PARTICIPANTS": str(max(50, args.clients_per_room)),
            # Every client connects from 127.0.0.1.
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": str(args.rooms * args.clients_per_room + 10),
            "PARLEY_LOG_LEVEL": args.parley_log_level,
        }
    )
    return env


@dataclass
class Server:
    """One server under test, started as a subprocess and stopped by whoever started it."""

    kind: str
    args: argparse.Namespace
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        if self.kind.startswith("parley"):
            data_dir = self.workdir / "parley-data"
            data_dir.mkdir(parents=True, exist_ok=True)
            cmd = [
                self.args.parley_python,
                "-m",
                "parley",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
            ]
            env = parley_env(self.args)
            if self.kind == "parley-before":
                env["PYTHONPATH"] = str(self.args.before_src)
            return cmd, env
        if self.kind.startswith("pysio-"):
            mode = self.kind.removeprefix("pysio-")
            script = str(BENCH_DIR / "pysio_server.py")
            cmd = [self.args.parley_python, script, "--mode", mode, "--port", str(self.port)]
            return cmd, dict(os.environ)
        cmd = [
            self.args.node,
            str(NODE_DIR / "server.mjs"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        return cmd, dict(os.environ)

    def start(self) -> None:
        self.port = free_port()
        cmd, env = self.command()
        self.log_path = self.workdir / f"{self.kind}-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd,
                cwd=REPO_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.kind} did not answer /health in {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def export_before(ref: str, into: Path) -> Path:
    """``src/`` of ``ref`` (a commit of this repository) written under ``into``, for
    ``parley-before`` to run from (with the same interpreter and packages)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", ref, "src"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


# --- measuring the server process -------------------------------------------------------------


class ProcessSampler:
    """Samples the RSS of a process and its children in a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_rss = 0

    def _tree(self) -> list[psutil.Process]:
        return [self._process, *self._process.children(recursive=True)]

    def rss(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_rss = max(self.peak_rss, self.rss())

    def __enter__(self) -> ProcessSampler:
        self.peak_rss = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the load generator -----------------------------------------------------------------------


def merge_histograms(parts: list[dict[str, int]]) -> Counter[float]:
    merged: Counter[float] = Counter()
    for part in parts:
        for key, count in part.items():
            merged[float(key)] += count
    return merged


def percentile(hist: Counter[float], p: float) -> float | None:
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)


@dataclass
class RunResult:
    server: str
    scenario: str
    delivered_per_s: float = 0.0
    messages_per_s: float = 0.0
    delivery: Counter[float] = field(default_factory=Counter)
    ack: Counter[float] = field(default_factory=Counter)
    join: Counter[float] = field(default_factory=Counter)
    create: Counter[float] = field(default_factory=Counter)
    missing: int = 0
    ack_errors: int = 0
    rss_idle: int = 0
    rss_peak: int = 0
    server_cpu_pct: float = 0.0
    loadgen_cpu_pct: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        def lat(hist: Counter[float]) -> dict[str, float | None]:
            return {
                "p50": percentile(hist, 50),
                "p99": percentile(hist, 99),
                "count": sum(hist.values()),
            }

        return {
            "server": self.server,
            "scenario": self.scenario,
            "deliveredPerSecond": round(self.delivered_per_s, 1),
            "messagesPerSecond": round(self.messages_per_s, 1),
            "deliveryLatencyMs": lat(self.delivery),
            "ackLatencyMs": lat(self.ack),
            "joinLatencyMs": lat(self.join),
            "createLatencyMs": lat(self.create),
            "missingDeliveries": self.missing,
            "ackErrors": self.ack_errors,
            "rssIdleBytes": self.rss_idle,
            "rssPeakBytes": self.rss_peak,
            "serverCpuPercent": round(self.server_cpu_pct, 1),
            "loadgenCpuPercent": round(self.loadgen_cpu_pct, 1),
        }


def read_json_line(proc: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited with {proc.wait()}")
        line = line.strip()
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError("load generator timed out")


def run_load(
    server: Server, scenario: str, options: dict[str, Any], args: argparse.Namespace
) -> RunResult:
    """Runs ``args.loadgen_procs`` generator processes over disjoint rooms against ``server``."""
    assert server.process is not None
    procs: list[subprocess.Popen[str]] = []
    share = [
        args.rooms // args.loadgen_procs + (1 if i < args.rooms % args.loadgen_procs else 0)
        for i in range(args.loadgen_procs)
    ]
    stderr = None if args.verbose else subprocess.DEVNULL
    result = RunResult(server=server.kind, scenario=scenario)
    deadline = time.monotonic() + 120 + args.warmup + args.duration
    try:
        for index, rooms in enumerate(r for r in share if r > 0):
            opts = {
                **options,
                "url": server.url,
                "rooms": rooms,
                "roomPrefix": f"b{index}",
                "waitForGo": True,
            }
            if options.get("mode") == "rate":
                opts["rate"] = options["rate"] * rooms / args.rooms
            procs.append(
                subprocess.Popen(
                    [args.node, str(NODE_DIR / "loadgen.mjs"), json.dumps(opts)],
                    cwd=NODE_DIR,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            )
        for proc in procs:
            if read_json_line(proc, deadline).get("phase") != "joined":
                raise RuntimeError("load generator did not join")
        with ProcessSampler(server.process.pid) as sampler:
            time.sleep(0.5)
            result.rss_idle = sampler.rss()
            cpu_before, wall_before = sampler.cpu_seconds(), time.monotonic()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            time.sleep(args.warmup + args.duration)
            cpu_after, wall_after = sampler.cpu_seconds(), time.monotonic()
            reports = [read_json_line(proc, deadline) for proc in procs]
            result.rss_peak = max(sampler.peak_rss, sampler.rss())
        for proc in procs:
            proc.wait(timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result.server_cpu_pct = 100 * (cpu_after - cpu_before) / (wall_after - wall_before)
    result.delivered_per_s = sum(r["deliveredPerSecond"] for r in reports)
    result.messages_per_s = sum(r["messagesPerSecond"] for r in reports)
    result.missing = sum(r["missingDeliveries"] for r in reports)
    result.ack_errors = sum(r["ackErrors"] for r in reports)
    result.loadgen_cpu_pct = sum(r["loadgenCpuPercent"] for r in reports)
    result.delivery = merge_histograms([r["deliveryLatencyMs"] for r in reports])
    result.ack = merge_histograms([r["ackLatencyMs"] for r in reports])
    result.join = merge_histograms([r["joinLatencyMs"] for r in reports])
    result.create = merge_histograms([r["createLatencyMs"] for r in reports])
    return result


# --- reporting --------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


HEADER = (
    f"{'scenario':<18} {'server':<13} {'deliv/s':>9} {'msg/s':>8} {'deliv p50':>9} "
    f"{'p99 ms':>7} {'join p50':>8} {'p99 ms':>7} {'RSS idle':>8} {'peak MiB':>8} "
    f"{'srv CPU':>7} {'gen CPU':>7} {'lost':>5}"
)


def row(r: RunResult) -> str:
    mib = 1024 * 1024
    return (
        f"{r.scenario:<18} {r.server:<13} {r.delivered_per_s:>9.0f} {r.messages_per_s:>8.0f} "
        f"{fmt_ms(percentile(r.delivery, 50)):>9} {fmt_ms(percentile(r.delivery, 99)):>7} "
        f"{fmt_ms(percentile(r.join, 50)):>8} {fmt_ms(percentile(r.join, 99)):>7} "
        f"{r.rss_idle / mib:>8.0f} {r.rss_peak / mib:>8.0f} "
        f"{r.server_cpu_pct:>6.0f}% {r.loadgen_cpu_pct:>6.0f}% {r.missing + r.ack_errors:>5}"
    )


# --- main -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_one(
    server: Server, name: str, options: dict[str, Any], args: argparse.Namespace
) -> RunResult:
    server.start()
    try:
        return run_load(server, name, options, args)
    except Exception:
        print(f"{server.kind} server log:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()


def group(results: list[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.server), []).append(r)
    return groups


def median_run(runs: list[RunResult]) -> RunResult:
    """The median repetition: by throughput when saturating, by p99 delivery when paced."""

    def key(r: RunResult) -> float:
        if r.scenario.startswith("saturate"):
            return r.delivered_per_s
        return percentile(r.delivery, 99) or 0.0

    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def ensure_node_modules(args: argparse.Namespace) -> None:
    if (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("bench: npm not found; install Node.js 18+ with npm")
    print(f"bench: installing {NODE_DIR.relative_to(REPO_DIR)} (npm ci)", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)], check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_python = REPO_DIR / ".venv" / "bin" / "python"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rooms", type=int, default=20, help="rooms (default 20)")
    parser.add_argument(
        "--clients-per-room",
        type=int,
        default=10,
        help="clients per room, the fan-out of each message (default 10)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per run (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds of chat before each run (default 2)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=2,
        help="messages in flight per client in the saturation run (default 2; 0 skips it)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        default=None,
        help="target deliveries/s of a paced run; repeatable (default 1000; 0 skips paced runs)",
    )
    parser.add_argument(
        "--message-bytes", type=int, default=64, help="chat message length (default 64)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_KINDS),
        help="comma-separated servers to run: parley-before (Parley at --before), parley (this "
        "tree), node (default all three); also pysio-aiohttp, pysio-uvicorn, pysio-fast "
        "(python-socketio alone, see pysio_server.py)",
    )
    parser.add_argument(
        "--before",
        default=BEFORE_REF,
        help=f"commit that parley-before runs (default {BEFORE_REF[:12]}, before the fast path)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each scenario per server; the median one is summarised (default 1)",
    )
    parser.add_argument(
        "--loadgen-procs",
        type=int,
        default=1,
        help="load generator processes, rooms split between them (default 1)",
    )
    parser.add_argument(
        "--parley-python",
        default=str(default_python if default_python.exists() else sys.executable),
        help="interpreter that runs `-m parley serve` (default .venv/bin/python)",
    )
    parser.add_argument(
        "--parley-log-level",
        default="warning",
        help="PARLEY_LOG_LEVEL for the run (default warning)",
    )
    parser.add_argument("--node", default=shutil.which("node") or "node", help="node binary")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON here")
    parser.add_argument("--verbose", action="store_true", help="show the load generator's log")
    args = parser.parse_args(argv)
    args.rate = [r for r in (args.rate if args.rate is not None else [1000.0]) if r > 0]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not set(args.servers) <= {*SERVER_KINDS, *PYSIO_KINDS} or not args.servers:
        parser.error(f"--servers takes {', '.join((*SERVER_KINDS, *PYSIO_KINDS))}")
    if args.rooms < 1 or args.clients_per_room < 2 or args.loadgen_procs < 1 or args.repeat < 1:
        parser.error("need at least 1 room, 2 clients per room and 1 generator process")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_node_modules(args)
    base = {
        "clientsPerRoom": args.clients_per_room,
        "warmupSeconds": args.warmup,
        "durationSeconds": args.duration,
        "messageBytes": args.message_bytes,
    }
    scenarios: list[tuple[str, dict[str, Any]]] = [
        *(
            [(f"saturate (w={args.window})", {**base, "mode": "saturate", "window": args.window})]
            if args.window > 0
            else []
        ),
        *[(f"paced {r:.0f}/s", {**base, "mode": "rate", "rate": r}) for r in args.rate],
    ]
    print(
        f"Chat fan-out: {args.rooms} rooms x {args.clients_per_room} clients "
        f"({args.rooms * args.clients_per_room} WebSocket clients), {args.message_bytes}-byte "
        f"messages, {args.warmup:g} s warm-up + {args.duration:g} s measured per run, "
        f"{args.loadgen_procs} generator process(es), {psutil.cpu_count()} CPUs"
    )
    print(f"load average before: {load_average()}")
    print(HEADER, flush=True)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        if "parley-before" in args.servers:
            args.before_src = export_before(args.before, Path(tmp) / "before")
            print(f"parley-before: {args.before[:12]}; parley: this tree")
        for name, options in scenarios:
            # Servers alternate within each repetition, so that noise from the rest of the
            # machine falls on both alike.
            for _ in range(args.repeat):
                for kind in args.servers:
                    workdir = Path(tmp) / f"{kind}-{len(results)}"
                    workdir.mkdir(parents=True)
                    result = run_one(
                        Server(kind=kind, args=args, workdir=workdir), name, options, args
                    )
                    results.append(result)
                    print(row(result), flush=True)
    print(f"load average after: {load_average()}")
    chosen = {key: median_run(runs) for key, runs in group(results).items()}
    if args.repeat > 1:
        print(f"median of {args.repeat} runs:")
        print(HEADER)
        for result in chosen.values():
            print(row(result))
    for name, _ in scenarios:
        node = chosen.get((name, "node"))
        before, after = chosen.get((name, "parley-before")), chosen.get((name, "parley"))
        for kind in ("parley-before", "parley"):
            parley = chosen.get((name, kind))
            if parley and node and node.delivered_per_s > 0:
                print(
                    f"{name}: {kind}/node delivered msgs/s = "
                    f"{parley.delivered_per_s / node.delivered_per_s:.2f}"
                    + (
                        f", srv CPU {kind}/node = {parley.server_cpu_pct / node.server_cpu_pct:.2f}"
                        if name.startswith("paced") and node.server_cpu_pct > 0
                        else ""
                    )
                )
        if before and after and before.delivered_per_s > 0:
            print(
                f"{name}: parley/parley-before delivered msgs/s = "
                f"{after.delivered_per_s / before.delivered_per_s:.2f}"
            )
    for (name, kind), r in chosen.items():
        if name.startswith("paced") and kind.startswith("parley"):
            p99 = percentile(r.delivery, 99)
            verdict = "meets" if p99 is not None and p99 < 50 else "misses"
            print(f"{name}: {kind} p99 delivery {fmt_ms(p99)} ms ({verdict} the 50 ms goal)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
