"""How a Forge training request becomes forge-trainer overrides, and loss points come back as events."""

from __future__ import annotations

import json

import pytest

from forge.providers.lora import check_base_model, metrics_events, trainer_overrides
from forge.providers.training import ProviderRejected
from tests.factories import make_training_request


def test_openai_style_hyperparameters_map_to_trainer_keys_and_auto_leaves_the_default():
    request = make_training_request("t", "d", "Qwen/Qwen2.5-0.5B-Instruct", n_epochs=2, batch_size="auto",
                                    learning_rate_multiplier=2, lora_r=4, target_modules=["q_proj", "v_proj"],
                                    packing=False, threads=1)
    assert trainer_overrides(request, base_lr=1e-4) == [
        "model.name_or_path=Qwen/Qwen2.5-0.5B-Instruct", "train.seed=7", "train.lr=0.0002", "lora.r=4",
        "train.epochs=2", "data.packing=false", "lora.target_modules=[q_proj, v_proj]", "train.threads=1"]


@pytest.mark.parametrize("option,value", [
    ("model.trust_remote_code", True), ("model.chat_template", "/etc/passwd"), ("model.name_or_path", "/srv/other"),
    ("output.upload_url", "https://attacker.example/c"), ("data.train", "/srv/other/train.jsonl"),
])
def test_a_trainer_option_that_reaches_code_files_or_the_network_is_never_taken_from_a_job(option, value):
    request = make_training_request("t", "d", "Qwen/Qwen2.5-0.5B-Instruct", **{option: value})
    with pytest.raises(ProviderRejected, match="Unknown hyperparameters"):
        trainer_overrides(request)


def test_every_override_the_provider_writes_comes_from_the_documented_mapping():
    from forge.domain.job_settings import Hyperparameters

    every = {"n_epochs": 2, "batch_size": 1, "learning_rate": 0.1, "lora_r": 2, "lora_alpha": 4, "lora_dropout": 0.1,
             "target_modules": ["q_proj"], "max_seq_length": 64, "packing": True, "gradient_accumulation_steps": 1,
             "max_steps": 3, "warmup_ratio": 0.1, "weight_decay": 0.0, "eval_every": 1, "save_every": 1,
             "early_stopping_patience": 1, "gradient_checkpointing": False, "quantization": "none", "merge": False,
             "threads": 1}
    assert set(every) | {"learning_rate_multiplier"} == set(Hyperparameters.model_fields)
    keys = [o.split("=")[0] for o in trainer_overrides(make_training_request("t", "d", "org/model", **every))]
    assert keys[0] == "model.name_or_path" and keys.count("model.name_or_path") == 1
    assert not {"model.trust_remote_code", "model.chat_template", "output.upload_url", "data.train",
                "data.valid"} & set(keys)


def test_an_unknown_hyperparameter_is_refused_naming_the_accepted_ones():
    request = make_training_request("t", "d", "Qwen/Qwen2.5-0.5B-Instruct", momentum=0.9)
    with pytest.raises(ProviderRejected, match=r"Unknown hyperparameters \['momentum'\].*n_epochs"):
        trainer_overrides(request)


@pytest.mark.parametrize("name", ["gpt-4.1-mini-2025-04-14", "ft:gpt-4o:org::abc", "./missing-folder"])
def test_a_base_model_without_open_weights_is_refused(name):
    with pytest.raises(ProviderRejected, match="FORGE_STUDENT_BASE_MODEL"):
        check_base_model(name)


def test_a_hub_id_is_accepted_as_a_base_model():
    check_base_model("meta-llama/Llama-3.2-1B-Instruct")  # a model folder is accepted too (integration tests)


def test_metrics_lines_become_events_after_the_cursor_and_a_half_written_line_waits():
    lines = [json.dumps({"step": 1, "loss": 2.0}), json.dumps({"step": 2, "loss": 1.5, "valid_loss": 1.7}),
             '{"step": 3, "lo']
    events = metrics_events(lines, None)
    assert [(e.id, e.type, e.data["step"]) for e in events] == [("1", "metrics", 1), ("2", "metrics", 2)]
    assert events[1].message == "step 2: loss 1.5, valid_loss 1.7"
    assert metrics_events(lines, "1") == events[1:]
