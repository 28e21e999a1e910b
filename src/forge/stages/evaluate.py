"""evaluate: score the trained student on its domain's benchmark and held-out traces, against the production model,
and decide by the domain's gates (once per job)."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import candidates

NAME = "evaluate"
Request = candidates.EvaluateRequest  # tenant, domain, job_id, dataset_id, result_model


def run(forge: Forge, request: Request) -> dict[str, Any]:
    """The result as JSON (`model_version_id`, `decision`, `reasons`, or `error`)."""
    return candidates.evaluate(forge, request).model_dump(mode="json")
