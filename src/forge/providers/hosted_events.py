"""Hosted fine-tuning's job events and checkpoints as ProviderEvents, behind one cursor. No I/O.

OpenAI lists both newest first, each with its own `after` cursor; Forge wants what is new since the last poll,
oldest first, behind the one cursor a job keeps: `"{last event id}|{last checkpoint id}"`.
"""

from __future__ import annotations

from typing import Any, Iterable

from forge.providers.training import ProviderEvent

CURSOR_SEP = "|"
MAX_NEW = 10_000  # a listing that never reaches the cursor (it was pruned) stops here


def split_cursor(after: str | None) -> tuple[str, str]:
    """(last job event id, last checkpoint id); empty strings for none."""
    last_event, _, last_checkpoint = (after or "").partition(CURSOR_SEP)
    return last_event, last_checkpoint


def newer(items: Iterable[Any], seen: str) -> list[Any]:
    """Items of a newest-first listing down to (not including) the one with id `seen`, oldest first."""
    fresh = []
    for item in items:  # the SDK pages on through `after` cursors as the loop goes
        if item.id == seen or len(fresh) >= MAX_NEW:
            break
        fresh.append(item)
    return fresh[::-1]


def merge(events: list[Any], checkpoints: list[Any], last_event: str, last_checkpoint: str) -> list[ProviderEvent]:
    """Both lists in time order, each item carrying the cursor that stands after it."""
    timeline = sorted([(e.created_at, 0, i, e) for i, e in enumerate(events)]
                      + [(c.created_at, 1, i, c) for i, c in enumerate(checkpoints)], key=lambda t: t[:3])
    out = []
    for _, kind, _, item in timeline:
        if kind == 0:
            last_event = item.id
        else:
            last_checkpoint = item.id
        cursor = f"{last_event}{CURSOR_SEP}{last_checkpoint}"
        out.append(job_event(item, cursor) if kind == 0 else checkpoint_event(item, cursor))
    return out


def job_event(event: Any, cursor: str) -> ProviderEvent:
    """A `metrics` event becomes a loss point (step, loss, valid_loss); any other a message."""
    if event.type == "metrics" and isinstance(event.data, dict):
        d = event.data
        data = {"step": d.get("step"), "loss": d.get("train_loss"),
                "valid_loss": d.get("valid_loss", d.get("full_valid_loss"))}
        return ProviderEvent(cursor, "metrics", event.message, {k: v for k, v in data.items() if v is not None})
    return ProviderEvent(cursor, "message", event.message, {"level": event.level})


def checkpoint_event(checkpoint: Any, cursor: str) -> ProviderEvent:
    m = checkpoint.metrics
    data = {"checkpoint": checkpoint.fine_tuned_model_checkpoint, "step": checkpoint.step_number,
            "loss": m.train_loss, "valid_loss": m.valid_loss if m.valid_loss is not None else m.full_valid_loss}
    return ProviderEvent(cursor, "checkpoint", f"checkpoint {checkpoint.fine_tuned_model_checkpoint} at step "
                         f"{checkpoint.step_number}", {k: v for k, v in data.items() if v is not None})
