"""Curation at scale: Forge's streaming curation against an equivalent Hugging Face `datasets` pipeline.

Generates N synthetic chat traces (low scores, refusals, exact and near duplicates, PII, malformed lines), then
runs, each in a child process pinned to one core (so its peak RSS and CPU are its own):
  * forge      — the whole curation (golden filter, rules, exact + near dedup, PII redaction, validation, tokens,
                 split, JSONL out);
  * forge-nond — the same with near-duplicate detection off, at the largest size and a tenth of it, for the
                 memory growth per trace;
  * datasets   — `load_dataset("text")` → map(parse) → filter(golden + rules) → filter(exact dedup) →
                 map(format) → to_json: the same filter, exact dedup and formatting.
  * tokens     — not a pipeline but a floor: only the token counting Forge cannot skip (tiktoken over every
                 message it wrote, read back from its train/valid files; the CPU of the counting alone). Its
                 rate over the N input traces, against the peer's, bounds what ratio any Forge on one core
                 that counts every message with tiktoken could reach.
Prints traces/s and MB/s per CPU second (a fair clock when others share the machine), wall time, peak RSS and the
ratios.

    .venv/bin/python bench/curate_bench.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from child import run_child  # noqa: E402
MODEL = "gpt-4.1-mini-2025-04-14"
WORDS = ("parse cache queue vector stream index merge token graph buffer retry schema thread socket matrix filter "
         "router ledger widget sensor kernel bucket cursor lambda tensor packet record signal window bundle async "
         "await yield class import return value error handle config option client server request response").split()
PII = ["Contact me at dev{i}@example.com.", "My card is 4111 1111 1111 1111.", "Server at 10.1.{j}.7 fails.",
       "Key sk-proj-{i:032d} leaked?", "Call +1 415 555 {j:04d}."]


def make_file(path: Path, n: int, seed: int = 7) -> None:
    """`n` JSONL traces: ~25% below the score bar, 3% refusals, 5% exact and 5% near duplicates, 5% PII, 1% broken."""
    rng = random.Random(seed)
    recent: list[dict] = []
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            roll = rng.random()
            if roll < 0.05 and recent:
                record = rng.choice(recent)  # an exact duplicate
            else:
                words = rng.sample(WORDS, 12)
                code = "\n".join(f"    {rng.choice(WORDS)}_{rng.randrange(10**6)} = {rng.choice(WORDS)}({i})"
                                 for _ in range(rng.randint(4, 14)))
                prompt = f"Question {i}: how do I {' '.join(words[:8])} in Python? " + " ".join(rng.choices(WORDS, k=30))
                answer = f"```python\ndef solve_{i}():\n{code}\n```\nThis uses {' '.join(words[4:])}."
                if roll < 0.10 and recent:  # a near duplicate: an earlier answer with one word changed
                    base = rng.choice(recent)
                    prompt, answer = base["messages"][0]["content"], base["messages"][1]["content"] + " Hope it helps."
                if 0.10 <= roll < 0.15:
                    prompt += " " + rng.choice(PII).format(i=i, j=i % 250)
                if 0.15 <= roll < 0.18:
                    answer = "I'm sorry, but I can't help with that."
                record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                          "score": rng.choice([95, 92, 99, 97, 91, 60]), "conversation_id": f"c{i // 3}"}
                recent = (recent + [record])[-500:]
            line = json.dumps(record)
            if rng.random() < 0.01:
                line = line[: rng.randint(5, 60)]  # a truncated line
            out.write(line + "\n")


def run_forge(path: str, out: str, near_dup: bool) -> dict:
    from forge import tokens
    from forge.domain_templates import load_domains
    from forge.curation.curator import Curator, CurationOptions
    from forge.curation.sources import from_file

    domain = load_domains()["coding"]
    if not near_dup:
        domain = domain.model_copy(update={"filters": domain.filters.model_copy(update={"near_dup_threshold": None})})
    count = tokens.counter_for_model(MODEL, home=Path(out) / "home")
    curator = Curator(CurationOptions(domain=domain, model=MODEL), Path(out), count=count)
    outcome = curator.run(from_file(path, tenant="bench", domain="coding")())
    return {"kept": outcome.stats.kept, "dropped": sum(outcome.stats.dropped.values())}


def run_datasets(path: str, out: str) -> dict:
    from datasets import disable_progress_bars, load_dataset

    from forge.domain.curation import exact_key, rule_violation
    from forge.domain_templates import load_domains

    disable_progress_bars()
    domain = load_domains()["coding"]

    def parse(batch: dict) -> dict:
        rows = {"messages": [], "score": [], "ok": []}
        for text in batch["text"]:
            try:
                record = json.loads(text)
                messages = record["messages"]
                ok = isinstance(messages, list) and messages[-1]["role"] == "assistant"
            except (ValueError, KeyError, TypeError, IndexError):
                record, messages, ok = {}, [], False
            rows["messages"].append(json.dumps(messages))
            rows["score"].append(float(record.get("score") or 0))
            rows["ok"].append(ok)
        return rows

    def keep(batch: dict) -> list[bool]:
        kept = []
        for ok, score, raw in zip(batch["ok"], batch["score"], batch["messages"]):
            if not ok or score < 90:
                kept.append(False)
                continue
            messages = json.loads(raw)
            prompt = "\n".join(m["content"] for m in messages[:-1])
            kept.append(rule_violation(messages[-1]["content"], prompt, domain.filters) is None)
        return kept

    seen: set[int] = set()

    def first_seen(batch: dict) -> list[bool]:
        flags = []
        for raw in batch["messages"]:
            key = exact_key(json.loads(raw))
            flags.append(key not in seen)
            seen.add(key)
        return flags

    def fmt(batch: dict) -> dict:
        return {"example": [json.dumps({"messages": [{"role": "system", "content": domain.system_prompt},
                                                     *json.loads(raw)]}) for raw in batch["messages"]]}

    cache = Path(out) / "hf-cache"
    ds = load_dataset("text", data_files=path, split="train", cache_dir=str(cache))
    ds = ds.map(parse, batched=True, remove_columns=["text"])
    ds = ds.filter(keep, batched=True).filter(first_seen, batched=True)
    ds = ds.map(fmt, batched=True, remove_columns=ds.column_names)
    ds.to_json(str(Path(out) / "train.jsonl"))
    return {"kept": len(ds)}


def run_tokens(written: str, out: str) -> dict:
    """CPU seconds tiktoken spends on the non-system messages in Forge's output (the system prompt, shared by
    every example, Forge counts once)."""
    from forge import tokens

    count = tokens.counter_for_model(MODEL, home=Path(out) / "home")
    texts = []
    for name in ("train", "valid"):
        with open(Path(written) / f"{name}.jsonl", "rb") as lines:
            texts += [m["content"] for line in lines for m in json.loads(line)["messages"] if m["role"] != "system"]
    started = time.process_time()
    total = sum(count(text) for text in texts)
    return {"kept": len(texts), "tokens": total, "count_cpu_s": time.process_time() - started}


def child(mode: str, path: str, out: str) -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    started = time.perf_counter()
    if mode == "tokens":
        result = run_tokens(path, out)
    else:
        result = run_datasets(path, out) if mode == "datasets" else run_forge(path, out, near_dup=mode == "forge")
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))


def measure(mode: str, path: Path, scratch: Path, name: str = "") -> dict:
    out = scratch / (name or f"{mode}-{path.stem}")
    out.mkdir()
    return run_child([__file__, "--child", mode, str(path), str(out)],
                     env={"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="forge-curate-bench-") as tmp:
        scratch = Path(tmp)
        results: dict[int, dict[str, dict]] = {}
        for n in sizes:
            path = scratch / f"traces-{n}.jsonl"
            make_file(path, n)
            mb = path.stat().st_size / 1e6
            results[n] = {mode: measure(mode, path, scratch) for mode in ("forge", "forge-nond", "datasets")}
            print(f"\n{n:,} traces ({mb:,.0f} MB), one core each; rates per CPU second (wall seconds in brackets):")
            for mode, r in results[n].items():
                print(f"  {mode:<10} {n / r['cpu_s']:>9,.0f} traces/s {mb / r['cpu_s']:>7.1f} MB/s "
                      f"({r['seconds']:,.0f} s wall)  peak {r['peak_mib']:>7.0f} MiB  kept {r['kept']:,}")
            forge, nond, peer = results[n]["forge"], results[n]["forge-nond"], results[n]["datasets"]
            print(f"  throughput forge / datasets: {peer['cpu_s'] / forge['cpu_s']:.2f}x "
                  f"(near-dup off: {peer['cpu_s'] / nond['cpu_s']:.2f}x); "
                  f"peak RSS forge / datasets: {forge['peak_mib'] / peer['peak_mib']:.2f}x")
            floor = measure("tokens", scratch / f"forge-{path.stem}", scratch, name=f"tokens-{path.stem}")
            counting = floor["count_cpu_s"]
            print(f"  floor: tiktoken over the {floor['kept']:,} messages Forge wrote alone takes "
                  f"{counting * 1e6 / n:.1f} µs per input trace ({n / counting:,.0f} traces/s): no Forge on one "
                  f"core that counts them reaches more than {peer['cpu_s'] / counting:.2f}x datasets")
            for entry in scratch.glob("traces-*"):
                entry.unlink()
        if len(sizes) > 1:
            small, large = min(sizes), max(sizes)
            growth = (results[large]["forge-nond"]["peak_mib"] - results[small]["forge-nond"]["peak_mib"]) * 2**20
            print(f"\nforge RSS growth without near-dup: {growth / (large - small):.0f} bytes per trace "
                  f"({small:,} → {large:,} traces); with near-dup: "
                  f"{(results[large]['forge']['peak_mib'] - results[small]['forge']['peak_mib']) * 2**20 / (large - small):.0f}")


if __name__ == "__main__":
    main()
