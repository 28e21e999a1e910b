"""The most common way to start, through the SDK alone against a running Forge: upload a dataset, fine-tune on it with
the local provider (a tiny base model, as `forge demo` builds one), follow the job to its promotion, and deploy the
model to another domain's route, where the router then answers with it."""

from __future__ import annotations

import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.client import AsyncForgeClient, ForgeClient
from forge.config import load_settings
from forge.demo import seed
from forge.storage import Storage, StorageAccount
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations
from tests.browser.harness import RUN_HYPERPARAMETERS

@pytest.fixture
def served(azurite, tmp_path, tenant):
    """`forge serve` with the local provider over a tiny base model the operator named, and a tenant's key."""
    from forge_trainer import tiny

    home = tmp_path / "home"
    examples = seed.write(home / "examples.jsonl", count=240)
    base = home / "base"
    tiny.build(base, seed=0, corpus_file=examples)
    settings = load_settings(storage_connection=azurite.connection_string, home=home, student_base_model=str(base),
                             provider="local", allowed_providers="local")
    forge = bootstrap(settings, storage=Storage.open(StorageAccount.from_connection_string(azurite.connection_string)))
    key = forge.storage.keys.create(tenant, "sdk")[0]
    with LocalEngine(build_activities(forge)) as engine:
        app = create_app(forge, orchestrations=LocalOrchestrations(EngineClient(engine.client)))
        with serving(app) as url:
            yield url, key, examples


@pytest.mark.timeout(900)  # a whole run: a minute on an idle machine, several on a loaded 2-core one
def test_a_dataset_uploaded_through_the_sdk_is_trained_on_promoted_and_deployed_to_another_route(served):
    url, key, examples = served
    with ForgeClient(url, key) as forge:
        dataset = forge.datasets.upload(examples, domain="demo")
        assert dataset.train >= 50 and sum(dataset.dropped.values()) > 0  # broken lines and duplicates dropped
        forge.datasets.update(dataset.dataset_id, name="seeded traffic", tags=["demo", "v1"])

        accepted = forge.jobs.create(dataset.dataset_id, provider="local", name="first run",
                                     settings={"hyperparameters": RUN_HYPERPARAMETERS, "poll_interval_s": 0.5,
                                               "retry_first_s": 0.2})
        assert accepted.job.start == "upload" and accepted.job.dataset_id == dataset.dataset_id
        assert accepted.job.cost["estimate"]["billed_tokens"] > 0  # the estimate is on the job before it runs

        job = forge.wait(accepted.job_id, timeout_s=840, interval_s=1)
        assert job.status.value == "COMPLETED", job.error
        stages = list(job.stage_times)
        assert "COLLECTING" not in stages and "CURATING" not in stages
        assert stages.index("UPLOADING") < stages.index("TRAINING") < stages.index("EVALUATING") \
            < stages.index("PROMOTING")
        assert job.promotion and job.eval_metrics["decision"] in ("pass", "fail")
        events = [e.type for e in forge.jobs.iter_events(job.job_id)]
        assert "training.metrics" in events and "evaluation" in events

        model = forge.models.get(job.resulting_model_id)
        assert model.dataset_id == dataset.dataset_id and model.lineage["dataset"]["datasetId"] == dataset.dataset_id

        change = forge.models.deploy(model.version_id, domain="coding", stage="production")
        assert change.route.domain == "coding" and change.route.production_model == change.model.version_id
        assert change.model.deployed_from == model.version_id and change.model.domain == "coding"
        answer = forge.router.chat("forge:coding", [{"role": "user", "content": "Implement `reverse`."}],
                                   max_tokens=8)
        assert answer["choices"][0]["message"]["content"] is not None

        stats = forge.models.stats()
        assert stats.serving["production"] >= 1 and stats.by_domain.get("coding") == 1
        assert forge.datasets.stats().usage["jobs"] == 1


def test_the_async_client_uploads_and_pages_through_what_it_uploaded(served):
    import asyncio

    url, key, examples = served

    async def read() -> tuple[list[str], list[str]]:
        async with AsyncForgeClient(url, key) as forge:
            built = [await forge.datasets.upload(examples, domain="demo", seed=s) for s in (1, 2)]
            listed = [d.dataset_id async for d in forge.datasets.iter(page_size=1)]  # one page per dataset
            return [b.dataset_id for b in built], listed

    uploaded, listed = asyncio.run(read())
    assert listed == uploaded
