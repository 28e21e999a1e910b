"""Serving a LoRA student: the embedded LoRA server (llama.cpp, continuous batching) against transformers in-process
(what Forge fell back to before: one generation at a time), same base, same adapter, same prompts, same run.

The base is a random Llama built here with a SentencePiece tokenizer (`forge-trainer tiny-model`, preset `small`
≈ 4M parameters by default), the adapter a random, non-zero LoRA (r 16, all linear layers) saved by peft; both
arms get the same chat prompts, greedy, `--max-tokens` each, and count the completion tokens their answers report.
At 1, 4 and 16 clients (each a closed loop of requests; three rounds per level, the arms alternating) it prints the
median round's completion tokens/s and p50/p99 latency per arm, and the ratio; the target is at least 3x the
tokens/s at 4 clients. The embedded server converts the model and the
adapter to GGUF (f32) first, as Forge does when it serves a student; that time is not measured.

    .venv/bin/python bench/serve_bench.py [--preset small] [--clients 1,4,16] [--requests 32] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forge.domain.models import ModelVersion  # noqa: E402
from forge.domain.usage import percentile  # noqa: E402
from forge.providers.embedded_lora import EmbeddedLoRAServer  # noqa: E402
from forge.providers.local_model import LocalModelClient  # noqa: E402

TARGET = 3.0
ROUNDS = 3  # per concurrency level, the arms alternate: a busy machine slows both alike; the median round is shown
SUBJECTS = ["the river", "a lantern", "the engine", "a garden", "the harbor", "a canyon", "the signal", "a meadow"]


def build(root: Path, preset: str) -> tuple[Path, Path]:
    """A random base with a SentencePiece tokenizer, and a random non-zero LoRA adapter on it."""
    base, adapter = root / "base", root / "adapter"
    trainer = Path(sys.executable).parent / "forge-trainer"
    subprocess.run([str(trainer), "tiny-model", "--out", str(base), "--preset", preset, "--tokenizer",
                    "sentencepiece"], check=True, capture_output=True)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(adapter)
    return base, adapter


def prompts(count: int) -> list[dict]:
    return [{"messages": [{"role": "system", "content": "Answer in one short paragraph."},
                          {"role": "user", "content": f"Describe {SUBJECTS[i % len(SUBJECTS)]} in {i % 5 + 2} words."}]}
            for i in range(count)]


async def run(client, bodies: list[dict], clients: int, max_tokens: int) -> dict:
    """`clients` closed loops sharing the prompt list: completion tokens/s over the wall time, and the latencies."""
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies, tokens = [], 0

    async def loop() -> None:
        nonlocal tokens
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            answer = await client.complete({**body, "max_tokens": max_tokens, "temperature": 0})
            latencies.append(time.perf_counter() - started)
            tokens += answer["usage"]["completion_tokens"]

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    wall = time.perf_counter() - started
    return {"tokens_s": tokens / wall, "latencies": latencies, "tokens": tokens}


def summary(rounds: list[dict]) -> dict:
    """The median round's tokens/s; latency percentiles over every request of every round."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    speeds = sorted(r["tokens_s"] for r in rounds)
    return {"tokens_s": speeds[len(speeds) // 2], "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "tokens": sum(r["tokens"] for r in rounds)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "bench"])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=32, help="per round, concurrency level and arm")
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="forge-serve-bench-") as tmp:
        root = Path(tmp)
        base, adapter = build(root, args.preset)
        student = ModelVersion(tenant="bench", domain="bench", base_model=str(base), adapter_uri=str(adapter))
        server = EmbeddedLoRAServer(root / "home", slots=max(levels))
        started = time.perf_counter()
        server.ensure_loaded(student)
        print(f"base {args.preset}: converted to GGUF and served by llama.cpp in {time.perf_counter() - started:.1f} s "
              "(not measured below)")
        arms = {"embedded llama.cpp": server.client(student, timeout_s=600, concurrency=max(levels), max_retries=0),
                "transformers in-process": LocalModelClient(base, adapter, name="bench", max_new_tokens=args.max_tokens)}
        bodies = prompts(args.requests)
        results: dict[tuple[str, int], dict] = {}
        try:
            for client in arms.values():
                await client.complete({**bodies[0], "max_tokens": 4})  # warm: models loaded before any clock runs
            for clients in levels:
                rounds: dict[str, list[dict]] = {name: [] for name in arms}
                for r in range(ROUNDS):
                    for name in (list(arms) if r % 2 == 0 else list(reversed(arms))):
                        rounds[name].append(await run(arms[name], bodies, clients, args.max_tokens))
                for name in arms:
                    results[(name, clients)] = summary(rounds[name])
        finally:
            for client in arms.values():
                await client.aclose()
            server.stop()
    print(f"{'clients':>7}  {'arm':<24} {'tokens/s':>9} {'p50 s':>7} {'p99 s':>7} {'tokens':>7}")
    for clients in levels:
        for name in arms:
            r = results[(name, clients)]
            print(f"{clients:>7}  {name:<24} {r['tokens_s']:>9.1f} {r['p50']:>7.3f} {r['p99']:>7.3f} {r['tokens']:>7}")
        ratio = results[("embedded llama.cpp", clients)]["tokens_s"] / results[("transformers in-process", clients)]["tokens_s"]
        print(f"{clients:>7}  ratio embedded / transformers: {ratio:.1f}x tokens/s"
              + (f" (target at least {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT met'})" if clients == 4 else ""))


if __name__ == "__main__":
    asyncio.run(main())
