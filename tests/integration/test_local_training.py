"""Provider `local`: forge-trainer as a detached subprocess over a dataset in Azurite, on a tiny model."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from forge.domain.models import new_id
from forge.providers.local import LocalProvider
from forge.providers.training import ProviderRejected, TrainingState, TrainingStatus
from tests.factories import make_training_request, wait_for_status, write_chat_dataset

FAST = {"n_epochs": 2, "learning_rate": 3e-3, "batch_size": 2, "gradient_accumulation_steps": 1, "lora_r": 8,
        "max_seq_length": 128, "eval_every": 5, "save_every": 5, "threads": 1, "lora_dropout": 0.0}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from forge_trainer import tiny

    return tiny.build(tmp_path_factory.mktemp("base") / "tiny", seed=0)


@pytest.fixture
def dataset(storage, tenant) -> str:
    return write_chat_dataset(storage, tenant)


def wait(provider: LocalProvider, job: str, until=None) -> TrainingStatus:
    return wait_for_status(provider, job, until, timeout=240)


def run_record(settings, job: str) -> dict:
    return json.loads((settings.home / "runs" / job / "run.json").read_text())


def test_a_local_run_trains_streams_loss_points_and_survives_a_forge_restart(settings, storage, tenant, dataset,
                                                                             tiny_model):
    provider = LocalProvider(settings.home, storage)
    request = make_training_request(tenant, dataset, str(tiny_model), **FAST)
    prepared = provider.prepare(request)
    assert Path(prepared.train).read_bytes() == b"".join(storage.datasets.open_file(tenant, dataset, "train"))
    assert provider.prepare(request) == prepared

    job = provider.start(request, prepared)
    restarted = LocalProvider(settings.home, storage)  # a new Forge process finds the run by its folder
    assert restarted.start(request, prepared) == job
    assert run_record(settings, job)["launches"] == 1

    status = wait(restarted, job, None)
    assert status.state == TrainingState.SUCCEEDED, status.error
    adapter = Path(status.result_model)
    assert adapter == settings.home / "runs" / job / "out" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and status.progress == 1.0 and status.trained_tokens

    events = provider.events(job)
    assert [e.data["step"] for e in events] == list(range(1, len(events) + 1))
    assert all(e.type == "metrics" and "loss" in e.data for e in events)
    assert events[-1].data["loss"] < events[0].data["loss"]
    assert any("valid_loss" in e.data for e in events)
    assert provider.events(job, after=events[-1].id) == []
    assert [e.id for e in provider.events(job, after=events[1].id)] == [e.id for e in events[2:]]
    config = (settings.home / "runs" / job / "config.yaml").read_text()
    assert "lr: 0.003" in config and "seed: 7" in config and "threads: 1" in config


def test_a_killed_trainer_resumes_from_its_checkpoint_and_cancel_stops_it_after_a_checkpoint(settings, storage,
                                                                                            tenant, dataset,
                                                                                            tiny_model):
    provider = LocalProvider(settings.home, storage)
    request = make_training_request(tenant, dataset, str(tiny_model), **{**FAST, "n_epochs": 200})
    job = provider.start(request, provider.prepare(request))
    wait(provider, job, lambda s: len(provider.events(job)) >= 6)
    first = run_record(settings, job)
    os.killpg(first["pid"], signal.SIGKILL)  # a crash: no checkpoint beyond the periodic ones
    wait(provider, job, lambda s: run_record(settings, job)["launches"] == 2)
    resumed = run_record(settings, job)
    assert resumed["pid"] != first["pid"] and resumed["command"][-1] == "--resume"

    wait(provider, job, lambda s: len(provider.events(job)) >= 12)
    provider.cancel(job)
    status = wait(provider, job, None)
    assert status.state == TrainingState.CANCELLED
    out = settings.home / "runs" / job / "out"
    trainer = json.loads((out / "status.json").read_text())
    assert trainer["state"] == "interrupted" and (out / trainer["checkpoint"] / "state.pt").is_file()
    assert not (out / "adapter").exists()
    assert "--resume" in (settings.home / "runs" / job / "trainer.log").read_text()


def test_a_hosted_base_model_is_refused_before_anything_runs(settings, storage, tenant, dataset):
    provider = LocalProvider(settings.home, storage)
    request = make_training_request(tenant, dataset, "gpt-4.1-mini-2025-04-14")
    with pytest.raises(ProviderRejected, match="open weights"):
        provider.start(request, provider.prepare(request))
    assert not (settings.home / "runs" / request.job_id / "run.json").exists()


def test_a_trainer_that_rejects_its_data_fails_the_run_with_the_trainers_reason(settings, storage, tenant,
                                                                               tiny_model):
    dataset = new_id()
    masked = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0}]}
    storage.datasets.write_file(tenant, dataset, "train", [masked])
    provider = LocalProvider(settings.home, storage)
    request = make_training_request(tenant, dataset, str(tiny_model), **FAST)
    job = provider.start(request, provider.prepare(request))
    status = wait(provider, job, None)
    assert status.state == TrainingState.FAILED and "every token is masked" in status.error
    assert status.result_model is None
