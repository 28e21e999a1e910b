"""Router overhead: latency the router adds over calling the same upstream directly, at 1, 16 and 64 clients.

Three processes, as in production: a local OpenAI-compatible upstream (the fake from the tests, answering after
`--upstream-ms` ± `--jitter-ms` of simulated model time, fixed per call so both paths see the same times);
`forge`'s app serving the router (Azurite for routes, keys and traces; a production student and a 10% canary on
the route); and this load generator. Each client runs a closed loop of requests over one keep-alive connection,
written with raw asyncio streams so the generator itself stays light. The peer, measured in the same run at the
same concurrency in alternating rounds, is the upstream called directly. Prints p50 and p99 of both and what the
router adds; the target is p99 added under 10 ms at 16 clients. A second router with FORGE_ROUTER_CAPTURE=false runs
beside it: the difference is what handing each call to the durable capture queue adds (target: p99 under 2 ms).
Then the router's own CPU per call with and without capture (from /proc: unlike latency, barely moved by other
processes on a busy machine), and the capture window: how long after its answer each call's trace reached the queue
(p50, p99, max), as the router itself timed it: the time an answered call is held only in the router's memory.

    .venv/bin/python bench/router_bench.py [--clients 1,16,64] [--requests 800] [--upstream-ms 200] [--jitter-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 4
sys.path.insert(0, str(ROOT))

from forge.api.server import free_port  # noqa: E402
from forge.domain.usage import percentile  # noqa: E402


def serve_upstream(port: int, latency_ms: float, jitter_ms: float) -> None:
    import uvicorn

    from tests.fakes.chat_upstream import ChatUpstream

    app = ChatUpstream(latency_s=latency_ms / 1000, jitter_s=jitter_ms / 1000, record=False).app
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_router(port: int, profile: str | None = None) -> None:
    import uvicorn

    from forge.api.app import create_app
    from forge.bootstrap import bootstrap

    app = create_app(bootstrap())

    @app.get("/bench/capture-window")
    def capture_window() -> dict:  # this bench's own route: the router's timings of its recent captures
        stats = app.state.chat_router.recorder.stats
        window, _ = list(stats.window_ms), stats.window_ms.clear()  # each read covers the calls since the last
        return {"window_ms": window, "deferred": stats.deferred, "dropped": stats.dropped}

    if not profile:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    import cProfile

    cProfile.runctx("uvicorn.run(app, host='127.0.0.1', port=port, log_level='warning', access_log=False)",
                    globals(), {"uvicorn": uvicorn, "app": app, "port": port}, profile)


def setup_tenant(connection: str, tenant: str) -> str:
    """A key, and a route with a production student and a 10% canary, both served by the fake upstream."""
    from forge.domain.models import ModelStage, ModelVersion, Route
    from forge.storage import Storage, StorageAccount

    storage = Storage.open(StorageAccount.from_connection_string(connection))
    key = storage.keys.create(tenant, "bench")[0]
    ids = [storage.models.create(ModelVersion(tenant=tenant, domain="coding", base_model="base", stage=stage,
                                              provider_model_id=name)).version_id
           for name, stage in (("ft:production", ModelStage.PRODUCTION), ("ft:canary", ModelStage.CANDIDATE))]
    storage.routes.save(Route(tenant=tenant, domain="coding", production_model=ids[0], canary_model=ids[1],
                              canary_percent=10))
    return key


async def closed_loop(port: int, headers: dict[str, str], model: str, clients: int, requests: int) -> list[float]:
    """Latencies (ms) of `requests` calls spread over `clients` keep-alive connections, each one call at a time."""
    latencies: list[float] = []
    remaining = [requests]

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                body = json.dumps({"model": model, "user": f"user-{remaining[0]}",
                                   "messages": [{"role": "user", "content": "Write hello world in Python."}]}).encode()
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                request = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                           f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{head}\r\n").encode()
                started = time.perf_counter()
                writer.write(request + body)
                status = (await reader.readline()).split()[1]
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != b"200":
                    raise RuntimeError(f"HTTP {status.decode()} from port {port}")
        finally:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used (Linux /proc): robust to a busy machine, unlike latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def capture_window(port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/capture-window", timeout=10) as response:
        found = json.loads(response.read())
    found["window_ms"] = sorted(found["window_ms"])
    return found


def wait_for(port: int, process: subprocess.Popen, what: str) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--requests", type=int, default=800, help="calls per measurement (1 client: half)")
    parser.add_argument("--upstream-ms", type=float, default=200.0, help="simulated model time of the upstream")
    parser.add_argument("--jitter-ms", type=float, default=100.0, help="model time varies by up to this either way")
    parser.add_argument("--profile", help="write the router's cProfile stats to this file")
    args = parser.parse_args()

    from forge.storage.azurite import find_node_modules, start, stop_pid

    home = Path(tempfile.mkdtemp(prefix="forge-router-bench-"))
    azurite = start(find_node_modules(), data_dir=None, log_path=home / "azurite.log", detach=False)
    up_port, router_port, bare_port = free_port(), free_port(), free_port()
    env = {**os.environ, "FORGE_HOME": str(home), "FORGE_STORAGE_CONNECTION": azurite.connection_string,
           "FORGE_TEACHER_BASE_URL": f"http://127.0.0.1:{up_port}/v1", "FORGE_TEACHER_API_KEY": "sk-fake-upstream"}
    me = [sys.executable, __file__]
    upstream = subprocess.Popen(me + ["--serve-upstream", str(up_port), str(args.upstream_ms), str(args.jitter_ms)],
                                env=env)
    router = subprocess.Popen(me + ["--serve-router", str(router_port)] + ([args.profile] if args.profile else []),
                              env=env)
    bare = subprocess.Popen(me + ["--serve-router", str(bare_port)], env={**env, "FORGE_ROUTER_CAPTURE": "false"})
    try:
        wait_for(up_port, upstream, "the upstream")
        wait_for(router_port, router, "the router")
        wait_for(bare_port, bare, "the router without capture")
        key = setup_tenant(azurite.connection_string, "bench")
        direct = ({"authorization": "Bearer sk-fake-upstream"}, up_port, "teacher")
        routed = ({"authorization": f"Bearer {key}"}, router_port, "forge:coding")
        uncaptured = ({"authorization": f"Bearer {key}"}, bare_port, "forge:coding")
        asyncio.run(closed_loop(routed[1], routed[0], routed[2], 8, 200))  # warm caches and connections
        asyncio.run(closed_loop(uncaptured[1], uncaptured[0], uncaptured[2], 8, 200))
        capture_window(router_port)  # not the warm-up's
        print(f"upstream answers after {args.upstream_ms:g} ± {args.jitter_ms:g} ms; {args.requests} calls per measurement; "
              f"{os.cpu_count()} CPUs shared by upstream, router, Azurite and this generator\n")
        print(f"{'clients':>7} | {'direct p50':>10} {'p99':>8} | {'router p50':>10} {'p99':>8} | "
              f"{'added p50':>9} {'p99':>8} | ratio p99 | {'no-capture p50':>14} {'p99':>8} | "
              f"{'capture adds p50':>16} {'p99':>8}")
        for clients in (int(c) for c in args.clients.split(",")):
            runs: dict[str, list[float]] = {"direct": [], "router": [], "bare": []}
            cpu = {"router": 0.0, "bare": 0.0}  # the router processes' own CPU seconds while they are measured
            for _ in range(ROUNDS):  # alternating short rounds share out the noise of a busy machine evenly
                for name, (headers, port, model) in (("direct", direct), ("router", routed), ("bare", uncaptured)):
                    calls = (args.requests if clients > 1 else args.requests // 2) // ROUNDS
                    process = {"router": router, "bare": bare}.get(name)
                    before = cpu_seconds(process.pid) if process else 0.0
                    runs[name] += asyncio.run(closed_loop(port, headers, model, clients, calls))
                    if process:
                        time.sleep(0.05)  # the last captures' puts run after their answers
                        cpu[name] += cpu_seconds(process.pid) - before
            runs = {name: sorted(values) for name, values in runs.items()}
            d50, d99 = percentile(runs["direct"], 50), percentile(runs["direct"], 99)
            r50, r99 = percentile(runs["router"], 50), percentile(runs["router"], 99)
            b50, b99 = percentile(runs["bare"], 50), percentile(runs["bare"], 99)
            print(f"{clients:>7} | {d50:>8.2f}ms {d99:>6.2f}ms | {r50:>8.2f}ms {r99:>6.2f}ms | "
                  f"{r50 - d50:>7.2f}ms {r99 - d99:>6.2f}ms | {r99 / d99:.3f}x    | {b50:>12.2f}ms {b99:>6.2f}ms | "
                  f"{r50 - b50:>14.2f}ms {r99 - b99:>6.2f}ms")
            window = capture_window(router_port)
            per_call = {name: seconds * 1000 / len(runs[name]) for name, seconds in cpu.items()}
            print(f"{'':>7}   router CPU per call: {per_call['router']:.3f} ms with capture, {per_call['bare']:.3f} ms "
                  f"without: capture costs {per_call['router'] - per_call['bare']:.3f} ms of the router's CPU per call")
            print(f"{'':>7}   capture window (answer sent -> queue has the trace) of these {len(window['window_ms'])} "
                  f"calls: p50 {percentile(window['window_ms'], 50):.2f} ms, p99 "
                  f"{percentile(window['window_ms'], 99):.2f} ms, max {max(window['window_ms']):.2f} ms; held in memory "
                  f"{window['deferred']}, dropped {window['dropped']}")
    finally:
        for process in (router, bare, upstream):
            process.send_signal(signal.SIGINT)
        for process in (router, bare, upstream):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        stop_pid(azurite.pid)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-upstream":
        serve_upstream(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--serve-router":
        serve_router(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        main()
