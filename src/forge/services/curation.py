"""Curating a dataset: golden traces (or a file) → a validated, deduplicated, PII-free dataset in Blob, with
lineage. Idempotent per job.

`curate(forge, CurateRequest) -> CurateResult` is the use case the `curate` stage, the CLI and the API call; the
engine that does the work is `forge.curation`.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from forge import tokens
from forge.bootstrap import Forge
from forge.domain.dataset_stats import MIN_EXAMPLES, too_few_message
from forge.domain.errors import AlreadyExists, DatasetInvalid
from forge.domain.models import Dataset, is_golden, new_id
from forge.domain.traces import split_trace_id
from forge.curation import sources as trace_sources
from forge.curation import parallel
from forge.curation.curator import FILES, Curator, CurationOptions, CurationOutcome, newest_cutoff
from forge.services import domains, evalsets, scaled_curation
from forge.services.pricing import grader_for, price_table


class CurateRequest(BaseModel):
    """What to build from: a tenant's domain, the window of traces (until = the job's cut-off), how to split."""

    tenant: str
    domain: str
    job_id: str | None = Field(None, description="Makes the build idempotent: the job's dataset is built once.")
    since: datetime | None = None
    until: datetime | None = None
    max_examples: int | None = Field(None, ge=MIN_EXAMPLES, description="Keep at most this many, newest first.")
    valid_share: float = Field(0.1, ge=0, le=0.5)
    seed: int = 42
    source_file: str | None = Field(None, description="Read this JSONL file instead of Table storage.")
    out_dir: str | None = Field(None, description="Also keep train/valid/rejects/stats here.")
    domain_version: int | None = Field(None, description="The tenant's domain version to curate by (a job's).")
    workers: int | None = Field(None, ge=1, le=256, description="Processes to map on; unset: FORGE_CURATE_WORKERS, "
                                "else every core.")
    parts: list[str] | None = Field(None, description="Parts the shard activities mapped: only the reduce is left.")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC, as every stored time is."""
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class CurateResult(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)  # the API speaks camelCase

    dataset_id: str
    version: int
    parent_id: str | None
    sha256: str
    counts: dict[str, int]
    dropped: dict[str, int]
    pii: dict[str, int]
    train: int
    valid: int
    billed_tokens: int
    epochs: int
    estimated_cost: float | None
    currency: str
    warnings: list[str]
    reused: bool = False  # True when the job's dataset already existed and was returned as is
    eval_set_version: int | None = None  # the eval set carved before this build (its conversations left out)


def dataset_id_for(job_id: str) -> str:
    """The dataset a job builds has an id derived from the job's, so a retried build finds it."""
    return f"ds-{job_id}"


def curate(forge: Forge, request: CurateRequest) -> CurateResult:
    """Build, store and record one dataset version; DatasetInvalid (nothing stored) when too few examples survive."""
    found = domains.resolve(forge, request.tenant, request.domain, request.domain_version)
    dataset_id = dataset_id_for(request.job_id) if request.job_id else new_id()
    if request.job_id:
        existing = forge.storage.datasets.find(request.tenant, dataset_id)
        if existing is not None:
            return result_of(existing, reused=True)
    source = _source(forge, request)
    cutoff = _cutoff(forge, request, source)
    if cutoff and not request.source_file:  # Table rows sort by time: older ones are not even read
        source = trace_sources.stored(forge.storage, request.tenant, request.domain, cutoff, request.until)
    carved = _carve(forge, request, found)
    options = _options(forge, request, found)
    with tempfile.TemporaryDirectory(prefix="forge-curate-") as scratch:
        work = Path(request.out_dir) if request.out_dir else Path(scratch)
        workers = request.workers or forge.settings.curate_workers or parallel.default_workers()
        if request.parts is not None:
            outcome = scaled_curation.reduce_parts(forge.storage, options, request.parts, work)
        elif workers > 1:
            outcome = scaled_curation.build_parallel(
                forge.settings, options, work, tenant=request.tenant, domain=request.domain,
                source_file=request.source_file, since=request.since, until=request.until, cutoff=cutoff,
                workers=workers)
        else:
            outcome = build(forge, options, source, work, cutoff=cutoff,
                            store_scores=request.source_file is None, tenant=request.tenant)
        if outcome.stats.train < MIN_EXAMPLES:
            raise DatasetInvalid(too_few_message(outcome.stats.train))
        result = _store(forge, request, dataset_id, outcome, work)
    if request.parts:
        scaled_curation.delete_parts(forge.storage, request.parts)  # only once the dataset is stored
    result.eval_set_version = carved.version if carved else None
    return result


def _carve(forge: Forge, request: CurateRequest, found: Any) -> Any:
    """Before anything trains: the eval set takes its share of the new traffic first (once per job)."""
    if request.job_id and not request.source_file and not domains.has_tasks(forge, request.tenant, found,
                                                                              request.domain):
        return evalsets.ensure(forge, request.tenant, request.domain, found.config, until=request.until,
                               job_id=request.job_id)
    return None


def _options(forge: Forge, request: CurateRequest, found: Any) -> CurationOptions:
    return CurationOptions(
        domain=found.config, model=forge.settings.student_base_model,
        min_score=forge.settings.min_score, valid_share=request.valid_share, seed=request.seed,
        max_examples=request.max_examples, prices=price_table(forge.settings),
        holdout=evalsets.held_out_groups(forge, request.tenant, request.domain),
    )


def plan_shards(forge: Forge, request: CurateRequest) -> dict[str, Any] | None:
    """For a fan-out over shards: what each shard activity reads (None when the job's dataset exists already).
    The eval set is carved here, before any shard is mapped, so every shard leaves the same conversations out."""
    found = domains.resolve(forge, request.tenant, request.domain, request.domain_version)
    if request.job_id and forge.storage.datasets.find(request.tenant, dataset_id_for(request.job_id)) is not None:
        return None
    _carve(forge, request, found)
    cutoff = _cutoff(forge, request, _source(forge, request))
    shards: list[int | None] = [*range(forge.settings.trace_shards), None]
    return {"shards": shards, "cutoff": cutoff.isoformat() if cutoff else None}


def curate_shard(forge: Forge, request: CurateRequest, shard: int | None, cutoff: datetime | None) -> str:
    """The map phase of one shard of a job's traces, stored as a part in Blob; returns the part's name."""
    if not request.job_id:
        raise ValueError("a shard is mapped for a job: give its job_id")
    found = domains.resolve(forge, request.tenant, request.domain, request.domain_version)
    return scaled_curation.map_shard(forge.settings, forge.storage, _options(forge, request, found),
                                     tenant=request.tenant, domain=request.domain, job_id=request.job_id,
                                     shard=shard, since=cutoff or request.since, until=request.until, cutoff=cutoff)


def build(forge: Forge, options: CurationOptions, source: trace_sources.Source, work: Path, *, cutoff: datetime | None,
          store_scores: bool, tenant: str) -> CurationOutcome:
    """Run the streaming core into `work`: train/valid/rejects JSONL and stats.json."""
    count = tokens.counter_for_model(options.model, home=forge.settings.home, node_modules=forge.settings.node_modules)
    grader = grader_for(forge.settings, options.domain)
    on_graded = (lambda trace, score: forge.storage.traces.set_score(tenant, trace.id, score)) if store_scores else None
    try:
        curator = Curator(options, work, count=count,
                          grade=grader.grade if grader else None, on_graded=on_graded)
        outcome = curator.run(source(), cutoff)
    finally:
        if grader is not None:
            grader.close()
    (work / "stats.json").write_text(json.dumps(outcome.stats_json(options), indent=2), encoding="utf-8")
    return outcome


def _source(forge: Forge, request: CurateRequest) -> trace_sources.Source:
    if request.source_file:
        if not Path(request.source_file).is_file():
            raise DatasetInvalid(f"No file {request.source_file}; give the path of a JSONL file of traces.")
        return trace_sources.from_file(request.source_file, tenant=request.tenant, domain=request.domain,
                                       since=request.since, until=request.until)
    return trace_sources.stored(forge.storage, request.tenant, request.domain, request.since, request.until)


def _cutoff(forge: Forge, request: CurateRequest, source: trace_sources.Source) -> datetime | None:
    """For a capped build, the time of the cap-th newest golden trace (read without the trace bodies)."""
    if not request.max_examples:
        return None
    min_score = forge.settings.min_score
    if request.source_file:
        times: Iterator[datetime] = (i.trace.created_at for i in source()
                                     if i.trace is not None and i.trace.is_golden(min_score))
    else:
        stamps = forge.storage.traces.stamps(request.tenant, domain=request.domain, since=request.since,
                                             until=request.until)
        times = (split_trace_id(tid)[1] for tid, score, feedback in stamps if is_golden(score, feedback, min_score))
    return newest_cutoff(times, request.max_examples)


def _store(forge: Forge, request: CurateRequest, dataset_id: str, outcome: CurationOutcome, work: Path) -> CurateResult:
    return store(forge, tenant=request.tenant, domain=request.domain, dataset_id=dataset_id, outcome=outcome,
                 work=work, job_id=request.job_id, source="file" if request.source_file else "traces")


def store(forge: Forge, *, tenant: str, domain: str, dataset_id: str, outcome: CurationOutcome, work: Path,
          job_id: str | None = None, source: str = "traces") -> CurateResult:
    """Upload the four files, then write the record (next version, parent = the domain's latest): a record only
    ever points at complete files."""
    blobs = {}
    for name in (*FILES, "stats"):
        filename = f"{name}.json" if name == "stats" else f"{name}.jsonl"
        with open(work / filename, "rb") as data:
            blobs[name] = forge.storage.datasets.upload(tenant, dataset_id, filename, data)
    stats = outcome.stats
    dataset = Dataset(
        dataset_id=dataset_id, tenant=tenant, domain=domain, job_id=job_id, sha256=outcome.sha256,
        counts=stats.counts(), dropped=dict(stats.dropped),
        token_stats={**stats.tokens.as_dict(), "train_tokens": stats.train_tokens[0]}, blobs=blobs,
        source=source, pii=dict(stats.pii), estimate=outcome.estimate.model_dump(mode="json"),
        warnings=stats.warnings,
    )
    try:
        dataset = forge.storage.datasets.create_next_version(dataset)
    except AlreadyExists:  # a concurrent retry of the same job finished first: its record stands
        return result_of(forge.storage.datasets.get(tenant, dataset_id), reused=True)
    return result_of(dataset)


def result_of(dataset: Dataset, *, reused: bool = False) -> CurateResult:
    estimate: dict[str, Any] = dataset.estimate
    return CurateResult(
        dataset_id=dataset.dataset_id, version=dataset.version, parent_id=dataset.parent_id,
        sha256=dataset.sha256 or "", counts=dataset.counts, dropped=dataset.dropped, pii=dataset.pii,
        train=dataset.counts.get("train", 0), valid=dataset.counts.get("valid", 0),
        billed_tokens=estimate.get("billed_tokens", 0), epochs=estimate.get("epochs", 0),
        estimated_cost=estimate.get("cost"), currency=estimate.get("currency", "USD"),
        warnings=dataset.warnings, reused=reused,
    )
