"""The curate stage against Azurite: versions and lineage, idempotency per job, caps, and grading over HTTP."""

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI

from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.errors import DatasetInvalid
from forge.domain.models import new_id
from forge.domain.traces import parse_record
from forge.services.curation import CurateRequest, curate
from tests.factories import varied_record

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def forge(settings, storage):
    return bootstrap(settings, storage=storage)


def store(forge, tenant, records, start=START):
    traces = [parse_record(r, tenant=tenant, domain="coding", source="test", now=start + timedelta(minutes=i))
              for i, r in enumerate(records)]
    forge.storage.traces.add(traces)
    return traces


def test_stored_traces_become_a_versioned_dataset_and_a_retried_job_finds_its_own(forge, tenant):
    store(forge, tenant, [varied_record(i) for i in range(14)] + [varied_record(90, score=10)])
    job_a, job_b = new_id(), new_id()
    first = curate(forge, CurateRequest(tenant=tenant, domain="coding", job_id=job_a, valid_share=0.2))
    assert (first.version, first.parent_id, first.reused) == (1, None, False)
    assert first.train + first.valid == 14 and first.train >= 10 and first.dropped == {"below_min_score": 1}
    again = curate(forge, CurateRequest(tenant=tenant, domain="coding", job_id=job_a, valid_share=0.2))
    assert again.reused and (again.dataset_id, again.sha256) == (first.dataset_id, first.sha256)
    second = curate(forge, CurateRequest(tenant=tenant, domain="coding", job_id=job_b, valid_share=0.2))
    assert (second.version, second.parent_id) == (2, first.dataset_id)
    assert second.sha256 == first.sha256  # the same traces and seed: the same content
    record = forge.storage.datasets.get(tenant, first.dataset_id)
    assert record.job_id == job_a and set(record.blobs) == {"train", "valid", "rejects", "stats"}
    stats = json.loads(forge.storage.datasets.read_bytes(tenant, first.dataset_id, "stats.json"))
    assert stats["counts"]["train"] == first.train and stats["estimate"]["billed_tokens"] == first.billed_tokens
    rejects = list(forge.storage.datasets.read_file(tenant, first.dataset_id, "rejects"))
    assert [r["reason"] for r in rejects] == ["below_min_score"] and rejects[0]["id"].startswith("coding.")
    assert len(list(forge.storage.datasets.scan(tenant, domain="coding"))) == 2


def test_too_few_examples_is_dataset_invalid_saying_how_many_more_and_stores_nothing(forge, tenant):
    store(forge, tenant, [varied_record(i) for i in range(7)])
    with pytest.raises(DatasetInvalid, match=r"Only 7 training examples.*3 more are needed"):
        curate(forge, CurateRequest(tenant=tenant, domain="coding", valid_share=0))
    assert list(forge.storage.datasets.scan(tenant)) == []


def test_a_cap_keeps_the_newest_golden_traces(forge, tenant):
    store(forge, tenant, [varied_record(i) for i in range(16)])
    result = curate(forge, CurateRequest(tenant=tenant, domain="coding", max_examples=10, valid_share=0))
    assert result.train == 10 and result.dropped == {}
    train = list(forge.storage.datasets.read_file(tenant, result.dataset_id, "train"))
    assert sorted(int(e["messages"][1]["content"].split()[1][:-1]) for e in train) == list(range(6, 16))


def grader_app(calls: list[str]) -> FastAPI:
    """A contract fake of an OpenAI-compatible endpoint: answers 'Score: 96' for answers that say 'excellent'."""
    app = FastAPI()
    lock = threading.Lock()

    @app.post("/v1/chat/completions")
    def complete(body: dict) -> dict:
        answer = body["messages"][-1]["content"]
        with lock:
            calls.append(answer)
            if len(calls) == 1:  # one transient failure: the client must retry it
                from fastapi import HTTPException
                raise HTTPException(503, "busy")
        score = 96 if "excellent" in answer else 35
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"Reasons.\nScore: {score}"}}]}

    return app


def test_unscored_traces_are_graded_once_over_http_and_the_score_is_stored(settings, storage, tenant):
    calls: list[str] = []
    with serving(grader_app(calls)) as url:
        forge = bootstrap(settings.model_copy(update={"grader_model": "judge", "grader_base_url": f"{url}/v1"}),
                          storage=storage)
        good = [varied_record(i, score=None) for i in range(12)]
        for record in good:
            record["messages"][1]["content"] += " An excellent answer."
        traces = store(forge, tenant, good + [varied_record(50, score=None), varied_record(51)])
        result = curate(forge, CurateRequest(tenant=tenant, domain="coding", valid_share=0))
        graded = len(calls)
        assert result.counts["graded"] == 13 and graded == 14  # 13 unscored, one answer retried after a 503
        assert result.train == 13 and result.dropped == {"below_min_score": 1}
        assert forge.storage.traces.get(tenant, traces[0].id).score == 96
        assert forge.storage.traces.get(tenant, traces[12].id).score == 35
        curate(forge, CurateRequest(tenant=tenant, domain="coding", valid_share=0))
        assert len(calls) == graded  # every trace now has its score: none is graded twice


def test_the_activity_notes_the_dataset_on_the_job_and_too_few_examples_is_a_permanent_error(forge, tenant):
    from forge.stages.curate import Request as CurateActivity
    from forge.stages.curate import run as run_curate
    from tests.factories import make_job

    job = forge.storage.jobs.create(make_job(tenant, settings={"valid_share": 0}))
    store(forge, tenant, [varied_record(i) for i in range(11)])
    payload = CurateActivity(tenant=tenant, domain="coding", job_id=job.job_id, provider="local",
                             until=datetime.now(timezone.utc).isoformat())
    first = run_curate(forge, payload)
    assert first["dataset_id"] == f"ds-{job.job_id}" and first["train"] == 11
    recorded = [(e.level, e.message) for e in forge.storage.events.list(job.job_id).items]
    assert recorded[0][0] == "info" and [level for level, _ in recorded[1:]] == ["warning", "warning"]
    assert run_curate(forge, payload) == first
    saved = forge.storage.jobs.get(tenant, job.job_id)
    assert (saved.dataset_id, saved.dataset_size, saved.status.value) == (first["dataset_id"], 11, "CURATING")
    estimate = forge.storage.datasets.get(tenant, first["dataset_id"]).estimate
    assert estimate["billed_tokens"] == first["billed_tokens"] > 0 and estimate["examples"] == 11
    assert len(forge.storage.events.list(job.job_id).items) == len(recorded)  # the retry added no event
    empty = forge.storage.jobs.create(make_job(tenant + "x"))
    failed = run_curate(forge, CurateActivity(tenant=tenant + "x", domain="coding", job_id=empty.job_id))
    assert "10 more are needed" in failed["error"]
