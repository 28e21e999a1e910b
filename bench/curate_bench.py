"""Curation at scale, like for like (issue 19): Forge against a Hugging Face `datasets` pipeline doing the same work.

Generates N synthetic chat traces (low scores, refusals, exact and near duplicates, PII, broken lines), then runs,
each in its own child process:
  * forge-W   — Forge's curation on W workers: W = 1 is one process (map and reduce batch by batch); W > 1 maps file
                chunks on W forked workers and reduces their frames in the child;
  * datasets-W — `load_dataset("text")` with num_proc = W: parse → golden filter and the domain's rules → the same
                PII patterns with redaction (Forge's `pii.redact`) → exact dedup (the same key) → MinHash (datasketch,
                128 permutations over the same 5-byte shingles) and `MinHashLSH` at the same threshold → tiktoken
                counts of every kept message → the grouped train/valid split → JSONL out.
Rates are per CPU second of the arm's processes (user + system, children included): the machine is shared, so wall
time would measure the neighbours. For Forge at W > 1 the map (the workers' CPU) and the reduce (the child's own CPU,
which also reads the spools) are reported apart; the time at W workers is projected from them as
max(total / W, reduce, map / W) — the reduce runs beside the workers — and the 10M-at-16-workers time from the
per-trace costs. The reduce's peak RSS is the child's own (workers are forked before it grows).

    .venv/bin/python bench/curate_bench.py [--sizes 1000000] [--workers 1,2] [--arms forge,datasets]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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


def _tools(home: str):
    from forge import tokens

    return tokens.counter_for_model(MODEL, home=Path(home)), None, None


def run_forge(path: str, out: str, workers: int) -> dict:
    import functools

    from forge import tokens
    from forge.curation import parallel
    from forge.curation.curator import Curator, CurationOptions
    from forge.curation.sources import from_file
    from forge.domain_templates import load_domains

    options = CurationOptions(domain=load_domains()["coding"], model=MODEL)
    home = str(Path(out) / "home")
    tokens.counter_for_model(MODEL, home=Path(home))  # the ranks, written once before any worker starts
    started = time.process_time()
    if workers == 1:
        outcome = Curator(options, Path(out), count=_tools(home)[0]).run(from_file(path, tenant="bench", domain="coding")())
    else:
        job = parallel.MapJob(options, functools.partial(_tools, home), "line")
        units = parallel.plan_file(path, parallel.chunks_for(path, workers), tenant="bench", domain="coding")
        outcome = parallel.curate_units(job, units, Path(out), Path(out) / "spool", workers=workers, context="fork")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"kept": outcome.stats.kept, "dropped": sum(outcome.stats.dropped.values()),
            "reduce_cpu_s": time.process_time() - started, "map_cpu_s": children.ru_utime + children.ru_stime,
            "reduce_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sha256": outcome.sha256}


_COUNTERS: dict = {}


def _counter(home: str):
    if home not in _COUNTERS:
        _COUNTERS[home] = _tools(home)[0]
    return _COUNTERS[home]


def run_datasets(path: str, out: str, workers: int) -> dict:
    from datasets import disable_progress_bars, load_dataset
    from datasketch import MinHash, MinHashLSH

    from forge import tokens
    from forge.domain import chat_format, curation, pii
    from forge.domain.dedup import SHINGLE_BYTES
    from forge.domain_templates import load_domains

    disable_progress_bars()
    domain = load_domains()["coding"]
    rules, system = domain.filters, domain.system_prompt
    home = Path(out) / "home"
    tokens.counter_for_model(MODEL, home=home)
    proc = workers if workers > 1 else None

    def parse(batch: dict) -> dict:
        rows: dict[str, list] = {"messages": [], "score": [], "group": [], "ok": []}
        for text in batch["text"]:
            try:
                record = json.loads(text)
                messages = record["messages"]
                ok = isinstance(messages, list) and messages[-1]["role"] == "assistant"
            except (ValueError, KeyError, TypeError, IndexError):
                record, messages, ok = {}, [], False
            rows["messages"].append(json.dumps(messages))
            rows["score"].append(float(record.get("score") or 0))
            rows["group"].append(curation.group_key(messages, record.get("conversation_id")) if ok else "")
            rows["ok"].append(ok)
        return rows

    def golden(batch: dict) -> list[bool]:
        kept = []
        for ok, score, raw in zip(batch["ok"], batch["score"], batch["messages"]):
            if not ok or score < 90:
                kept.append(False)
                continue
            messages = json.loads(raw)
            prompt = "\n".join(m["content"] for m in messages[:-1])
            kept.append(curation.rule_violation(messages[-1]["content"], prompt, rules) is None)
        return kept

    def keyed(batch: dict) -> dict:
        return {"key": [str(curation.exact_key(json.loads(raw))) for raw in batch["messages"]]}

    seen: set[str] = set()

    def first_seen(batch: dict) -> list[bool]:
        flags = []
        for key in batch["key"]:
            flags.append(key not in seen)
            seen.add(key)
        return flags

    def redact_and_sketch(batch: dict) -> dict:
        rows: dict[str, list] = {"example": [], "hashes": []}
        for raw in batch["messages"]:
            messages = [{"role": "system", "content": system}, *json.loads(raw)]
            for m in messages[1:]:
                m["content"], _ = pii.redact(m["content"])
            text = curation.normalise("\n".join(m["content"] for m in messages[1:])).encode()
            sketch = MinHash(num_perm=128)
            sketch.update_batch([text[i: i + SHINGLE_BYTES] for i in range(max(1, len(text) - SHINGLE_BYTES + 1))])
            rows["example"].append(json.dumps({"messages": messages}))
            rows["hashes"].append(sketch.hashvalues.tolist())
        return rows

    lsh = MinHashLSH(threshold=rules.near_dup_threshold, num_perm=128)
    SCHEME = MinHash(num_perm=128).scheme  # the default scheme the sketches were made with

    def not_near(batch: dict, indices: list[int]) -> list[bool]:
        flags = []
        for index, hashes in zip(indices, batch["hashes"]):
            sketch = MinHash(num_perm=128, hashvalues=hashes, scheme=SCHEME)
            close = bool(lsh.query(sketch))
            if not close:
                lsh.insert(str(index), sketch)
            flags.append(not close)
        return flags

    def counted(batch: dict) -> dict:
        count = _counter(str(home))  # built in each worker: tiktoken's encoder does not pickle
        totals, splits = [], []
        for example, group in zip(batch["example"], batch["group"]):
            total, _ = chat_format.count_example_tokens(json.loads(example), count)
            totals.append(total)
            splits.append(curation.split_of(group, 42, 0.1))
        return {"tokens": totals, "split": splits}

    ds = load_dataset("text", data_files=path, split="train", cache_dir=str(Path(out) / "hf-cache"))
    ds = ds.map(parse, batched=True, remove_columns=["text"], num_proc=proc)
    ds = ds.filter(golden, batched=True, num_proc=proc)
    ds = ds.map(keyed, batched=True, num_proc=proc).filter(first_seen, batched=True)  # global state: one process
    ds = ds.map(redact_and_sketch, batched=True, num_proc=proc, remove_columns=["messages", "key"])
    ds = ds.filter(not_near, batched=True, with_indices=True)  # the LSH index is global state: one process
    ds = ds.map(counted, batched=True, num_proc=proc, remove_columns=["hashes"])
    for split in ("train", "valid"):
        part = ds.filter(lambda b: [s == split for s in b["split"]], batched=True, num_proc=proc)
        part.select_columns(["example"]).to_json(str(Path(out) / f"{split}.jsonl"), num_proc=proc)
    return {"kept": len(ds)}


def child(mode: str, path: str, out: str) -> None:
    arm, workers = mode.rsplit("-", 1)
    started = time.perf_counter()
    result = (run_forge if arm == "forge" else run_datasets)(path, out, int(workers))
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))


def measure(mode: str, path: Path, scratch: Path) -> dict:
    out = scratch / f"{mode}-{path.stem}"
    out.mkdir()
    return run_child([__file__, "--child", mode, str(path), str(out)],
                     env={"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})


def report(n: int, mb: float, results: dict[str, dict], workers: list[int]) -> None:
    print(f"\n{n:,} traces ({mb:,.0f} MB); CPU seconds of each arm's processes (wall seconds, which other work on "
          "this shared machine inflates, in brackets):", flush=True)
    for mode, r in results.items():
        print(f"  {mode:<11} {r['cpu_s']:>8.1f} CPU s  {n / r['cpu_s']:>8,.0f} traces/CPU s  ({r['seconds']:,.0f} s "
              f"wall)  peak {r['peak_mib']:>6.0f} MiB  kept {r['kept']:,}", flush=True)
    one = results.get("forge-1")
    if one:
        print(f"  forge-1 curates in {one['reduce_cpu_s']:.1f} CPU s of its {one['cpu_s']:.1f} (the rest is start-up)")
    if one and "datasets-1" in results:
        print(f"  forge-1 / datasets-1: {results['datasets-1']['cpu_s'] / one['cpu_s']:.2f}x  (target >= 1.5x)")
    for w in workers:
        forge, peer = results.get(f"forge-{w}"), results.get(f"datasets-{w}")
        if w == 1 or not forge:
            continue
        mapped, reduced = forge["map_cpu_s"], forge["reduce_cpu_s"]
        projected = max((mapped + reduced) / w, reduced, mapped / w)
        print(f"  forge-{w}: map {mapped:.1f} CPU s on {w} workers, reduce {reduced:.1f} CPU s (serial share "
              f"{reduced / (mapped + reduced):.1%}); reduce peak RSS {forge['reduce_peak_mib']:.0f} MiB "
              f"(target < 1024); projected {projected:.1f} s on {w} cores")
        if one:
            print(f"  forge-{w} / forge-1: {one['reduce_cpu_s'] / projected:.2f}x  (target >= 1.8x at 2; one worker's "
                  "curation CPU against the projection)")
            same = "the same" if forge["sha256"] == one["sha256"] else "DIFFERENT"
            print(f"  dataset sha256 at {w} workers is {same} as at 1")
        if peer:
            print(f"  forge-{w} / datasets-{w} (CPU): {peer['cpu_s'] / forge['cpu_s']:.2f}x")
        per_map, per_reduce = mapped / n, reduced / n
        ten = 10_000_000
        print(f"  10M traces at 16 workers, from these costs: map {per_map * ten / 16:,.0f} s, reduce "
              f"{per_reduce * ten:,.0f} s → {max(per_map * ten / 16, per_reduce * ten):,.0f} s overlapped, "
              f"{per_map * ten / 16 + per_reduce * ten:,.0f} s if run one after the other")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--arms", default="forge,datasets")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="forge-curate-bench-") as tmp:
        scratch = Path(tmp)
        for n in [int(s) for s in args.sizes.split(",")]:
            path = scratch / f"traces-{n}.jsonl"
            make_file(path, n)
            mb = path.stat().st_size / 1e6
            results: dict[str, dict] = {}
            for arm in args.arms.split(","):  # Forge's arms first: the peer's take longest
                for w in workers:
                    results[f"{arm}-{w}"] = measure(f"{arm}-{w}", path, scratch)
                    print(f"  [{arm}-{w} done: {json.dumps(results[f'{arm}-{w}'])}]", flush=True)
            report(n, mb, results, workers)
            path.unlink()


if __name__ == "__main__":
    main()
