"""LoRA training throughput: forge-trainer vs TRL's SFTTrainer + peft (no packing), same model, data and CPU.

Both peers train one epoch of the same chat examples (lengths spread 32–512 tokens, as real traffic is) on the same
random ~32M-parameter Llama built here, each in its own child process with the same thread count. Prints real
(non-padding) tokens/s of each and their ratio, and the share of the FLOP floor each reaches: per token
4·N (forward + input gradients through the frozen linears) + 6·N_lora + attention, against a GEMM rate measured
in the same run.

    .venv/bin/python bench/trainer_bench.py [--examples 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

R, ALPHA, BATCH, MAX_LEN, LR = 16, 32, 8, 512, 2e-4


def make_records(count: int, seed: int = 0) -> list[dict]:
    """Chat examples whose token counts spread over 32–512: the padding a plain batch pays for is real."""
    rng = random.Random(seed)
    words = "the a of to in is for on with as by at from model answer value list code data test run".split()
    records = []
    for i in range(count):
        target = rng.randint(32, MAX_LEN - 32) / 2.4  # the bench tokenizer splits these words into ~2.3 tokens
        prompt = " ".join(rng.choice(words) for _ in range(int(target * 0.6)))
        answer = " ".join(rng.choice(words) for _ in range(max(4, int(target * 0.35))))
        records.append({"messages": [{"role": "user", "content": f"Q{i}: {prompt}"},
                                     {"role": "assistant", "content": answer}]})
    return records


def gemm_flops(threads: int) -> float:
    """FLOP/s of a float32 matmul the size of this model's MLP projections."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 512), torch.randn(512, 1408)
    for _ in range(3):
        a @ b
    runs, start = 20, time.perf_counter()
    for _ in range(runs):
        a @ b
    return 2 * 2048 * 512 * 1408 * runs / (time.perf_counter() - start)


def run_forge(model: Path, data: Path, out: Path, threads: int) -> dict:
    from forge_trainer.config import load_config
    from forge_trainer.run import train

    config = load_config(None, [
        f"model.name_or_path={model}", f"data.train={data}", f"data.max_seq_length={MAX_LEN}", "train.epochs=1",
        f"train.batch_size={BATCH // 2}", "train.gradient_accumulation_steps=1", f"train.lr={LR}",
        "train.save_every=100000", f"train.threads={threads}", f"lora.r={R}", f"lora.alpha={ALPHA}",
        f"output.dir={out}",
    ])
    assert train(config) == 0, (out / "status.json").read_text()
    summary = json.loads((out / "summary.json").read_text())
    return {"tokens": summary["tokens"], "seconds": summary["seconds"]}


def run_trl(model: Path, data: Path, out: Path, threads: int) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(threads)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(model)
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
                     num_train_epochs=1, learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=0.03,
                     logging_steps=10, save_strategy="no", report_to=[], packing=False, max_length=MAX_LEN,
                     use_cpu=True, seed=42, dataloader_num_workers=0)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model), args=args,
                         train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                         peft_config=LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.05, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    start = time.perf_counter()
    trainer.train()
    return {"tokens": tokens, "seconds": time.perf_counter() - start}


def floor_flops_per_token(model: Path, data: Path) -> float:
    """4·N + 6·N_lora + attention (forward 4·d·context per layer, backward twice that), averaged over the data."""
    from transformers import AutoConfig, AutoTokenizer

    c = AutoConfig.from_pretrained(model)
    d, layers, inter, kv = c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.num_key_value_heads
    kv_dim = kv * d // c.num_attention_heads
    shapes = [(d, d), (d, kv_dim), (d, kv_dim), (d, d), (d, inter), (d, inter), (inter, d)]
    frozen = layers * sum(a * b for a, b in shapes) + d * c.vocab_size  # every linear, LM head included
    lora = layers * sum(R * (a + b) for a, b in shapes)
    from forge_trainer.chat import tokenize

    tokenizer = AutoTokenizer.from_pretrained(model)
    examples = [tokenize(tokenizer, json.loads(line), i, 1 << 20) for i, line in enumerate(data.read_text().splitlines())]
    lengths = [len(e.input_ids) for e in examples]
    assert max(lengths) <= MAX_LEN, "an example exceeds MAX_LEN: the peers would truncate it differently"
    mean_context = sum(n * (n + 1) / 2 for n in lengths) / sum(lengths)
    return 4 * frozen + 6 * lora + 12 * layers * d * mean_context


def child(args: argparse.Namespace) -> None:
    runner = {"forge": run_forge, "trl": run_trl}[args.child]
    result = runner(Path(args.model), Path(args.data), Path(args.out), args.threads)
    result["gemm_flops"] = gemm_flops(args.threads)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=64)
    # One thread by default: on a small shared machine a second OpenMP thread mostly spins, and the noise it adds
    # swamps the difference being measured. Give a dedicated box all its cores.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["forge", "trl"])
    parser.add_argument("--model"), parser.add_argument("--data"), parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        return child(args)
    from forge_trainer import tiny

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = tiny.build(root / "model", preset="bench", seed=0)
        data = tiny.write_jsonl(root / "train.jsonl", make_records(args.examples))
        results = {}
        for peer in ("forge", "trl"):
            done = subprocess.run([sys.executable, __file__, "--child", peer, "--model", str(model), "--data",
                                   str(data), "--out", str(root / peer), "--threads", str(args.threads)],
                                  capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{peer} failed:\n{done.stderr[-3000:]}")
            results[peer] = json.loads(line[7:])
        per_token = floor_flops_per_token(model, data)
        params = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(model).parameters())
    print(f"model: {params / 1e6:.1f}M parameters (Llama, random), LoRA r={R} all-linear; {args.examples} examples, "
          f"threads={args.threads}; floor {per_token / 1e6:.1f} MFLOP/token")
    for peer, r in results.items():
        rate = r["tokens"] / r["seconds"]
        share = rate * per_token / r["gemm_flops"]
        print(f"{peer:>6}: {r['tokens']} tokens in {r['seconds']:.1f}s = {rate:,.0f} tokens/s; GEMM "
              f"{r['gemm_flops'] / 1e9:.1f} GFLOP/s; FLOP-floor share {share:.1%}")
    forge_rate = results["forge"]["tokens"] / results["forge"]["seconds"]
    trl_rate = results["trl"]["tokens"] / results["trl"]["seconds"]
    print(f"ratio forge-trainer / TRL SFTTrainer: {forge_rate / trl_rate:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
