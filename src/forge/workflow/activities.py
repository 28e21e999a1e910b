"""The activities `distill` calls, bound to one wired Forge: name → (payload dict → result dict)."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel

from forge.bootstrap import Forge
from forge.telemetry import job_scope

Activity = Callable[[dict[str, Any]], dict[str, Any]]


def build_activities(forge: Forge) -> dict[str, Activity]:
    """Each stage behind the orchestrator's payload contract, with the job id on its spans and log lines."""
    from forge.stages import cancel, curate, evaluate, gather, notify, poll, promote, train, upload

    stages: dict[str, tuple[Callable[..., Any], type[BaseModel]]] = {
        "gather": (gather.gather, gather.GatherRequest),
        "curate": (curate.run_curate, curate.CurateActivity),
        "upload": (upload.upload, upload.UploadRequest),
        "train": (train.train, train.TrainRequest),
        "poll": (poll.poll, poll.PollRequest),
        "cancel_training": (cancel.cancel_training, poll.PollRequest),
        "evaluate": (evaluate.run_evaluate, evaluate.EvaluateActivity),
        "promote": (promote.promote, promote.PromoteRequest),
        "notify": (notify.notify, notify.NotifyRequest),
    }
    return {name: _bind(forge, name, fn, model) for name, (fn, model) in stages.items()}


def _bind(forge: Forge, name: str, fn: Callable[..., Any], model: type[BaseModel]) -> Activity:
    def run(payload: dict[str, Any]) -> dict[str, Any]:
        with job_scope(payload["job_id"], name=f"forge.{name}"):
            result = fn(forge, model.model_validate(payload))
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    run.__name__ = name
    return run
