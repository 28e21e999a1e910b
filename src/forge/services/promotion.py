"""Promotion: a student that passed its gates goes live (canary, or production when the domain has none yet);
one that failed is archived with the reasons; one whose evaluation waits (a judge the domain requires did not run)
is held in staging, routed nowhere. Idempotent per job id."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, JobEvent, JobStatus, ModelStage, ModelVersion, utcnow
from forge.services import adapters
from forge.services import models as registry
from forge.services.jobs import JobRef, enter, update_job, update_model

PromotionOutcome = Literal["production", "canary", "archived", "held"]


class PromoteRequest(JobRef):
    model_version_id: str
    decision: Literal["pass", "fail", "wait"]
    reasons: list[str] = Field(default_factory=list)


class PromoteResult(BaseModel):
    job_id: str
    model_version_id: str
    outcome: PromotionOutcome
    canary_percent: float | None = None
    replaced: str | None = None  # the production model a new production model took over from
    reasons: list[str] = Field(default_factory=list)


def promote(forge: Forge, request: PromoteRequest) -> PromoteResult:
    """Apply the evaluation's decision to the model and the route, and record it on the job."""
    storage = forge.storage
    job = storage.jobs.get(request.tenant, request.job_id)
    done = job.promotion
    if done.get("model_version_id") == request.model_version_id and done.get("outcome"):
        return PromoteResult.model_validate(done)  # a replayed or retried activity changes nothing twice
    job = enter(forge, request.tenant, request.job_id, JobStatus.PROMOTING)  # the stage the job shows while here
    model = storage.models.get(request.tenant, request.domain, request.model_version_id)
    route = storage.routes.get(request.tenant, request.domain)
    replaced = None
    if request.decision == "wait":
        outcome: PromotionOutcome = "held"  # stays in staging: `forge models promote` once a judged evaluation passes
    elif request.decision == "fail":
        outcome = "archived"
        if model.stage != ModelStage.ARCHIVED:
            registry.archive_model(storage, request.tenant, model.version_id)
    elif model.stage == ModelStage.PRODUCTION or (model.stage == ModelStage.STAGING and not route.production_model):
        # The first student of a domain goes straight to production: the gates already weighed it against the
        # teacher, there is no student to regress from, and a rollback hands the domain back to the teacher.
        outcome = "production"
        replaced = route.production_model if route.production_model != model.version_id else None
        registry.promote_model(forge, request.tenant, model.version_id, to=ModelStage.PRODUCTION)
    else:
        outcome = "canary"
        change = registry.promote_model(forge, request.tenant, model.version_id, to=ModelStage.CANDIDATE)
        route = change.route
    if outcome in ("held", "archived"):  # evaluation loaded it and no route names it: off the LoRA server
        adapters.release(forge.lora_server(), storage, model)
    result = PromoteResult(
        job_id=job.job_id, model_version_id=model.version_id, outcome=outcome, replaced=replaced,
        canary_percent=route.canary_percent if outcome == "canary" else None, reasons=request.reasons,
    )
    _note_on_model(forge, request, result)
    _record_on_job(forge, job, result)
    return result


def _note_on_model(forge: Forge, request: PromoteRequest, result: PromoteResult) -> None:
    """The decision and its outcome on the model version, under its ETag (as evaluate notes its own)."""
    note = {"jobId": request.job_id, "decision": request.decision, "reasons": request.reasons,
            "outcome": result.outcome, "at": utcnow().isoformat()}

    def change(current: ModelVersion) -> None:
        current.metrics["promotion"] = note

    update_model(forge, request.tenant, request.domain, request.model_version_id, change)


def _record_on_job(forge: Forge, job: DistillationJob, result: PromoteResult) -> None:
    def change(current: DistillationJob) -> None:
        current.promotion = result.model_dump(mode="json")
        current.resulting_model_id = current.resulting_model_id or result.model_version_id

    update_job(forge, job.tenant, job.job_id, change)
    where = {"production": "now serves in production", "archived": "was archived",
             "held": "is held in staging, waiting for an evaluation with a judge",
             "canary": f"is the canary at {result.canary_percent or 0:g}%"}[result.outcome]
    forge.storage.events.append(job.job_id, JobEvent(
        job_id=job.job_id, type="promotion", level="info" if result.outcome in ("production", "canary") else
        "warning",
        message=f"model {result.model_version_id} {where}" + (f": {'; '.join(result.reasons)}" if result.reasons
                                                              else ""),
        data=result.model_dump(mode="json"),
    ))
