"""The activities `distill` calls, bound to one wired Forge: name → (payload dict → result dict)."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel

from forge.bootstrap import Forge
from forge.stages import Stage, stages
from forge.telemetry import job_scope

Activity = Callable[[dict[str, Any]], dict[str, Any]]


def activity_names() -> list[str]:
    """The names the engines register, derived from the stage modules."""
    return sorted(stages())


def build_activities(forge: Forge) -> dict[str, Activity]:
    """Each stage behind the orchestrator's payload contract, with the job id on its spans and log lines."""
    from forge.workflow import canary_loop  # the control loop's step sits beside the stages

    return {**{name: _bind(forge, stage) for name, stage in stages().items()}, **canary_loop.activities(forge)}


def _bind(forge: Forge, stage: Stage) -> Activity:
    def run(payload: dict[str, Any]) -> dict[str, Any]:
        with job_scope(payload["job_id"], name=f"forge.{stage.name}"):
            result = stage.run(forge, stage.request.model_validate(payload))
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    run.__name__ = stage.name
    return run
