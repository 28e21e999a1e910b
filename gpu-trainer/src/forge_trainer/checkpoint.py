"""Checkpoints: adapter weights, optimizer, schedule, progress and RNG, enough to resume the same trajectory."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

STATE = "state.pt"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device))


def save(folder: Path, step: int, model: torch.nn.Module, optimizer: Any, scheduler: Any,
         progress: dict[str, Any], keep: int) -> Path:
    """Write `folder/step-N` atomically (temp folder, then rename) and keep only the newest `keep`."""
    target = folder / f"step-{step:08d}"
    tmp = folder / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {
        "trainable": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": progress,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    torch.save(state, tmp / STATE)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    for old in _all(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest(folder: Path) -> Path | None:
    found = _all(folder)
    return found[-1] if found else None


def _all(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if re.fullmatch(r"step-\d{8}", p.name) and (p / STATE).is_file())


def restore(path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load a checkpoint into the live objects; returns its progress record."""
    state = torch.load(path / STATE, map_location="cpu", weights_only=False)
    load_trainable(model, state["trainable"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["progress"]
