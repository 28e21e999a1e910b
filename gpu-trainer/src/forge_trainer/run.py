"""One training run end to end: check inputs, load, fit, publish the adapter; every failure lands in status.json."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from forge_trainer import data, remote
from forge_trainer.chat import DataError
from forge_trainer.config import Config, ConfigError
from forge_trainer.loop import fit
from forge_trainer.modeling import (ModelError, check_source, device_and_dtype, load_model, load_tokenizer,
                                    total_parameters, trainable_parameters)
from forge_trainer.outputs import RunFiles

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 143  # 143 = 128 + SIGTERM: not finished, checkpoint saved
EXPECTED = (ConfigError, DataError, ModelError, OSError)


class RunExists(ValueError):
    """The output folder already holds a run; resume it or choose another folder."""


def train(config: Config, *, resume: bool = False, stop: threading.Event | None = None) -> int:
    """Run training as configured; returns the process exit code. Never presents a partial adapter."""
    root = Path(config.output.dir).expanduser()
    files = RunFiles(root)
    if not resume and files.holds_results():
        raise RunExists(f"{root} already holds a run; pass --resume to continue it, or choose an empty output.dir.")
    uploader = remote.BlobUploader(config.output.upload_url, root) if config.output.upload_url else None
    if uploader:
        files.on_change = _mirror(uploader, files)
    stop = stop or threading.Event()
    restore = _on_sigterm(stop)
    try:
        files.status("starting", step=0, progress=0.0, error=None)
        return _train(config, files, resume, stop, uploader)
    except EXPECTED as exc:
        return _fail(files, str(exc))
    except Exception as exc:  # an unexpected bug still ends in a status a person can read
        return _fail(files, f"{type(exc).__name__}: {exc}")
    finally:
        restore()


def _train(config: Config, files: RunFiles, resume: bool, stop: threading.Event, uploader: Any) -> int:
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    check_source(config.model)
    inputs = files.root / "inputs"
    train_path = data.local_copy(config.data.train, inputs, "train")
    valid_path = data.local_copy(config.data.valid, inputs, "valid") if config.data.valid else None
    for path, name in ((train_path, "train"), (valid_path, "valid")):
        if path is not None:
            for _ in data.read_records(path, name):  # JSON-level problems fail before any model loads
                pass
    tokenizer = load_tokenizer(config.model)
    train_set = data.load(train_path, "train", tokenizer, config.data.max_seq_length)
    valid_set = data.load(valid_path, "valid", tokenizer, config.data.max_seq_length) if valid_path else None
    device, dtype = device_and_dtype(config.model)
    model = load_model(config, tokenizer, device, dtype)
    outcome = fit(config, model, train_set, valid_set, files, tokenizer.pad_token_id, device, stop, resume)
    p = outcome.progress
    if outcome.reason == "interrupted":
        files.status("interrupted", step=p.step, total_steps=outcome.total_steps, reason="SIGTERM",
                     error=None, checkpoint=f"checkpoints/step-{p.step:08d}")
        return EXIT_INTERRUPTED

    def write_adapter(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)  # carries the chat template the adapter was trained with

    files.publish(write_adapter, files.adapter_dir)
    if config.output.merge and config.model.quantization == "none":
        files.publish(lambda folder: (model.merge_and_unload().save_pretrained(folder),
                                      tokenizer.save_pretrained(folder)), files.merged_dir)
    files.summary({
        "reason": outcome.reason, "steps": p.step, "total_steps": outcome.total_steps, "tokens": p.tokens,
        "seconds": round(outcome.seconds, 2), "tokens_per_s": round(p.tokens / max(outcome.seconds, 1e-9), 1),
        "final_loss": outcome.last_loss,
        "best_valid_loss": None if p.best_valid is None else round(p.best_valid, 6),
        "train_examples": len(train_set.examples), "train_lines": train_set.lines,
        "dropped_truncated": train_set.dropped_truncated, "valid_examples": len(valid_set.examples) if valid_set else 0,
        "parameters": total_parameters(model), "trainable_parameters": trainable_parameters(model),
        "device": device.type, "dtype": str(dtype).removeprefix("torch."), "base_model": config.model.name_or_path,
        "config": _redacted(config),
    })
    if uploader:
        uploader.upload([files.adapter_dir, files.metrics_path, files.summary_path]
                        + ([files.merged_dir] if files.merged_dir.exists() else []))
    files.status("succeeded", step=p.step, total_steps=outcome.total_steps, progress=1.0, error=None,
                 adapter="adapter", finished_at=time.time())
    return EXIT_OK


def _mirror(uploader: remote.BlobUploader, files: RunFiles, every: float = 15.0):
    """status.json and metrics.jsonl to Blob: at most every `every` seconds while running, at once otherwise."""
    last = [float("-inf")]

    def on_change(paths: list[Path]) -> None:
        now = time.monotonic()
        if files.state == "running" and now - last[0] < every:
            return
        last[0] = now
        try:
            uploader.upload([files.status_path, files.metrics_path])
        except OSError as exc:
            if files.state != "running":
                raise
            print(f"forge-trainer: progress not mirrored this time ({exc})", file=sys.stderr)  # the next try may

    return on_change


def _redacted(config: Config) -> dict[str, Any]:
    """The config as JSON with every URL's query (a SAS signature) cut off."""
    dump = config.model_dump(mode="json")
    for section, key in (("data", "train"), ("data", "valid"), ("output", "upload_url")):
        if dump[section][key] and remote.is_url(dump[section][key]):
            dump[section][key] = remote.redact(dump[section][key])
    return dump


def _fail(files: RunFiles, reason: str) -> int:
    try:
        files.status("failed", error=reason)
    except OSError:
        pass  # the reason still reaches stderr through the CLI
    return EXIT_FAILED


def _on_sigterm(stop: threading.Event):
    """SIGTERM (preemption, cancel) asks the loop to checkpoint at the end of the current step and stop."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    return lambda: signal.signal(signal.SIGTERM, previous)
