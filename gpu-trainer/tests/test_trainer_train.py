"""Training on a tiny model: the loss falls, the adapter loads and changes outputs, resume keeps the trajectory."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from forge_trainer import attention, data
from forge_trainer.loop import evaluate
from forge_trainer.run import train


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_loss_falls_on_a_learnable_task_and_the_adapter_and_merged_weights_change_the_outputs(
        make_config, tiny_model, tokenizer):
    config = make_config("train.epochs=4", "output.merge=true")
    assert train(config) == 0
    out = Path(config.output.dir)
    rows = metrics(out)
    losses = [r["loss"] for r in rows]
    # A random model starts near uniform over its vocabulary: ln(vocab) nats per token.
    assert abs(losses[0] - math.log(len(tokenizer))) < 0.5
    assert losses[-1] < 0.5 * losses[0]
    valid = [r["valid_loss"] for r in rows if "valid_loss" in r]
    assert valid[-1] < valid[0]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert {"epoch", "lr", "tokens_per_s", "peak_memory_mb"} <= set(rows[-1])
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "succeeded" and status["progress"] == 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == len(rows) and summary["trainable_parameters"] < summary["parameters"] / 5
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (out / "adapter").iterdir()}

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What colour is the falcon?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        before = base(**prompt).logits
        tuned = PeftModel.from_pretrained(base, out / "adapter")
        after = tuned(**prompt).logits
        merged = AutoModelForCausalLM.from_pretrained(out / "merged")(**prompt).logits
    assert (after - before).abs().max() > 0.1
    torch.testing.assert_close(merged, after, rtol=1e-4, atol=1e-4)  # merged/ is base + adapter in one model


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_trajectory(make_config, tmp_path):
    full = make_config("train.epochs=2", "train.keep_checkpoints=100", f"output.dir={tmp_path / 'full'}")
    assert train(full) == 0
    resumed_dir = tmp_path / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-00000010", resumed_dir / "checkpoints" / "step-00000010")
    resumed = make_config("train.epochs=2", f"output.dir={resumed_dir}")
    assert train(resumed, resume=True) == 0
    expected = [r for r in metrics(tmp_path / "full") if r["step"] > 10]
    got = metrics(resumed_dir)
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for a, b in zip(got, expected):
        assert a["loss"] == b["loss"] and a["lr"] == b["lr"] and a.get("valid_loss") == b.get("valid_loss")


def test_early_stopping_ends_the_run_and_keeps_the_best_validation_adapter(make_config, tiny_model, tokenizer):
    config = make_config("train.epochs=30", "train.eval_every=1", "train.early_stopping_patience=2", "train.lr=0.5")
    assert train(config) == 0
    out = Path(config.output.dir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reason"] == "early_stopping" and summary["steps"] < summary["total_steps"]
    assert summary["best_valid_loss"] == min(r["valid_loss"] for r in metrics(out))
    base = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention.register())
    tuned = PeftModel.from_pretrained(base, out / "adapter")
    valid = data.load(Path(config.data.valid), "valid", tokenizer, config.data.max_seq_length)
    reloaded = evaluate(tuned, valid, config, tokenizer.pad_token_id, torch.device("cpu"))
    assert abs(reloaded - summary["best_valid_loss"]) < 1e-4
