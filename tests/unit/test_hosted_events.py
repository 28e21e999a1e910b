"""Hosted fine-tuning events and checkpoints (the SDK's own types) as ProviderEvents behind one cursor."""

from openai.types.fine_tuning import FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from forge.providers.hosted_events import merge, newer, split_cursor


def event(n: int, at: int, type: str = "message", data: dict | None = None) -> FineTuningJobEvent:
    return FineTuningJobEvent(id=f"ev{n}", created_at=at, level="info", message=f"event {n}",
                              object="fine_tuning.job.event", type=type, data=data or {})


def checkpoint(n: int, at: int, step: int) -> FineTuningJobCheckpoint:
    return FineTuningJobCheckpoint(id=f"ck{n}", created_at=at, fine_tuned_model_checkpoint=f"ft:m:ckpt-{step}",
                                   fine_tuning_job_id="ftjob-1", object="fine_tuning.job.checkpoint",
                                   step_number=step, metrics={"train_loss": 0.5, "full_valid_loss": 0.6})


def test_a_newest_first_listing_is_read_down_to_the_cursor_and_returned_oldest_first():
    listing = [event(4, 40), event(3, 30), event(2, 20), event(1, 10)]
    assert [e.id for e in newer(listing, "ev2")] == ["ev3", "ev4"]
    assert [e.id for e in newer(listing, "")] == ["ev1", "ev2", "ev3", "ev4"]
    assert newer(listing, "ev4") == []


def test_events_and_checkpoints_interleave_by_time_each_carrying_the_cursor_after_it():
    merged = merge([event(1, 10), event(2, 30, "metrics", {"step": 2, "train_loss": 0.9, "full_valid_loss": 1.1})],
                   [checkpoint(1, 20, 1)], "ev0", "")
    assert [m.id for m in merged] == ["ev1|", "ev1|ck1", "ev2|ck1"]
    assert [m.type for m in merged] == ["message", "checkpoint", "metrics"]
    assert merged[1].data == {"checkpoint": "ft:m:ckpt-1", "step": 1, "loss": 0.5, "valid_loss": 0.6}
    assert merged[2].data == {"step": 2, "loss": 0.9, "valid_loss": 1.1}
    assert split_cursor(merged[-1].id) == ("ev2", "ck1") and split_cursor(None) == ("", "")
