"""Training data: JSONL in, tokenized examples, and the deterministic micro-batches of each epoch."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from forge_trainer import remote
from forge_trainer.chat import DataError, Example, tokenize


@dataclass
class Dataset:
    examples: list[Example]
    lines: int
    dropped_truncated: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def local_copy(source: str, inputs: Path, name: str) -> Path:
    """A local path for `source`: the file itself, or a download of an https/Blob SAS URL."""
    if remote.is_url(source):
        return remote.fetch(source, inputs / f"{name}.jsonl")
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"{name} file {source} does not exist; pass data.{name}=PATH or an https URL.")
    return path


def read_records(path: Path, name: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line; DataError on an empty file or a malformed line."""
    seen = False
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(f"{name} line {number}: not valid JSON ({exc.msg}); fix or remove the line.") from None
            seen = True
            yield number, record
    if not seen:
        raise DataError(f"{name} file {path.name} is empty; it needs at least one chat example.")


def load(path: Path, name: str, tokenizer: Any, max_length: int) -> Dataset:
    """Tokenize every line; any bad line fails the whole file, naming its line and what to fix."""
    examples, lines, dropped = [], 0, 0
    for number, record in read_records(path, name):
        lines += 1
        try:
            example = tokenize(tokenizer, record, number, max_length)
        except DataError as exc:
            raise DataError(f"{name} {exc}") from None
        if example is None:
            dropped += 1  # truncation to max_seq_length cut off every assistant token
        else:
            examples.append(example)
    if not examples:
        raise DataError(
            f"{name}: all {lines} examples lost every trained token to truncation at data.max_seq_length="
            f"{max_length}; raise it or shorten the prompts."
        )
    return Dataset(examples, lines, dropped)


@dataclass
class Batch:
    """One micro-batch: a padding-free packed row (`bounds` set) or right-padded rows."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    bounds: list[int] | None = None
    tokens: int = 0  # real (non-padding) tokens
    trained: int = 0  # tokens that carry loss

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.input_ids.to(device), self.position_ids.to(device), self.targets.to(device),
                     self.bounds, self.tokens, self.trained)

    def forward_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"input_ids": self.input_ids, "position_ids": self.position_ids, "use_cache": False}
        if self.bounds is not None:
            kwargs.update(cu_seq_lens_q=self.bounds, cu_seq_lens_k=self.bounds)
        return kwargs


@dataclass
class Plan:
    """The micro-batches of one epoch, as lists of example indices, in a seed-determined order."""

    groups: list[list[int]] = field(default_factory=list)


def plan_epoch(dataset: Dataset, epoch: int, seed: int, batch_size: int, max_length: int, packing: bool,
               shuffle: bool = True) -> Plan:
    order = list(range(len(dataset.examples)))
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    if not packing:
        return Plan([order[i : i + batch_size] for i in range(0, len(order), batch_size)])
    budget, groups, current, used = batch_size * max_length, [], [], 0
    for index in order:
        size = len(dataset.examples[index].input_ids)
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        groups.append(current)
    return Plan(groups)


def collate(dataset: Dataset, group: list[int], packing: bool, pad_id: int) -> Batch:
    examples = [dataset.examples[i] for i in group]
    tokens = sum(len(e.input_ids) for e in examples)
    trained = sum(e.trained_tokens for e in examples)
    if packing:
        ids = [t for e in examples for t in e.input_ids]
        positions = [p for e in examples for p in range(len(e.input_ids))]
        targets = [t for e in examples for t in e.targets]
        bounds = [0]
        for e in examples:
            bounds.append(bounds[-1] + len(e.input_ids))
        return Batch(torch.tensor([ids]), torch.tensor([positions]), torch.tensor([targets]), bounds, tokens, trained)
    width = max(len(e.input_ids) for e in examples)
    ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in examples]
    targets = [e.targets + [-100] * (width - len(e.targets)) for e in examples]
    positions = [list(range(width))] * len(examples)
    return Batch(torch.tensor(ids), torch.tensor(positions), torch.tensor(targets), None, tokens, trained)
