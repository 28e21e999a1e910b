"""Forge's OpenAI-compatible client against its peer, the official `openai` SDK's AsyncOpenAI, on one local upstream.

The router, evaluation and grading call models through `forge.providers.openai_compat.OpenAICompatClient`; this
measures what it costs per call. The upstream (the tests' fake, in its own process, answering at once) is the same
for both; each client is reused for every call, with the same concurrency. Prints p50/p99 latency and throughput of
both at each concurrency, and the ratios forge / openai (below 1: Forge's client is cheaper).

    .venv/bin/python bench/inference_client_bench.py [--clients 1,16,64] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from forge.api.server import free_port  # noqa: E402
from forge.domain.usage import percentile  # noqa: E402
from router_bench import wait_for  # noqa: E402

BODY = {"messages": [{"role": "user", "content": "Write hello world in Python."}], "max_tokens": 64}


async def measure(call, clients: int, requests: int) -> tuple[list[float], float]:
    """Per-call latencies (ms) of `requests` calls made by `clients` concurrent loops, and calls per second."""
    latencies: list[float] = []
    remaining = [requests]

    async def loop() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    return sorted(latencies), requests / (time.perf_counter() - began)


async def run(url: str, clients: int, requests: int) -> dict[str, tuple[list[float], float]]:
    import httpx
    from openai import AsyncOpenAI

    from forge.providers.openai_compat import OpenAICompatClient
    from tests.fakes.chat_upstream import API_KEY

    forge = OpenAICompatClient(url, model="ft:bench", api_key=API_KEY, concurrency=max(clients, 1), max_retries=0)
    peer = AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0, http_client=httpx.AsyncClient(
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)))
    contenders = {
        "forge": lambda: forge.complete(BODY),
        "openai": lambda: peer.chat.completions.create(model="ft:bench", **BODY),
    }
    results = {}
    try:
        for name, call in contenders.items():
            await measure(call, clients, min(200, requests))  # warm the connections and the code paths
            results[name] = await measure(call, clients, requests)
    finally:
        await forge.aclose()
        await peer.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import router_bench; "
            f"router_bench.serve_upstream({port}, 0.0)")
    upstream = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(port, upstream, "the upstream")
        url = f"http://127.0.0.1:{port}/v1"
        print(f"{'clients':>7} {'client':>7} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
        for clients in (int(c) for c in args.clients.split(",")):
            results = asyncio.run(run(url, clients, args.requests))
            for name, (latencies, rate) in results.items():
                print(f"{clients:>7} {name:>7} {percentile(latencies, 50):>8.2f} {percentile(latencies, 99):>8.2f} "
                      f"{rate:>9.0f}")
            (fl, fr), (ol, orate) = results["forge"], results["openai"]
            print(f"{clients:>7} {'ratio':>7} {percentile(fl, 50) / percentile(ol, 50):>8.2f} "
                  f"{percentile(fl, 99) / percentile(ol, 99):>8.2f} {fr / orate:>9.2f}   (forge / openai)")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


if __name__ == "__main__":
    main()
