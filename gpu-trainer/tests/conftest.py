"""Trainer fixtures: one tiny model per session (built here, no download), configs over temp folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forge_trainer import tiny
from forge_trainer.config import Config, load_config


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: the build machines have two shared cores, where a second thread spins more than it computes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tokenizer(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture
def make_config(tiny_model: Path, tmp_path: Path):
    """A small, fast, learnable run; `key=value` overrides on top."""
    def build(*overrides: str, records: int = 60) -> Config:
        train = tiny.write_jsonl(tmp_path / "train.jsonl", tiny.synthetic_records(records, seed=1))
        valid = tiny.write_jsonl(tmp_path / "valid.jsonl", tiny.synthetic_records(12, seed=2))
        return load_config(None, [
            f"model.name_or_path={tiny_model}", f"data.train={train}", f"data.valid={valid}",
            "data.max_seq_length=128", "train.epochs=2", "train.lr=3e-3", "train.batch_size=2",
            "train.gradient_accumulation_steps=1", "train.eval_every=5", "train.save_every=5", "train.threads=1",
            "lora.r=8", "lora.alpha=16", "lora.dropout=0.0", f"output.dir={tmp_path / 'out'}", *overrides,
        ])
    return build
