"""Cluster benchmark: the chat fan-out workload of ``chat_bench.py`` against one Parley node
(cluster mode), two nodes behind HAProxy, and the Node yardstick, in one run; then the failover
figure (SIGKILL one of two nodes: time until every client that was on it has resumed).

    .venv/bin/python bench/cluster_bench.py [--rooms 20 --clients-per-room 10 --duration 10]
    .venv/bin/python bench/cluster_bench.py --scaling [--scaling-nodes 2,4,8,16] [--redis-cluster]

``--scaling`` runs only the scaling run instead: 2, 4, 8 and 16 small nodes on one Redis, two
rooms per node, each room's two people on two neighbouring nodes; every room chats at once.
Per chat message: Redis output bytes and commands (from Redis' own ``INFO``), CPU of each node,
and messages delivered per second. With ``--redis-cluster`` each size also runs on a 3-master
Redis Cluster (started as the tests start it), its Redis figures summed and per master.

Every process runs on 127.0.0.1 (Redis, PostgreSQL, Parley, HAProxy, Node); run it under
``scripts/loopback-only``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR.parent / "src"), str(BENCH_DIR)]

import chat_bench  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from tests.support.clients import Client  # noqa: E402
from tests.support.cluster import Cluster, RedisServer  # noqa: E402
from tests.support.postgres import running_postgres  # noqa: E402
from tests.support.redis_cluster import RedisClusterServer  # noqa: E402


class Pids:
    """CPU seconds of named processes between two moments."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start: dict[str, float] = {}
        self.t0 = 0.0

    def begin(self) -> None:
        self.t0 = time.monotonic()
        self.start = {n: sum(p.cpu_times()[:2]) for n, p in self.procs.items()}

    def end(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        return {
            n: 100 * (sum(p.cpu_times()[:2]) - self.start[n]) / wall for n, p in self.procs.items()
        }


class _Target:
    """What ``chat_bench.run_load`` needs of a server: a URL and a process to sample."""

    def __init__(self, kind: str, url: str, pid: int) -> None:
        self.kind, self.url = kind, url
        self.process = psutil.Process(pid)


def cluster_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in chat_bench.parley_env(args).items() if k.startswith("PARLEY_")}
    env["PARLEY_CHAT_ADDRESS_RATE"] = env["PARLEY_CHAT_ADDRESS_BURST"] = "1000000"
    env["PARLEY_READ_RATE"] = env["PARLEY_READ_BURST"] = "1000000"
    return env


def measure(target: _Target, pids: dict[str, int], options: dict[str, Any], args: Any) -> str:
    sampler = Pids(pids)
    sampler.begin()
    result = chat_bench.run_load(target, "saturate", options, args)  # type: ignore[arg-type]
    cpu = sampler.end()
    result.server = target.kind
    cpus = " ".join(f"{n} {v:.0f}%" for n, v in cpu.items())
    return f"{chat_bench.row(result)}   CPU: {cpus}"


async def failover(cluster: Cluster, clients_count: int, rooms: int) -> list[float]:
    """``clients_count`` people in ``rooms`` rooms, half on each node; node2 is killed; each
    of its people reconnects through HAProxy and resumes. Seconds from the kill to each
    resume."""
    node1, node2 = cluster.nodes["node1"].url, cluster.nodes["node2"].url
    people: list[tuple[Client, str, str]] = []  # (client on node2, room, token)
    everyone: list[Client] = []
    for r in range(rooms):
        host = await Client(node1).connect()
        everyone.append(host)
        created = await host.ok("createRoom", {"userName": "Host", "roomName": f"f{r}"})
        for i in range(clients_count // rooms - 1):
            client = await Client(node2 if i % 2 == 0 else node1).connect()
            everyone.append(client)
            joined = await client.ok("joinRoom", {"roomId": created["roomId"], "userName": f"p{i}"})
            if client.url == node2:
                people.append((client, created["roomId"], joined["token"]))
    killed = time.monotonic()
    cluster.nodes["node2"].kill()

    async def resume(room_id: str, token: str) -> float:
        client = await Client(cluster.lb_url).connect()
        everyone.append(client)
        await client.ok("joinRoom", {"roomId": room_id, "userName": "back", "resumeToken": token})
        return time.monotonic() - killed

    # A client notices the dead socket at once (the kernel resets it), then reconnects.
    times = await asyncio.gather(*(resume(room, token) for _c, room, token in people))
    for client in everyone:
        with contextlib.suppress(Exception):
            await client.close()
    return sorted(times)


async def redis_counters(redis: Redis) -> tuple[int, int]:
    """Redis' output bytes and commands run so far."""
    stats = await redis.info("stats")
    commands = await redis.info("commandstats")
    calls = sum(int(v["calls"]) for k, v in commands.items() if k.startswith("cmdstat_"))
    return int(stats["total_net_output_bytes"]), calls


async def scaling_load(
    cluster: Cluster, masters: list[str], names: list[str], messages: int, pids: Pids
) -> dict[str, Any]:
    """Two rooms per node, each with a sender on one node and a listener on the next; every
    sender sends ``messages`` messages, all rooms at once. Redis' cost per message (summed over
    ``masters``, and each master's), node CPU, and messages delivered per second."""
    redis = [Redis.from_url(url) for url in masters]
    everyone: list[Client] = []
    pairs: list[tuple[Client, Client, str]] = []
    try:
        for i in range(2 * len(names)):
            here = cluster.nodes[names[i % len(names)]].url
            there = cluster.nodes[names[(i + 1) % len(names)]].url
            sender = await Client(here).connect()
            listener = await Client(there).connect()
            everyone += [sender, listener]
            created = await sender.ok("createRoom", {"userName": "S", "roomName": f"r{i}"})
            await listener.ok("joinRoom", {"roomId": created["roomId"], "userName": "L"})
            pairs.append((sender, listener, created["roomId"]))

        async def chat(sender: Client, listener: Client, room_id: str) -> None:
            for n in range(messages):
                await sender.ok("message", {"roomId": room_id, "message": f"m{n} " + "x" * 60})
            while len(listener.received["message"]) < messages:
                await listener.next("message", timeout=30)

        before = [await redis_counters(master) for master in redis]
        pids.begin()
        started = time.monotonic()
        await asyncio.gather(*(chat(*pair) for pair in pairs))
        wall = time.monotonic() - started
        cpu = pids.end()
        after = [await redis_counters(master) for master in redis]
        sent = messages * len(pairs)
        node_cpu = [v for n, v in cpu.items() if n.startswith("node")]
        shards = [
            ((b1 - b0) / sent, (c1 - c0) / sent)
            for (b0, c0), (b1, c1) in zip(before, after, strict=True)
        ]
        return {
            "bytes": sum(b for b, _ in shards),
            "commands": sum(c for _, c in shards),
            "shards": shards,
            "delivered": sent / wall,
            "node_cpu": statistics.mean(node_cpu),
            "redis_cpu": sum(v for n, v in cpu.items() if n.startswith("redis")),
        }
    finally:
        for client in everyone:
            with contextlib.suppress(Exception):
                await client.close()
        for master in redis:
            await master.aclose()


def scaling(
    args: argparse.Namespace, sizes: list[int], messages: int, redis_cluster: bool = False
) -> None:
    print(
        f"Scaling: 2 rooms per node, 2 people each on neighbouring nodes, {messages} messages "
        f"per room, all rooms at once; {psutil.cpu_count()} CPUs, load average "
        f"{chat_bench.load_average()}"
    )
    print("nodes  Redis           bytes/msg  commands/msg  delivered msgs/s  CPU/node  Redis CPU")
    env = {
        **cluster_env(args),
        "PARLEY_CHAT_RATE": "100000",
        "PARLEY_CHAT_BURST": "100000",
        "PARLEY_NODE_LEASE_SECONDS": "10",  # many nodes on two busy cores: none taken for dead
    }
    kinds = ["single", "cluster"] if redis_cluster else ["single"]
    with running_postgres() as postgres, tempfile.TemporaryDirectory(prefix="parley-cs-") as tmp:
        for count in sizes:
            for kind in kinds:
                base = Path(tmp) / f"n{count}-{kind}"
                database = asyncio.run(postgres.create_database())
                redis: RedisServer | RedisClusterServer
                if kind == "cluster":
                    redis = RedisClusterServer(base / "redis")
                    redis.start()
                    masters, redis_pids = redis.node_urls, redis.pids
                else:
                    redis = RedisServer(base)
                    redis.start()
                    assert redis.process is not None
                    masters, redis_pids = [redis.url], [redis.process.pid]
                cluster = Cluster(base / "c", redis, postgres.url(database), env)
                try:
                    names = [f"node{i + 1}" for i in range(count)]
                    for name in names:
                        cluster.add_node(name)
                    cluster.start_nodes(names)
                    pids = {
                        n: node.process.pid for n, node in cluster.nodes.items() if node.process
                    }
                    pids.update({f"redis{i}": pid for i, pid in enumerate(redis_pids)})
                    got = asyncio.run(scaling_load(cluster, masters, names, messages, Pids(pids)))
                    label = "one Redis" if kind == "single" else "cluster (sum)"
                    print(
                        f"{count:>5}  {label:<13}  {got['bytes']:>11,.0f}  "
                        f"{got['commands']:>12.1f}  {got['delivered']:>16,.0f}  "
                        f"{got['node_cpu']:>7.0f}%  {got['redis_cpu']:>8.0f}%",
                        flush=True,
                    )
                    if kind == "cluster":
                        for i, (per_bytes, per_commands) in enumerate(got["shards"]):
                            print(
                                f"{'':>5}  {f'  master {i + 1}':<13}  {per_bytes:>11,.0f}  "
                                f"{per_commands:>12.1f}",
                                flush=True,
                            )
                finally:
                    cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--failover-clients", type=int, default=100)
    parser.add_argument("--failover-rooms", type=int, default=10)
    parser.add_argument("--scaling", action="store_true", help="only the scaling run")
    parser.add_argument("--scaling-nodes", default="2,4,8,16")
    parser.add_argument("--scaling-messages", type=int, default=200)
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="with --scaling: also run each size on a 3-master Redis Cluster",
    )
    ours, rest = parser.parse_known_args()
    args = chat_bench.parse_args(rest)
    if ours.scaling:
        sizes = [int(n) for n in ours.scaling_nodes.split(",")]
        scaling(args, sizes, ours.scaling_messages, ours.redis_cluster)
        return 0
    chat_bench.ensure_node_modules(args)
    options = {
        "clientsPerRoom": args.clients_per_room,
        "warmupSeconds": args.warmup,
        "durationSeconds": args.duration,
        "messageBytes": args.message_bytes,
        "mode": "saturate",
        "window": args.window,
    }
    print(
        f"Chat fan-out, saturating (w={args.window}): {args.rooms} rooms x "
        f"{args.clients_per_room} clients, {args.duration:g} s measured, "
        f"{psutil.cpu_count()} CPUs; load average {chat_bench.load_average()}"
    )
    print(chat_bench.HEADER.replace("scenario          ", "setup             "), flush=True)
    with running_postgres() as postgres, tempfile.TemporaryDirectory(prefix="parley-cb-") as tmp:
        base = Path(tmp)
        for count in (1, 2):
            database = asyncio.run(postgres.create_database())
            redis = RedisServer(base / f"r{count}")
            redis.start()
            cluster = Cluster(base / f"c{count}", redis, postgres.url(database), cluster_env(args))
            try:
                names = [f"node{i + 1}" for i in range(count)]
                for name in names:
                    cluster.add_node(name)
                cluster.start_nodes(names)
                pids = {n: node.process.pid for n, node in cluster.nodes.items() if node.process}
                assert redis.process is not None
                pids["redis"] = redis.process.pid
                if count == 1:
                    url = cluster.nodes["node1"].url
                else:
                    cluster.start_haproxy()
                    assert cluster.haproxy is not None
                    pids["haproxy"] = cluster.haproxy.pid
                    url = cluster.lb_url
                target = _Target(f"{count}-node", url, pids["node1"])
                print(
                    measure(target, pids, options, args).replace(
                        "saturate          ", f"{count} node{'s' if count > 1 else ''}".ljust(18)
                    ),
                    flush=True,
                )
            finally:
                cluster.stop()
        # The yardstick.
        node = chat_bench.Server(kind="node", args=args, workdir=base / "node")
        (base / "node").mkdir()
        node.start()
        try:
            assert node.process is not None
            target = _Target("node", node.url, node.process.pid)
            line = measure(target, {"node": node.process.pid}, options, args)
            print(line.replace("saturate          ", "Node yardstick    "), flush=True)
        finally:
            node.stop()

        # Failover.
        database = asyncio.run(postgres.create_database())
        redis = RedisServer(base / "rf")
        redis.start()
        cluster = Cluster(base / "cf", redis, postgres.url(database), cluster_env(args))
        try:
            cluster.add_node("node1")
            cluster.add_node("node2")
            cluster.start_nodes(["node1", "node2"])
            cluster.start_haproxy()
            times = asyncio.run(failover(cluster, ours.failover_clients, ours.failover_rooms))
        finally:
            cluster.stop()
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(
        f"failover: SIGKILL node2 with {len(times)} of {ours.failover_clients} clients on it; "
        f"time to resumed on node1 through HAProxy: p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
