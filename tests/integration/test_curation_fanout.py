"""Curation fanned out over shards: `distill` on durabletask's engine, and the shard and reduce stages against
Azurite giving the dataset one process gives, with a failing shard retried alone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from forge.bootstrap import bootstrap
from forge.domain.job_settings import JobSettings
from forge.domain.models import DistillationJob, Trace, new_id
from forge.domain.traces import new_trace_id
from forge.services.curation import CurateRequest, curate, dataset_id_for
from forge.stages import curate as curate_stage, curate_shard
from tests.factories import varied_record
from tests.integration.test_orchestration import Script, output, run  # noqa: F401 — the engine fixture


class FanOut(Script):
    """`curate` plans four shards two at a time, then reduces; shard 2 fails twice before it maps."""

    def __init__(self) -> None:
        super().__init__(train_polls=1)
        self.reduced_with: list[str] | None = None
        self.mapped: list[int] = []
        self.flaky_shard = 2

    def curate(self, p):
        if p.get("parts") is None:
            return {"fan_out": {"shards": [0, 1, 2, None], "cutoff": None, "parallel": 2}}
        self.reduced_with = p["parts"]
        return {"dataset_id": "ds1"}

    def curate_shard(self, p):
        with self.lock:
            if p["shard"] == self.flaky_shard and self.calls["curate_shard_2"] < 2:
                self.calls["curate_shard_2"] += 1
                raise ConnectionError("shard 2: storage timed out")
            self.mapped.append(p["shard"])
        return {"part": f"part-{p['shard']}"}


def test_a_fanned_out_curation_maps_every_shard_retrying_a_failed_one_alone_then_reduces_their_parts(run):  # noqa: F811
    script = FanOut()
    client, job = run(script)
    assert output(client, job)["status"] == "COMPLETED"
    assert script.reduced_with == ["part-0", "part-1", "part-2", "part-None"]  # each part once, in shard order
    assert sorted(script.mapped, key=str) == [0, 1, 2, None]  # a retry repeats its own shard only
    assert script.calls["curate_shard"] == 6 and script.calls["curate"] == 2


def _job(forge, tenant: str, job_id: str) -> DistillationJob:
    job = DistillationJob(job_id=job_id, tenant=tenant, domain="coding", provider="local",
                          settings=JobSettings(valid_share=0.25, seed=5))
    forge.storage.jobs.create(job)
    return job


def test_the_shard_activities_and_the_reduce_store_the_dataset_one_process_builds(forge, storage, tenant):
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    traces = []
    for i in range(60):
        record = varied_record(i % 45, conversation_id=f"c{i % 45}")  # 15 exact duplicates across shards
        at = start + timedelta(seconds=i)
        traces.append(Trace(id=new_trace_id("coding", at), tenant=tenant, domain="coding", created_at=at,
                            messages=record["messages"][:-1], response=record["messages"][-1], score=95))
    storage.traces.add(traces)
    serial = curate(forge, CurateRequest(tenant=tenant, domain="coding", valid_share=0.25, seed=5, workers=1))

    azure = bootstrap(forge.settings.model_copy(update={"curate_fanout": 2}), storage=storage)
    job = _job(azure, tenant, new_id())
    base = {"tenant": tenant, "domain": "coding", "job_id": job.job_id, "provider": "local"}
    plan = curate_stage.run(azure, curate_stage.Request(**base))["fan_out"]
    assert plan["shards"] == [*range(azure.settings.trace_shards), None] and plan["parallel"] == 2
    parts = [curate_shard.run(azure, curate_shard.Request(**base, shard=s))["part"] for s in plan["shards"]]
    again = curate_shard.run(azure, curate_shard.Request(**base, shard=plan["shards"][3]))["part"]  # a retry
    assert again == parts[3]
    reduced = curate_stage.run(azure, curate_stage.Request(**base, parts=parts))
    assert reduced["sha256"] == serial.sha256 and reduced["train"] == serial.train
    record = forge.storage.datasets.get(tenant, dataset_id_for(job.job_id))
    assert record.dropped == serial.dropped and record.counts["read"] == 60
    container = storage.account.blobs.get_container_client("curation-parts")
    assert not list(container.list_blobs(name_starts_with=f"{tenant}/"))  # the parts go once the dataset is stored
    rejects = list(forge.storage.datasets.read_file(tenant, record.dataset_id, "rejects"))
    assert [r["reason"] for r in rejects].count("duplicate") == 15
    assert all(set(r) == {"reason", "detail", "id"} for r in rejects)  # named by id, never by content
