"""`forge-trainer` as a process: SIGTERM checkpoints and exits 143; --resume finishes the same trajectory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from forge_trainer.run import train

TRAINER = str(Path(sys.executable).with_name("forge-trainer"))


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def overrides(config) -> list[str]:
    c = config
    return [f"model.name_or_path={c.model.name_or_path}", f"data.train={c.data.train}", f"data.valid={c.data.valid}",
            f"data.max_seq_length={c.data.max_seq_length}", f"train.epochs={c.train.epochs}", f"train.lr={c.train.lr}",
            f"train.batch_size={c.train.batch_size}", "train.gradient_accumulation_steps=1", "train.eval_every=5",
            "train.save_every=1000", "train.threads=1", "lora.r=8", "lora.alpha=16", "lora.dropout=0.0"]


def test_sigterm_writes_a_checkpoint_exits_143_and_resume_reproduces_the_trajectory(make_config, tmp_path):
    config = make_config("train.epochs=6", "train.save_every=1000", f"output.dir={tmp_path / 'reference'}")
    out = tmp_path / "killed"
    command = [TRAINER, "train", *overrides(config), f"output.dir={out}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(lines(out / "metrics.jsonl")) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    status = json.loads((out / "status.json").read_text())
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    assert status["state"] == "interrupted" and status["step"] < status["total_steps"]
    assert (out / status["checkpoint"] / "state.pt").is_file()
    assert not (out / "adapter").exists()

    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr
    assert json.loads((out / "status.json").read_text())["state"] == "succeeded"

    assert train(config) == 0  # the same run, never interrupted
    expected, got = lines(tmp_path / "reference" / "metrics.jsonl"), lines(out / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for a, b in zip(got, expected):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and a.get("valid_loss") == b.get("valid_loss")


def test_selftest_trains_a_tiny_model_end_to_end(tmp_path):
    done = subprocess.run([TRAINER, "selftest", "--out", str(tmp_path), "--steps", "12"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "selftest: 12 steps, loss" in done.stdout
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
