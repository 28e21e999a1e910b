"""Jobs and datasets: upload a dataset, start a job on it (or on new golden traces), follow it, name and tag them."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Iterator

from forge.api.schemas import (DatasetBuilt, DatasetDetail, DatasetStats, DatasetView, Estimate, EstimateIn,
                               FromTraces, JobAccepted, JobEventView, JobIn, JobView, Labels, Page, TriggerIn)
from forge.client.base import Resource, seg
from forge.client.core import Call, body, model, operation
from forge.domain.job_settings import JobSettings

JOBS = "/api/v1/forge/jobs"
DATASETS = "/api/v1/datasets"
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv", "json": "application/json"}


def _settings(settings: JobSettings | dict[str, Any] | None) -> JobSettings:
    return settings if isinstance(settings, JobSettings) else JobSettings.model_validate(settings or {})


def given(**fields: Any) -> dict[str, Any]:
    """The arguments a caller gave (None: left to the server's default)."""
    return {k: v for k, v in fields.items() if v is not None}


def _labels(name: str | None, description: str | None, tags: list[str] | None) -> dict[str, Any]:
    return given(name=name, description=description, tags=tags)


class Jobs(Resource):
    @operation("POST", JOBS)
    def create(self, dataset_id: str, *, base_model: str | None = None, provider: str | None = None,
               domain: str | None = None, settings: JobSettings | dict[str, Any] | None = None,
               name: str | None = None, description: str | None = None,
               tags: list[str] | None = None) -> JobAccepted:
        """Fine-tune on a stored dataset: upload → train → evaluate → promote, the estimate on the job first."""
        request = JobIn(dataset_id=dataset_id, settings=_settings(settings), **given(
            base_model=base_model, provider=provider, domain=domain, name=name, description=description, tags=tags))
        return self._send(Call("POST", JOBS, json=body(request), parse=model(JobAccepted)))

    @operation("POST", f"{JOBS}/trigger")
    def trigger(self, *, domain: str | None = None, provider: str | None = None,
                settings: JobSettings | dict[str, Any] | None = None) -> JobAccepted:
        """Distil the domain's new golden traces (gather → curate → upload → …)."""
        request = TriggerIn(domain=domain, provider=provider, settings=_settings(settings))
        return self._send(Call("POST", f"{JOBS}/trigger", json=body(request), parse=model(JobAccepted)))

    @operation("POST", f"{JOBS}/estimate-cost")
    def estimate_cost(self, *, dataset_id: str | None = None, examples: list[dict[str, Any]] | None = None,
                      model_name: str | None = None, epochs: int | None = None) -> Estimate:
        """What fine-tuning a stored dataset (or these examples) would bill."""
        request = EstimateIn(**given(dataset_id=dataset_id, examples=examples, model=model_name, epochs=epochs))
        return self._send(Call("POST", f"{JOBS}/estimate-cost", json=body(request), parse=model(Estimate)))

    @operation("GET", JOBS)
    def list(self, *, limit: int | None = None, continuation: str | None = None) -> Page[JobView]:
        return self._send(Call("GET", JOBS, {"limit": limit, "continuation": continuation},
                               parse=model(Page[JobView])))

    def iter(self, *, page_size: int = 100) -> Iterator[JobView]:
        """Every job, page after page."""
        return self._pages(Call("GET", JOBS, {"limit": page_size}), JobView.model_validate)

    @operation("GET", f"{JOBS}/{{job_id}}")
    def get(self, job_id: str) -> JobView:
        return self._send(Call("GET", f"{JOBS}/{seg(job_id)}", parse=model(JobView)))

    @operation("PUT", f"{JOBS}/{{job_id}}")
    def update(self, job_id: str, *, name: str | None = None, description: str | None = None,
               tags: list[str] | None = None) -> JobView:
        """Name, describe or tag the job (only what is given changes)."""
        request = Labels(**_labels(name, description, tags))
        return self._send(Call("PUT", f"{JOBS}/{seg(job_id)}", json=body(request), parse=model(JobView)))

    @operation("POST", f"{JOBS}/{{job_id}}/cancel")
    def cancel(self, job_id: str) -> JobView:
        return self._send(Call("POST", f"{JOBS}/{seg(job_id)}/cancel", parse=model(JobView)))

    @operation("POST", f"{JOBS}/{{job_id}}/sync")
    def sync(self, job_id: str) -> JobView:
        return self._send(Call("POST", f"{JOBS}/{seg(job_id)}/sync", parse=model(JobView)))

    @operation("GET", f"{JOBS}/{{job_id}}/events")
    def events(self, job_id: str, *, after: int = 0, limit: int | None = None,
               continuation: str | None = None) -> Page[JobEventView]:
        return self._send(Call("GET", f"{JOBS}/{seg(job_id)}/events",
                               {"after": after, "limit": limit, "continuation": continuation},
                               parse=model(Page[JobEventView])))

    def iter_events(self, job_id: str, *, after: int = 0) -> Iterator[JobEventView]:
        """The job's events after `after`, page after page."""
        return self._pages(Call("GET", f"{JOBS}/{seg(job_id)}/events", {"after": after, "limit": 1000}),
                           JobEventView.model_validate)

    @operation("GET", f"{JOBS}/{{job_id}}/evaluation")
    def evaluation(self, job_id: str) -> dict[str, Any]:
        """The verdict, its reasons and each task's or held-out example's score."""
        return self._send(Call("GET", f"{JOBS}/{seg(job_id)}/evaluation"))


class Datasets(Resource):
    @operation("POST", DATASETS)
    def upload(self, file: str | Path | bytes | IO[bytes], *, format: str = "jsonl", domain: str | None = None,
               valid_share: float | None = None, seed: int | None = None) -> DatasetBuilt:
        """Upload examples (chat JSONL, CSV with prompt/response, or a JSON array): validated, scrubbed of PII,
        deduplicated, split and stored as a new dataset."""
        content = _read(file)
        return self._send(Call("POST", DATASETS, {"format": format, "domain": domain, "valid_share": valid_share,
                                                  "seed": seed}, content=content,
                               headers={"Content-Type": MEDIA.get(format, "application/octet-stream")},
                               parse=model(DatasetBuilt)))

    @operation("POST", f"{DATASETS}/check")
    def check(self, file: str | Path | bytes | IO[bytes], *, format: str = "jsonl", domain: str | None = None,
              valid_share: float | None = None, seed: int | None = None) -> dict[str, Any]:
        """What uploading this file would keep and drop, each dropped line with its reason; nothing is stored."""
        return self._send(Call("POST", f"{DATASETS}/check", {"format": format, "domain": domain,
                                                             "valid_share": valid_share, "seed": seed},
                               content=_read(file), headers={"Content-Type": MEDIA.get(format, "text/plain")}))

    @operation("POST", f"{DATASETS}/import-from-traces")
    def import_from_traces(self, *, domain: str | None = None, since: Any = None, until: Any = None,
                           max_examples: int | None = None, valid_share: float | None = None,
                           seed: int | None = None, job_id: str | None = None) -> DatasetBuilt:
        """Curate the domain's golden traces into a new dataset version."""
        request = FromTraces(**given(domain=domain, since=since, until=until, max_examples=max_examples,
                                     valid_share=valid_share, seed=seed, job_id=job_id))
        return self._send(Call("POST", f"{DATASETS}/import-from-traces", json=body(request),
                               parse=model(DatasetBuilt)))

    @operation("GET", DATASETS)
    def list(self, *, include_deleted: bool = False, limit: int | None = None,
             continuation: str | None = None) -> Page[DatasetView]:
        return self._send(Call("GET", DATASETS, {"include_deleted": include_deleted, "limit": limit,
                                                 "continuation": continuation}, parse=model(Page[DatasetView])))

    def iter(self, *, include_deleted: bool = False, page_size: int = 100) -> Iterator[DatasetView]:
        return self._pages(Call("GET", DATASETS, {"include_deleted": include_deleted, "limit": page_size}),
                           DatasetView.model_validate)

    @operation("GET", f"{DATASETS}/stats")
    def stats(self) -> DatasetStats:
        return self._send(Call("GET", f"{DATASETS}/stats", parse=model(DatasetStats)))

    @operation("GET", f"{DATASETS}/{{dataset_id}}")
    def get(self, dataset_id: str) -> DatasetDetail:
        return self._send(Call("GET", f"{DATASETS}/{seg(dataset_id)}", parse=model(DatasetDetail)))

    @operation("PUT", f"{DATASETS}/{{dataset_id}}")
    def update(self, dataset_id: str, *, name: str | None = None, description: str | None = None,
               tags: list[str] | None = None) -> DatasetView:
        request = Labels(**_labels(name, description, tags))
        return self._send(Call("PUT", f"{DATASETS}/{seg(dataset_id)}", json=body(request), parse=model(DatasetView)))

    @operation("POST", f"{DATASETS}/{{dataset_id}}/validate")
    def validate(self, dataset_id: str) -> dict[str, Any]:
        return self._send(Call("POST", f"{DATASETS}/{seg(dataset_id)}/validate"))

    @operation("GET", f"{DATASETS}/{{dataset_id}}/rejects")
    def rejects(self, dataset_id: str, *, limit: int | None = None) -> dict[str, Any]:
        return self._send(Call("GET", f"{DATASETS}/{seg(dataset_id)}/rejects", {"limit": limit}))

    @operation("DELETE", f"{DATASETS}/{{dataset_id}}")
    def delete(self, dataset_id: str) -> DatasetView:
        return self._send(Call("DELETE", f"{DATASETS}/{seg(dataset_id)}", parse=model(DatasetView)))


def _read(file: str | Path | bytes | IO[bytes]) -> bytes:
    if isinstance(file, bytes):
        return file
    if isinstance(file, (str, Path)):
        return Path(file).read_bytes()
    return file.read()
