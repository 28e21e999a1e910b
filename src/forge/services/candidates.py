"""Evaluating a job's candidate: register the trained student, score it on its domain's benchmark and held-out traces, against the production model,
and decide by the domain's gates. Idempotent per job id: a second call returns the recorded result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from forge.bootstrap import Forge
from forge.domain.errors import AlreadyExists, ConfigError, InvalidInput, ModelNotFound, NotFound
from forge.domain.models import DistillationJob, JobStatus, ModelVersion, new_id, utcnow
from forge.providers.inference import InferenceError
from forge.providers.local_model import local_path
from forge.services.evaluation import EvaluateResult, Limits, evaluate_model, production_model, resolve_model
from forge.services.jobs import JobRef, enter, record, update_job, update_model


class EvaluateRequest(JobRef):
    model_version_id: str | None = None  # a registered version; else one is registered from `result_model`
    result_model: str | None = None  # what training produced: an `ft:` model id, or an adapter folder / file:// URI
    dataset_id: str | None = None  # its valid.jsonl is the held-out split; default: the job's dataset
    baseline_model: str | None = None  # a version id or hosted model; default: the domain's production model
    compare_with_production: bool = True
    max_examples: int = Field(50, ge=0, le=1000)
    max_tasks: int | None = Field(None, ge=1)
    max_tokens: int = Field(1024, ge=16, le=32768)
    judge: bool = True


def evaluate(forge: Forge, request: EvaluateRequest) -> EvaluateResult:
    """Evaluate once per job; permanent problems come back as a result with `error` (and no verdict recorded)."""
    job = forge.storage.jobs.get(request.tenant, request.job_id)
    if job.eval_metrics.get("decision"):
        return EvaluateResult.model_validate(job.eval_metrics)  # a retried or replayed activity evaluates once
    enter(forge, request.tenant, request.job_id, JobStatus.EVALUATING)
    try:
        model = _candidate(forge, request, job)
        baseline = _baseline(forge, request, model)
        limits = Limits(request.max_examples, request.max_tasks, request.max_tokens, request.judge)
        evaluation = evaluate_model(forge, tenant=request.tenant, domain=request.domain, model=model, baseline=baseline,
                                    dataset_id=request.dataset_id or job.dataset_id, limits=limits, job_id=job.job_id,
                                    domain_version=job.domain_version, eval_set_version=job.state.eval_set)
    except (ConfigError, InvalidInput, NotFound) as exc:  # retrying would not help: the job fails with this reason
        record(forge, request.job_id, "evaluation", f"evaluation could not run: {exc}", level="error")
        return EvaluateResult(job_id=request.job_id, domain=request.domain, model=request.model_version_id or
                              request.result_model or "?", decision="fail", reasons=[str(exc)], error=str(exc))
    result = evaluation.result
    # Every task's and example's result, before the verdict is recorded: a recorded verdict always has them.
    forge.storage.evaluations.put_results(request.tenant, job.job_id, {
        "jobId": job.job_id, "domain": request.domain, "model": result.model, "baseline": result.baseline,
        "items": evaluation.items()})
    _note_on_model(forge, model, result)
    job = update_job(forge, request.tenant, request.job_id, lambda j: _keep_first(j, result))
    recorded = EvaluateResult.model_validate(job.eval_metrics)
    record(forge, request.job_id, "evaluation", _headline(recorded),
           level="info" if recorded.decision == "pass" else "warning",
           decision=recorded.decision, model_version_id=recorded.model_version_id, reasons=recorded.reasons)
    return recorded


def _headline(result: EvaluateResult) -> str:
    metrics = result.metrics
    if metrics is None:
        return result.decision
    win = f", win rate {metrics.win_rate:.0%}" if metrics.win_rate is not None else ""
    return f"{result.decision}: score {metrics.score:.1f}{win}; {result.reasons[0] if result.reasons else ''}"


def _keep_first(job: DistillationJob, result: EvaluateResult) -> None:
    if not job.eval_metrics.get("decision"):  # a concurrent run of this activity recorded first: keep its result
        job.eval_metrics = result.model_dump(mode="json")


def _candidate(forge: Forge, request: EvaluateRequest, job: DistillationJob) -> ModelVersion:
    """The version to evaluate; registered (in staging) from the training result the first time, once per job."""
    storage = forge.storage
    if request.model_version_id:
        return storage.models.get(request.tenant, request.domain, request.model_version_id)
    if not request.result_model:
        if job.resulting_model_id:
            return storage.models.get(request.tenant, request.domain, job.resulting_model_id)
        raise InvalidInput(f"Job {job.job_id} names no model to evaluate; its training produced none.")

    def reserve(j: DistillationJob) -> None:
        j.resulting_model_id = j.resulting_model_id or new_id()  # the id first: a retry registers the same version

    version_id = update_job(forge, request.tenant, request.job_id, reserve).resulting_model_id or ""
    try:
        return storage.models.get(request.tenant, request.domain, version_id)
    except ModelNotFound:
        pass
    model = ModelVersion(version_id=version_id, tenant=request.tenant, domain=request.domain, job_id=job.job_id,
                         dataset_id=request.dataset_id or job.dataset_id,
                         base_model=job.settings.base_model or forge.settings.student_base_model,
                         **_artifact(request.result_model))
    if model.adapter_uri:
        model.base_model = _adapter_base(model.adapter_uri) or model.base_model
    try:
        return storage.models.create(model)
    except AlreadyExists:
        return storage.models.get(request.tenant, request.domain, version_id)


def _baseline(forge: Forge, request: EvaluateRequest, model: ModelVersion) -> ModelVersion | str | None:
    """The model to regress against: the one asked for, else the domain's production model (never the candidate)."""
    if request.baseline_model:
        return resolve_model(forge, request.tenant, request.domain, request.baseline_model)
    if not request.compare_with_production:
        return None
    production = production_model(forge, request.tenant, request.domain)
    return None if production is None or production.version_id == model.version_id else production


def _artifact(result_model: str) -> dict[str, str]:
    """An `ft:` or other hosted id is a provider model; a path or URI is an adapter."""
    if "://" in result_model or result_model.startswith(("/", "./", "~")) or Path(result_model).is_dir():
        return {"adapter_uri": result_model}
    return {"provider_model_id": result_model}


def _adapter_base(adapter_uri: str) -> str | None:
    """The local base folder a PEFT adapter names in its adapter_config.json, when it exists here."""
    try:
        config = json.loads((local_path(adapter_uri) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, InferenceError):  # none there, or a remote URI: keep the job's base model
        return None
    base = config.get("base_model_name_or_path")
    return base if isinstance(base, str) and Path(base).is_dir() else None


def _note_on_model(forge: Forge, model: ModelVersion, result: EvaluateResult) -> None:
    """The decision and headline metrics on the model version, under its ETag."""
    metrics = result.metrics
    note = {"jobId": result.job_id, "decision": result.decision, "reasons": result.reasons,
            "score": metrics.score if metrics else None, "categories": metrics.categories if metrics else {},
            "teacherSimilarity": metrics.teacher_similarity if metrics else None,
            "winRate": metrics.win_rate if metrics else None, "baseline": result.baseline,
            "at": utcnow().isoformat()}

    def change(current: ModelVersion) -> None:
        current.metrics["evaluation"] = note

    update_model(forge, model.tenant, model.domain, model.version_id, change)


def results(forge: Forge, tenant: str, job_id: str) -> dict[str, Any]:
    """A job's evaluation: the verdict with its reasons and measures, and every task's and example's result."""
    job = forge.storage.jobs.get(tenant, job_id)  # another tenant's job is as unknown as a missing one
    stored = forge.storage.evaluations.results(tenant, job_id) or {}
    return {"jobId": job.job_id, "domain": job.domain, "domainVersion": job.domain_version,
            "evaluation": job.eval_metrics or None, "items": stored.get("items", [])}
