"""`forge-trainer selftest`: the whole path on any box, from a model built here to a saved adapter."""

from __future__ import annotations

import json
from pathlib import Path

from forge_trainer import tiny
from forge_trainer.config import load_config
from forge_trainer.run import train


def selftest(out: Path, *, steps: int = 30) -> int:
    """Build a tiny model, make a learnable dataset, train `steps` steps into `out/run`; the exit code of train."""
    base = tiny.build(out / "base-model")
    train_file = tiny.write_jsonl(out / "data" / "train.jsonl", tiny.synthetic_records(120, seed=1))
    valid_file = tiny.write_jsonl(out / "data" / "valid.jsonl", tiny.synthetic_records(20, seed=2))
    config = load_config(None, [
        f"model.name_or_path={base}", f"data.train={train_file}", f"data.valid={valid_file}",
        "data.max_seq_length=256", f"train.max_steps={steps}", "train.epochs=10", "train.lr=3e-3",
        "train.gradient_accumulation_steps=1", "train.batch_size=2", "train.eval_every=10", "train.save_every=10",
        "lora.r=8", "lora.alpha=16", "lora.dropout=0.0", f"output.dir={out / 'run'}",
        "train.threads=1",  # a tiny model: one thread beats several that contend for its small matrices
    ])
    code = train(config, resume=True)
    if code == 0:
        metrics = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
        first, last = metrics[0]["loss"], metrics[-1]["loss"]
        print(f"selftest: {len(metrics)} steps, loss {first:.3f} -> {last:.3f}, "
              f"{metrics[-1]['tokens_per_s']:.0f} tokens/s")
        if not last < first:
            print("selftest: the loss did not fall; this install does not train correctly")
            return 1
    return code
