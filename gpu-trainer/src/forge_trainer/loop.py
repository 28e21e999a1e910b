"""The training loop: AdamW, warmup + cosine, gradient accumulation, evaluation, early stopping, checkpoints."""

from __future__ import annotations

import math
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from forge_trainer import checkpoint
from forge_trainer.config import Config
from forge_trainer.data import Dataset, collate, plan_epoch
from forge_trainer.modeling import loss_sum
from forge_trainer.outputs import RunFiles


@dataclass
class Progress:
    step: int = 0
    epoch: int = 0
    micro: int = 0  # micro-batches of `epoch` already consumed
    tokens: int = 0
    best_valid: float | None = None
    bad_evals: int = 0
    best_state: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class Outcome:
    reason: str  # "completed", "early_stopping", "max_steps" or "interrupted"
    progress: Progress
    total_steps: int
    last_loss: float | None
    seconds: float


def epoch_groups(config: Config, train: Dataset) -> list[list[list[int]]]:
    """Every epoch's micro-batches, fixed by the seed; a fractional last epoch takes its first share."""
    t, d = config.train, config.data
    groups = []
    for epoch in range(math.ceil(t.epochs)):
        plan = plan_epoch(train, epoch, t.seed, t.batch_size, d.max_seq_length, d.packing).groups
        share = min(1.0, t.epochs - epoch)
        groups.append(plan[: max(1, math.ceil(share * len(plan)))])
    return groups


def cosine_with_warmup(total: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        span = max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))
    return factor


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@torch.no_grad()
def evaluate(model: Any, valid: Dataset, config: Config, pad_id: int, device: torch.device) -> float:
    model.eval()
    plan = plan_epoch(valid, 0, 0, config.train.batch_size, config.data.max_seq_length, config.data.packing,
                      shuffle=False)
    total, count = 0.0, 0
    for group in plan.groups:
        batch = collate(valid, group, config.data.packing, pad_id).to(device)
        total += loss_sum(model, batch).item()
        count += batch.trained
    model.train()
    return total / max(1, count)


def fit(config: Config, model: Any, train: Dataset, valid: Dataset | None, files: RunFiles, pad_id: int,
        device: torch.device, stop: threading.Event, resume: bool) -> Outcome:
    """Train until the epochs, max_steps or early stopping end it, or `stop` is set (then checkpoint and return)."""
    t = config.train
    groups = epoch_groups(config, train)
    total = sum(math.ceil(len(g) / t.gradient_accumulation_steps) for g in groups)
    total = min(total, t.max_steps) if t.max_steps else total
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total, math.ceil(t.warmup_ratio * total)))
    progress = Progress()
    found = checkpoint.latest(files.checkpoints) if resume else None
    if found is not None:
        progress = Progress(**checkpoint.restore(found, model, optimizer, scheduler))
    files.truncate_metrics(progress.step)  # lines past the checkpoint (or all, starting over) are logged again
    model.train()
    started, last_loss, reason = time.perf_counter(), None, "completed"
    window = {"loss": 0.0, "trained": 0, "tokens": 0, "start": time.perf_counter()}
    files.status("running", step=progress.step, total_steps=total, progress=progress.step / total,
                 tokens=progress.tokens)
    while progress.epoch < len(groups) and progress.step < total:
        epoch = groups[progress.epoch]
        chunk = epoch[progress.micro : progress.micro + t.gradient_accumulation_steps]
        batches = [collate(train, g, config.data.packing, pad_id) for g in chunk]
        trained = sum(b.trained for b in batches)
        step_loss = 0.0
        for batch in batches:
            loss = loss_sum(model, batch.to(device))
            (loss / trained).backward()  # mean over the step's trained tokens, however they fall in micro-batches
            step_loss += loss.item()
        if t.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        progress.micro += len(chunk)
        if progress.micro >= len(epoch):
            progress.epoch, progress.micro = progress.epoch + 1, 0
        tokens = sum(b.tokens for b in batches)
        progress.tokens += tokens
        window["loss"] += step_loss
        window["trained"] += trained
        window["tokens"] += tokens
        record: dict[str, Any] = {}
        if progress.step % t.log_every == 0 or progress.step == total:
            elapsed = time.perf_counter() - window["start"]
            last_loss = window["loss"] / window["trained"]
            record.update(loss=round(last_loss, 6), lr=lr, tokens_per_s=round(window["tokens"] / elapsed, 1),
                          tokens=progress.tokens, peak_memory_mb=round(peak_memory_mb(device), 1))
            window = {"loss": 0.0, "trained": 0, "tokens": 0, "start": time.perf_counter()}
        finishing = progress.step == total or progress.epoch >= len(groups)
        if valid is not None and (progress.step % t.eval_every == 0 or finishing):
            record["valid_loss"] = round(_track(progress, evaluate(model, valid, config, pad_id, device), model), 6)
        if record:
            done = progress.epoch + (progress.micro / len(groups[progress.epoch]) if progress.epoch < len(groups) else 0)
            files.metrics({"step": progress.step, "epoch": round(done, 4), **record})
        files.status("running", step=progress.step, total_steps=total, progress=round(progress.step / total, 4),
                     tokens=progress.tokens)
        patience = t.early_stopping_patience
        if patience and progress.bad_evals >= patience:
            reason = "early_stopping"
            break
        if stop.is_set() or progress.step % t.save_every == 0:
            checkpoint.save(files.checkpoints, progress.step, model, optimizer, scheduler, asdict(progress),
                            t.keep_checkpoints)
        if stop.is_set():
            reason = "interrupted"
            break
    else:
        if t.max_steps and progress.step >= t.max_steps and progress.epoch < len(groups):
            reason = "max_steps"
    if reason != "interrupted" and t.early_stopping_patience and progress.best_state:
        checkpoint.load_trainable(model, progress.best_state)  # with early stopping, keep the best validation
    return Outcome(reason, progress, total, last_loss, time.perf_counter() - started)


def _track(progress: Progress, valid_loss: float, model: Any) -> float:
    if progress.best_valid is None or valid_loss < progress.best_valid - 1e-4:
        progress.best_valid, progress.bad_evals = valid_loss, 0
        progress.best_state = checkpoint.trainable_state(model)
    else:
        progress.bad_evals += 1
    return valid_loss
